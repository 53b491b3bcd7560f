// StandbyVerifier: the standby's side of sampled verification (DESIGN.md §6, issue 6).
//
// A thread runs a pass every interval_s (0: no thread; passes only on demand): it takes the
// shards the last DIGEST entries found different (MetaStore::TakeDigestMismatches) first, whole,
// then sample_ratio of the shards in round robin, one page of up to entries_per_shard keys each
// (a per-shard cursor continues where the last page ended, so every key is reached). For each
// RPC it reads its applied seq *before* sampling, sends (key, checksum) pairs to the primary's
// Verify and applies what comes back: MISMATCH / MISSING_ON_STANDBY upsert the primary's record,
// MISSING_ON_PRIMARY deletes, each a compare-and-set against the sampled checksum and logged
// with both checksums. NEED_FULL_SYNC, more than max_repairs differences in a pass, a repair
// that does not fit, or a DIGEST mismatch of the segment set ask the follower for a full sync.
// Except when the answer only says "too far behind": if the standby then reaches the primary's
// seq of that answer within catch_up_timeout_ms it is keeping up, so it retries (up to
// catch_up_attempts) and then ends the pass as kBehind; a full sync would only put it further
// behind. Only a standby that does not get there is given the full sync.
//
// RunPass(all_shards=true) checks every key of every shard (tandemctl verify). One pass at a
// time. Thread-safe. grpc stays out of this header.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "meta/meta_store.h"
#include "verification/compare.h"

namespace grpc {
class Service;
class Channel;
}  // namespace grpc

namespace tandem::verification {

struct VerifierOptions {
  std::string cluster_id;
  std::string node_id;
  uint32_t interval_s = 30;          // --verify-interval-s (0: on demand only)
  double sample_ratio = 0.1;         // --verify-sample-ratio
  uint32_t entries_per_shard = 100;  // --verify-entries-per-shard
  uint32_t max_repairs = 10;         // --verify-max-repairs
  uint32_t shards_per_rpc = 64;
  uint32_t rpc_timeout_ms = 5000;
  uint32_t catch_up_timeout_ms = 2000;  // to reach the seq of a "too far behind" answer
  uint32_t catch_up_attempts = 3;
};

struct PassResult {
  PassStatus status = PassStatus::kOk;
  uint32_t shards = 0;
  uint64_t keys_checked = 0;
  uint64_t keys_skipped = 0;
  uint64_t mismatches = 0;  // differences reported by the primary (every kind)
  uint64_t repairs = 0;
  uint64_t duration_ms = 0;
  std::string message;  // why a full sync or an error
};

struct VerifierStats {
  uint64_t rounds = 0;
  uint64_t shards_checked = 0;
  uint64_t keys_checked = 0;
  uint64_t mismatches = 0;
  uint64_t repairs = 0;
  uint64_t full_syncs = 0;   // forced by verification
  uint64_t errors = 0;       // passes that could not complete (primary unreachable, ...)
  uint64_t behind = 0;       // passes skipped: too far behind a busy primary, but catching up
  uint64_t last_run_ms = 0;  // wall clock of the last pass's end; 0: never
  PassResult last;
};

class StandbyVerifier {
 public:
  // `primary_address` is asked before every pass (it follows failovers); `request_full_sync`
  // is StandbyFollower::RequestFullSync. `store` is borrowed.
  StandbyVerifier(const VerifierOptions& options, meta::MetaStore* store,
                  std::function<std::string()> primary_address,
                  std::function<void(const std::string&)> request_full_sync,
                  std::function<uint64_t()> wall_clock_ms);
  ~StandbyVerifier();  // Stop()
  StandbyVerifier(const StandbyVerifier&) = delete;
  StandbyVerifier& operator=(const StandbyVerifier&) = delete;

  void Start();  // no-op when interval_s is 0
  void Stop();   // prompt: wakes the thread and joins it
  PassResult RunPass(bool all_shards);
  VerifierStats Stats() const;

 private:
  struct Work {
    int shard;
    std::string after;
    bool whole;  // page until the shard's end
  };
  void Loop();
  // One Verify RPC over `batch`; advances each item's `after` and returns the items not done.
  std::vector<Work> Exchange(std::vector<Work> batch, PassResult* result, bool* stop);
  std::shared_ptr<grpc::Channel> Channel();
  // Polls the store until it applied `seq`; false on timeout or Stop().
  bool WaitForApplied(uint64_t seq);

  const VerifierOptions options_;
  meta::MetaStore* const store_;
  const std::function<std::string()> primary_address_;
  const std::function<void(const std::string&)> request_full_sync_;
  const std::function<uint64_t()> wall_clock_ms_;

  std::mutex pass_mu_;  // one pass at a time; guards selector_, cursors_, channel_*
  ShardSelector selector_{meta::kShardCount};
  std::vector<std::string> cursors_ = std::vector<std::string>(meta::kShardCount);
  std::shared_ptr<grpc::Channel> channel_;
  std::string channel_address_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  VerifierStats stats_;
};

// tandem.v1.Verification on every node: RunVerification runs a whole pass on the verifier that
// is set (a standby), FAILED_PRECONDITION otherwise.
class VerificationService {
 public:
  VerificationService();
  ~VerificationService();
  grpc::Service* service();
  void SetVerifier(StandbyVerifier* verifier);  // nullptr: not a standby
  void SetRole(const std::string& role);        // named in the refusal ("primary", ...)

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::verification
