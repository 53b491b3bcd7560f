// MetaStore's internals, shared by its .cc files: meta_store.cc (object ops), segment_ops.cc
// (segments and clients), apply.cc (the one apply path), maintenance.cc (reaping, eviction,
// RemoveAll), image.cc (capture/load) and introspection.cc. Not a public header.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "meta/meta_store.h"
#include "meta/object_record.h"
#include "meta/segment_space.h"
#include "meta/shard.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::meta {

// Longest segment id, name, endpoint or client id accepted from a client.
inline constexpr size_t kMaxIdBytes = 256;

// Takes shard locks in ascending index order and then, optionally, the space lock (the store's
// lock order); releases everything on destruction.
class LockSet {
 public:
  LockSet(std::array<Shard, kShardCount>& shards, std::mutex& space_mu)
      : shards_(shards), space_mu_(space_mu) {}
  ~LockSet();
  LockSet(const LockSet&) = delete;
  LockSet& operator=(const LockSet&) = delete;

  // Locks these shards (any order, duplicates allowed). Must precede Space().
  void Shards(std::vector<int> indexes);
  void AllShards();
  void Space();

 private:
  std::array<Shard, kShardCount>& shards_;
  std::mutex& space_mu_;
  std::vector<int> held_;
  bool space_held_ = false;
};

// An entry with op_type, object_key, payload (the serialized effect, if any) and timestamp set;
// the sink fills in the rest.
tandem::v1::OpLogEntry MakeEntry(tandem::v1::OpType type, std::string_view key,
                                 const google::protobuf::MessageLite* effect, uint64_t now_ms);

// Client-facing views of an object; `space` must be readable (a shard lock is enough, see
// segment_space.h).
std::vector<ReplicaView> ReplicaViews(const ObjectNode& node, const SegmentSpace& space);
ObjectInfo ToObjectInfo(const ObjectNode& node);

struct MetaStore::Impl {
  Impl(const Options& options, EntrySink* sink) : options(options), sink(sink) {}

  Shard& ShardFor(std::string_view key) { return shards[ShardOf(key)]; }
  LockSet Locks() { return LockSet(shards, space_mu); }

  // Leader write path, under the locks the entry needs: the sink sequences the entry (its error
  // is returned unchanged, with nothing changed), then ApplyLocked applies it.
  Status Commit(tandem::v1::OpLogEntry& entry);

  // ---- The one apply path (apply.cc): leader and standby alike. ----
  // Takes into `locks` what applying `entry` needs (INTERNAL for an unreadable KeyListEffect).
  Status LockFor(const tandem::v1::OpLogEntry& entry, LockSet& locks);
  // Validates, then mutates; on error nothing changed. Caller holds LockFor's locks.
  Status ApplyLocked(const tandem::v1::OpLogEntry& entry);
  Status ApplyPutStart(const tandem::v1::OpLogEntry& entry);
  Status ApplyPutEnd(const tandem::v1::OpLogEntry& entry);
  Status ApplyDropOne(const tandem::v1::OpLogEntry& entry);   // PUT_REVOKE, REMOVE
  Status ApplyDropKeys(const tandem::v1::OpLogEntry& entry);  // EVICTION, REMOVE_ALL
  Status ApplyMount(const tandem::v1::OpLogEntry& entry);
  Status ApplyUnmount(const tandem::v1::OpLogEntry& entry);
  Status ApplyClientExpired(const tandem::v1::OpLogEntry& entry);
  Status ApplyDigest(const tandem::v1::OpLogEntry& entry);  // verification.cc; changes nothing
  // Removes an object and frees its replicas. Shard lock and space lock held.
  Status DropObject(ShardState& shard, ObjectNode* node);
  // Unmounts segments: their replicas are dropped, objects left without one are removed. Every
  // shard lock and the space lock held.
  void DropSegments(const std::vector<uint32_t>& handles);
  void NoteApplied(const tandem::v1::OpLogEntry& entry);
  // Write path: nullopt when `request_id` is empty or new; OK (and a counted hit) when it was
  // applied as `type`; INVALID_PARAMS when it was applied as another op. Caller holds the locks
  // the op's entry is applied under.
  std::optional<Status> CheckDuplicate(std::string_view request_id, tandem::v1::OpType type);

  const Options options;
  EntrySink* const sink;
  std::array<Shard, kShardCount> shards;
  mutable std::mutex space_mu;  // after every shard lock, before the sink
  SegmentSpace space;           // guarded by space_mu (see segment_space.h)
  // One CaptureImage at a time (a shard waits for at most one capture); taken before any shard
  // lock and by nothing else.
  mutable std::mutex capture_mu;

  // Max sequence id (and its epoch) applied; a leader applies concurrently, so a max.
  std::atomic<uint64_t> applied_seq{0};
  std::atomic<uint64_t> applied_epoch{0};
  // Cumulative counters of this process (Stats).
  std::atomic<uint64_t> evicted_objects{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> reaped_puts{0};
  std::atomic<uint64_t> expired_clients{0};
  std::atomic<uint64_t> dedup_hits{0};
  // Request ids applied recently (replicated). Its own leaf locks; LoadImage swaps it under
  // every shard lock and the space lock.
  DedupWindow dedup{options.dedup_window};
  // DIGEST checks (verification.cc): a leaf lock, taken under the apply locks.
  mutable std::mutex digest_mu;
  DigestCheckStats digest_stats;
  std::set<int> digest_mismatches;
  bool digest_segments_differ = false;
};

}  // namespace tandem::meta
