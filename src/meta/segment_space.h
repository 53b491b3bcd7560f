// SegmentSpace: the mounted segments, their free space and the client registry.
//
// Guarded by MetaStore's space mutex. The segment *set* (Add/Remove) changes only while every
// shard lock is held as well, so a reader holding any one shard lock may resolve the handles of
// that shard's replicas (Find) without the space mutex: that is what keeps reads free of a global
// lock. Allocation state is only touched under the space mutex.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/status.h"
#include "meta/allocator.h"
#include "meta/digest.h"
#include "meta/object_record.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::meta {

// This absl's string_view is its own type; heterogeneous lookups need it.
inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

struct Segment {
  explicit Segment(const tandem::v1::MountSegmentEffect& effect);

  SegmentFields fields() const;

  uint32_t handle;
  std::string id;
  std::string name;
  uint64_t base;
  uint64_t size;
  std::string endpoint;
  std::string owner_client_id;  // empty: static segment, never expires
  RangeAllocator space;
};

// Soft state, except `segments`, which counts the client's mounted segments.
struct ClientEntry {
  uint64_t heartbeat_ms = 0;
  uint32_t segments = 0;
};

class SegmentSpace {
 public:
  // ---- Segment set ----
  const Segment* Find(uint32_t handle) const;
  const Segment* FindById(std::string_view id) const;
  bool HasName(std::string_view name) const { return by_name_.contains(AbslView(name)); }
  const std::map<uint32_t, Segment>& segments() const { return segments_; }
  uint32_t next_handle() const { return next_handle_; }
  void set_next_handle(uint32_t handle) { next_handle_ = handle; }
  uint64_t digest() const { return digest_; }
  uint64_t bytes_total() const;
  uint64_t bytes_used() const;

  // INTERNAL unless `effect` can be added (fresh handle, id and name; sane geometry).
  Status CheckAdd(const tandem::v1::MountSegmentEffect& effect) const;
  // Adds a checked segment; its owner (if any) is registered with heartbeat `now_ms`.
  void Add(const tandem::v1::MountSegmentEffect& effect, uint64_t now_ms);
  // Removes a segment with everything allocated in it. The caller drops the replicas.
  void Remove(uint32_t handle);
  // Handles owned by `client_id`, ascending.
  std::vector<uint32_t> HandlesOwnedBy(std::string_view client_id) const;

  // ---- Space ----
  // INTERNAL unless every placement names a distinct mounted segment and a free range of `size`.
  Status CheckAllocate(const Placements& placements, uint64_t size) const;
  void Allocate(const Placements& placements, uint64_t size);  // after CheckAllocate
  // Bulk path of image loads: marks exactly `used` (any order; sorted in place) allocated in the
  // mounted segment `handle`, which must have nothing allocated yet, building its free ranges in
  // one pass (RangeAllocator::FromUsed). False, with `*conflict` set and nothing changed, when a
  // range is empty, leaves the segment or overlaps another.
  bool AllocateAll(uint32_t handle, std::vector<ByteRange>& used, RangeConflict* conflict);
  // False when a placement is not allocated (a corrupt state: the caller reports INTERNAL).
  bool Release(const Placements& placements, uint64_t size);
  // Leader only: `replica_num` distinct segments with room for `size`, the preferred one first,
  // then round robin from a cursor. Decides only; nothing is allocated.
  StatusOr<Placements> ChoosePlacement(uint64_t size, uint32_t replica_num,
                                       std::string_view preferred_segment);

  // ---- Clients (soft state) ----
  ClientEntry* FindClient(std::string_view client_id);
  const absl::flat_hash_map<std::string, ClientEntry>& clients() const { return clients_; }
  void RefreshClients(uint64_t now_ms);

 private:
  std::map<uint32_t, Segment> segments_;  // by handle: round robin goes in handle order
  absl::flat_hash_map<std::string, uint32_t> by_id_;
  absl::flat_hash_map<std::string, uint32_t> by_name_;
  uint32_t next_handle_ = 1;  // max handle ever assigned + 1; 0 is never a handle
  uint64_t digest_ = 0;       // wrapping sum of SegmentDigest
  absl::flat_hash_map<std::string, ClientEntry> clients_;
  uint32_t cursor_ = 0;  // leader soft state: last segment picked by round robin
};

}  // namespace tandem::meta
