// Order-independent digests of the replicated state (DESIGN.md §6).
//
// Each object and each segment hashes (xxh64, seed 0) to a u64 over a canonical little-endian,
// length-prefixed encoding of its replicated fields only (no leases, soft-pin deadlines, heartbeats
// or LRU ticks). A shard's digest is the wrapping sum of its objects' hashes, so Apply keeps it
// current by subtracting an object's old hash and adding its new one.
#pragma once

#include <cstdint>
#include <string_view>

#include "meta/object_record.h"

namespace tandem::meta {

// Hash of (key, value_size, state, owner_client_hash, soft_pin, replicas in order).
uint64_t ObjectDigest(const ObjectNode& node);

struct SegmentFields {
  uint32_t handle;
  std::string_view id;
  std::string_view name;
  uint64_t base;
  uint64_t size;
  std::string_view endpoint;
  std::string_view owner_client_id;
};
// Hash of (handle, id, name, base, size, endpoint, owner).
uint64_t SegmentDigest(const SegmentFields& segment);

// Combines kShardCount shard digests and the segment digest into one value (xxh64 of them all in
// order, little-endian).
uint64_t CombineDigests(const uint64_t* shard_digests, uint64_t segment_digest);

// xxh64(seed 0) of a client id; owner_client_hash of a put.
uint64_t ClientHash(std::string_view client_id);

}  // namespace tandem::meta
