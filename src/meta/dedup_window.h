// DedupWindow: the client request ids the state machine applied recently, so a retried write
// (same request id, e.g. after a lost answer or a failover) is answered without applying twice.
//
// Replicated state: Apply records an entry's request_id, so every node that applied the same log
// holds the same window; images carry it (ObjectChunk.requests). Not part of StateDigest (see
// docs/decisions.md); images carry their own dedup digest.
//
// Bounded and deterministic: 64 shards by xxh64(id); each keeps the ids of its `capacity / 64`
// (rounded up) highest sequence ids. Keeping the highest seqs, not the last inserted, makes the
// content independent of the order concurrent applies reach a shard: after any set of records a
// shard holds exactly the top ids by seq. Each shard has its own mutex, a leaf lock (nothing is
// taken while it is held). Thread-safe.
#pragma once

#include <absl/container/node_hash_map.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/v1/oplog.pb.h"

namespace tandem::meta {

struct AppliedRequest {
  uint64_t seq = 0;
  tandem::v1::OpType op_type = tandem::v1::OP_TYPE_UNSPECIFIED;
};

struct RequestEntry {
  std::string request_id;
  AppliedRequest applied;
};

class DedupWindow {
 public:
  static constexpr int kShards = 64;

  // capacity 0 disables the window (Record and Find do nothing).
  explicit DedupWindow(uint64_t capacity);
  DedupWindow(const DedupWindow&) = delete;
  DedupWindow& operator=(const DedupWindow&) = delete;

  uint64_t capacity() const { return capacity_; }
  std::optional<AppliedRequest> Find(std::string_view request_id) const;
  // Idempotent; an id recorded again with a higher seq moves to it. Evicts the lowest seqs of
  // the shard beyond its share of the capacity.
  void Record(std::string_view request_id, AppliedRequest applied);
  uint64_t size() const;
  void Clear();
  // Every record, in no particular order (SortEntries orders them by seq, then id).
  std::vector<RequestEntry> Entries() const;
  static void SortEntries(std::vector<RequestEntry>& entries);
  // Swaps the contents (not the capacities); the caller excludes concurrent Find/Record.
  void Swap(DedupWindow& other);

  // Wrapping sum of RecordDigest over every record.
  uint64_t Digest() const;
  static uint64_t RecordDigest(std::string_view request_id, const AppliedRequest& applied);

 private:
  // An id with its xxh64, computed once per call: it picks the shard and, mixed, is the map's
  // hash (absl's own string hash cost as much as the rest of Record).
  struct HashedId {
    std::string_view id;
    uint64_t hash;
  };
  struct IdHash {
    using is_transparent = void;
    // The shard already fixes hash % kShards: rotate those bits away from the map's low bits.
    size_t operator()(const HashedId& key) const { return (key.hash >> 6) | (key.hash << 58); }
    size_t operator()(const std::string& id) const;  // rehash only
  };
  struct IdEq {
    using is_transparent = void;
    bool operator()(const std::string& a, const std::string& b) const { return a == b; }
    bool operator()(const std::string& a, const HashedId& b) const { return a == b.id; }
    bool operator()(const HashedId& a, const std::string& b) const { return a.id == b; }
  };
  struct SeqRef {
    uint64_t seq;
    const std::string* id;  // the key in by_id
    uint64_t hash;          // its HashedId::hash
  };
  struct Shard {
    mutable std::mutex mu;
    absl::node_hash_map<std::string, AppliedRequest, IdHash, IdEq> by_id;  // node-based: keys stay
    std::deque<SeqRef> by_seq;                                             // ascending seq
  };
  static HashedId Hashed(std::string_view request_id);
  Shard& ShardFor(const HashedId& key) const { return shards_[key.hash % kShards]; }
  void EraseFromSeq(Shard& shard, uint64_t seq, const std::string* id);

  const uint64_t capacity_;
  const uint64_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace tandem::meta
