// MetaStore: the metadata state machine of a Tandem master (segments, objects, replicas, space).
//
// Contract:
// - Pure: no I/O, no threads, no clock. Every method that depends on time takes `now_ms`.
// - Thread-safe: 1024 shards keyed by a stable xxh64 hash of the key, each with its own mutex;
//   segment space has one mutex taken only by operations that allocate or free space. Lock order:
//   shards in ascending index, then space, then whatever the EntrySink takes.
// - Deterministic: every state change is an OpLogEntry describing the *effect*. Client operations
//   decide the effect, pass the entry to the EntrySink (which sequences it) and apply it with
//   ApplyLocked -- the same code `Apply` runs on a standby. Soft state (leases, soft-pin
//   deadlines, client heartbeats, LRU ticks) is never logged.
// - Apply is idempotent by sequence id: entries at or below applied_seq() are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "meta/dedup_window.h"
#include "meta/entry_sink.h"
#include "tandem/v1/oplog.pb.h"
#include "tandem/v1/state.pb.h"

namespace tandem::meta {

inline constexpr int kShardCount = 1024;

struct Options {
  uint64_t max_key_bytes = 4096;              // --max-key-bytes
  uint64_t max_object_size = 1ull << 40;      // --max-object-size (1 TiB)
  uint64_t max_segment_size = 1ull << 50;     // --max-segment-size (1 PiB)
  uint32_t max_replicas = 16;                 // --max-replicas
  uint64_t lease_ttl_ms = 5000;               // --lease-ttl-default-ms: read lease per Get
  uint64_t soft_pin_ttl_ms = 30 * 60 * 1000;  // --soft-pin-ttl-ms
  uint64_t put_timeout_ms = 30000;            // --put-timeout-ms: PROCESSING puts older are reaped
  uint64_t client_ttl_ms = 10000;             // --client-ttl-ms: silent clients lose segments
  double eviction_high_watermark = 0.95;      // --eviction-high-watermark
  double eviction_ratio = 0.05;               // --eviction-ratio: fraction of capacity freed
  uint64_t dedup_window = 100000;             // --dedup-window: request ids remembered (0: off)
};

struct SegmentSpec {
  std::string id;  // empty: use name
  std::string name;
  uint64_t base = 0;
  uint64_t size = 0;
  std::string endpoint;
};

enum class ReplicaState : uint8_t { kProcessing = 1, kComplete = 2 };

// A replica as clients see it (resolved segment names, absolute address).
struct ReplicaView {
  std::string segment_id;
  std::string segment_name;
  std::string endpoint;
  uint64_t offset = 0;
  uint64_t address = 0;
  uint64_t size = 0;
  ReplicaState state = ReplicaState::kProcessing;
};

struct PutStartArgs {
  std::string_view key;
  uint64_t value_size = 0;
  uint32_t replica_num = 1;            // 0 is treated as 1
  std::string_view preferred_segment;  // segment id, optional
  std::string_view client_id;
  bool soft_pin = false;
  std::string_view request_id;  // optional, see "Request ids" below
};

struct GetResult {
  std::vector<ReplicaView> replicas;
  uint64_t lease_ttl_ms = 0;
};

struct RemoveAllResult {
  uint64_t removed = 0;
  uint64_t kept = 0;
  bool duplicate = false;  // the request id was already applied: nothing done this time
};

struct Stats {
  uint64_t applied_seq = 0;
  uint64_t object_count = 0;
  uint64_t processing_count = 0;
  uint64_t segment_count = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_total = 0;
  uint64_t evicted_objects = 0;  // cumulative, this process
  uint64_t evictions = 0;        // eviction rounds, this process
  uint64_t reaped_puts = 0;      // PROCESSING puts discarded by timeout
  uint64_t expired_clients = 0;
  uint64_t dedup_entries = 0;  // request ids in the dedup window
  uint64_t dedup_hits = 0;     // writes answered from the window, this process
};

struct SegmentInfo {
  uint32_t handle = 0;
  SegmentSpec spec;
  std::string owner_client_id;
  uint64_t used = 0;
};

// Read-only view of one object, for invariant checks, dumps and verification.
struct ObjectInfo {
  std::string key;
  uint64_t value_size = 0;
  ReplicaState state = ReplicaState::kProcessing;
  uint64_t owner_client_hash = 0;
  bool soft_pin = false;
  uint64_t lease_deadline_ms = 0;  // soft state
  struct Placement {
    uint32_t segment_handle = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  std::vector<Placement> replicas;
};

// An immutable copy of the replicated state at one sequence id (full sync, snapshots).
class StateImage {
 public:
  virtual ~StateImage() = default;
  virtual const tandem::v1::StateHeader& header() const = 0;
  // Emits every object, shard by shard, in chunks of at most `max_objects`. Stops early when
  // `emit` returns false. Safe to call from any thread while the store keeps changing.
  virtual void ForEachChunk(
      size_t max_objects,
      const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) const = 0;
};

class MetaStore {
 public:
  // `sink` must outlive the store; it sequences every entry the store produces.
  MetaStore(const Options& options, EntrySink* sink);
  ~MetaStore();
  MetaStore(const MetaStore&) = delete;
  MetaStore& operator=(const MetaStore&) = delete;

  const Options& options() const;

  // ---- Client operations (leader). Each produces at most one entry on success. ----
  // Request ids: a write given a non-empty request_id first looks it up in the dedup window,
  // under the same locks its entry would be applied under (so two copies of one request cannot
  // both apply). Already applied: OK without a new entry (PutStart: the object's current
  // replicas, empty if it is gone); applied as another op type: INVALID_PARAMS. Otherwise the
  // entry carries the id and Apply records it in the window (on every node).
  Status MountSegment(const SegmentSpec& spec, std::string_view client_id, uint64_t now_ms,
                      std::string_view request_id = {});
  Status UnmountSegment(std::string_view segment_id, std::string_view client_id, uint64_t now_ms,
                        std::string_view request_id = {});
  StatusOr<std::vector<ReplicaView>> PutStart(const PutStartArgs& args, uint64_t now_ms);
  Status PutEnd(std::string_view key, std::string_view client_id, uint64_t now_ms,
                std::string_view request_id = {});
  Status PutRevoke(std::string_view key, std::string_view client_id, uint64_t now_ms,
                   std::string_view request_id = {});
  // Grants (extends) a read lease of options().lease_ttl_ms. Not logged.
  StatusOr<GetResult> GetReplicaList(std::string_view key, uint64_t now_ms);
  bool ExistKey(std::string_view key) const;
  Status Remove(std::string_view key, uint64_t now_ms, std::string_view request_id = {});
  RemoveAllResult RemoveAll(uint64_t now_ms, std::string_view request_id = {});
  // Heartbeat. CLIENT_NOT_FOUND for a client that owns no segment (it should remount).
  Status Ping(std::string_view client_id, uint64_t now_ms);

  // ---- Maintenance (leader), driven by a timer outside the store. Return how many acted on. --
  uint64_t ReapStalePuts(uint64_t now_ms);
  uint64_t ExpireClients(uint64_t now_ms);
  // Evicts when used/total > high watermark, until eviction_ratio of capacity is freed.
  uint64_t EvictIfNeeded(uint64_t now_ms);

  // ---- Replication / replay ----
  // Applies an entry produced by a leader. Entries at or below applied_seq() are ignored (OK).
  // A malformed payload or an effect that contradicts the state (e.g. an allocation overlapping
  // used space) returns INTERNAL and changes nothing.
  Status Apply(const tandem::v1::OpLogEntry& entry);
  // Copies the state at one seq: briefly holds every shard lock and the space lock (to read the
  // header and mark every shard), then copies shard by shard, each under its own lock; a writer
  // that reaches a shard not copied yet copies it first. No serialization under any lock.
  // `between_shards`, when set, runs after each shard's copy, holding no lock a client path
  // takes: a caller on a busy machine gives the CPU back there.
  std::unique_ptr<StateImage> CaptureImage(
      const std::function<void()>& between_shards = nullptr) const;
  // Replaces the whole state with an image (standby full sync, snapshot load). `next_chunk`
  // fills the next chunk and returns false when there are no more. Every record is validated
  // (overlaps, unknown handles, duplicates); on error returns INTERNAL and leaves the store
  // empty with applied_seq 0 -- never half-loaded. Objects get a fresh lease from now_ms.
  Status LoadImage(const tandem::v1::StateHeader& header,
                   const std::function<bool(tandem::v1::ObjectChunk*)>& next_chunk,
                   uint64_t now_ms);
  uint64_t applied_epoch() const;
  // The dedup window (replicated: Apply records every entry's request_id; images carry it).
  std::optional<AppliedRequest> FindRequest(std::string_view request_id) const;
  // Wrapping sum over the window's records (not part of StateDigest; see docs/decisions.md).
  uint64_t DedupDigest() const;

  // Soft state after promotion: every object gets a fresh lease, every client a fresh TTL.
  void RefreshSoftState(uint64_t now_ms);

  // ---- Introspection ----
  uint64_t applied_seq() const;
  Stats GetStats() const;
  std::vector<SegmentInfo> ListSegments() const;
  // Order-independent digest of the replicated state (objects and segments; leases excluded).
  // Two stores with equal digests at the same applied_seq hold the same state.
  uint64_t StateDigest() const;
  // Digest of one shard's objects (for verification).
  uint64_t ShardDigest(int shard) const;
  static int ShardOf(std::string_view key);
  // Visits every object under its shard lock (shards in order). Must not call back into the store.
  void ForEachObject(const std::function<void(const ObjectInfo&)>& visit) const;

  // ---- Verification (DESIGN.md §6, src/verification) ----
  // A key and the checksum of its static metadata (ObjectDigest: key, size, state, owner,
  // soft_pin, replicas; never leases or access times).
  struct KeyChecksum {
    std::string key;
    uint64_t checksum = 0;
    bool operator==(const KeyChecksum&) const = default;
  };
  // Verification order inside a shard: xxh64 of the key, then the key.
  static bool VerifyOrderLess(std::string_view a, std::string_view b);
  // The shard's keys after `after_key` (in verification order; empty: from the start) and, with
  // `up_to_key`, not after it; at most `limit`; under the shard's lock. Only the keys in range
  // are copied and sorted (the primary answers one standby page at a time).
  std::vector<KeyChecksum> ShardKeys(int shard, std::string_view after_key, size_t limit,
                                     std::optional<std::string_view> up_to_key = {}) const;
  // The checksum of one key, nullopt when absent.
  std::optional<uint64_t> KeyChecksumOf(std::string_view key) const;
  // The key's replicated record (what a repair installs) and its checksum, nullopt when absent.
  std::optional<tandem::v1::ObjectRecord> GetObjectRecord(std::string_view key,
                                                          uint64_t* checksum = nullptr) const;
  // Repairs of a standby (never on a leader: they bypass the OpLog). Each is a compare-and-set:
  // applied only while the key's checksum is still `expected` (nullopt: absent), so a key an
  // entry changed since it was sampled is left alone (FAILED_PRECONDITION-like: kInvalidState).
  // Upsert replaces or creates the object with `record` (space released and re-allocated;
  // INTERNAL and nothing changed when the placements do not fit); Delete drops it.
  // The caller logs every repair (key, both checksums).
  Status RepairUpsert(const tandem::v1::ObjectRecord& record, std::optional<uint64_t> expected,
                      uint64_t now_ms);
  Status RepairDelete(std::string_view key, std::optional<uint64_t> expected);

  // DIGEST markers (OpType DIGEST): the leader appends every shard's digest, taken under every
  // shard lock, as an entry; applying it changes nothing but compares the applier's digests at
  // exactly that seq. Returns the entry's seq.
  StatusOr<uint64_t> AppendDigest(uint64_t now_ms);
  struct DigestCheckStats {
    uint64_t checks = 0;              // DIGEST entries applied
    uint64_t mismatched_shards = 0;   // cumulative
    uint64_t segment_mismatches = 0;  // cumulative: the segment set differed
    uint64_t last_check_seq = 0;
  };
  DigestCheckStats GetDigestCheckStats() const;
  // Shards whose digest differed at a DIGEST entry since the last call (ascending), and whether
  // the segment digest differed; clears both.
  std::vector<int> TakeDigestMismatches(bool* segments_differ = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::meta
