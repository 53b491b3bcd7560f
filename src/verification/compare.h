// The pure logic of sampled verification (DESIGN.md §6): which keys a log tail touches, how a
// standby's sample of a shard compares with the primary's keys, which shards a round checks.
// No I/O, no threads, no clock; the primary's answer (answer.h) and the standby's verifier
// (verifier.h) do the rest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "meta/meta_store.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::verification {

using KeyChecksum = meta::MetaStore::KeyChecksum;

// Keys changed by a run of log entries: comparing them would race with replication, so they are
// skipped. `all`: an entry may have changed any key (a segment unmount, a client expiry).
struct TouchedKeys {
  absl::flat_hash_set<std::string> keys;
  bool all = false;
  bool Contains(std::string_view key) const {
    return all || keys.contains(absl::string_view(key.data(), key.size()));
  }
};
// Adds what `entries` touch to `out`. Malformed key lists count as touching everything.
void CollectTouched(const std::vector<tandem::v1::OpLogEntry>& entries, TouchedKeys* out);

enum class Verdict { kMismatch, kMissingOnPrimary, kMissingOnStandby };
const char* VerdictName(Verdict verdict);  // "mismatch", "missing-on-primary", "missing-on-standby"

struct Difference {
  std::string key;
  Verdict verdict = Verdict::kMismatch;
  uint64_t primary_checksum = 0;  // 0 when missing on the primary
  uint64_t standby_checksum = 0;  // 0 when missing on the standby
  bool operator==(const Difference&) const = default;
};

struct ShardComparison {
  std::vector<Difference> differences;
  uint64_t checked = 0;  // keys compared
  uint64_t skipped = 0;  // keys not compared because `touched` has them
};

// `standby`: the standby's keys of one shard after some key, in verification order
// (MetaStore::VerifyOrderLess); `complete`: they run to the shard's end (otherwise the compared
// range ends at the last one). `primary`: the primary's keys after the same key, in the same
// order, at least up to that range's end. Keys in `touched` are skipped, never reported.
ShardComparison CompareShard(const std::vector<KeyChecksum>& standby, bool complete,
                             const std::vector<KeyChecksum>& primary, const TouchedKeys& touched);

// Shards per round: ceil(shard_count * ratio), within [1, shard_count].
int ShardsPerRound(int shard_count, double ratio);

// Round robin over the shards, `priority` ones first (a DIGEST mismatch): returns up to
// max(count, priority.size()) distinct shards; the cursor advances over the non-priority ones.
class ShardSelector {
 public:
  explicit ShardSelector(int shard_count) : shard_count_(shard_count) {}
  std::vector<int> Next(int count, const std::vector<int>& priority);
  int cursor() const { return cursor_; }

 private:
  int shard_count_;
  int cursor_ = 0;
};

// The outcome of one verification pass.
// kBehind: the standby kept catching up but stayed more than the threshold behind a busy primary;
// nothing was compared and nothing is wrong (its replication lag metric shows it).
enum class PassStatus { kOk, kRepaired, kFullSync, kBehind, kError };
const char* PassStatusName(PassStatus status);  // "ok", "repaired", "full_sync", "error"

}  // namespace tandem::verification
