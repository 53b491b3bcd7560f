#include "meta/digest.h"

#define XXH_STATIC_LINKING_ONLY  // stack-allocated XXH64_state_t
#include <xxhash.h>

#include <cstring>

namespace tandem::meta {
namespace {

// Streams fields into xxh64 in a host-independent encoding. Fields are gathered in a stack
// buffer and hashed with one XXH64 call when they fit (the common case: one object or segment);
// longer inputs spill into a streaming state. Either way the hash is xxh64 of the same bytes.
class Hasher {
 public:
  template <typename T>
  void Int(T value) {
    unsigned char bytes[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) {
      bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(value) >> (8 * i));
    }
    Append(bytes, sizeof(T));
  }
  void Bytes(std::string_view bytes) {
    Int<uint64_t>(bytes.size());  // length prefix: ("ab","c") != ("a","bc")
    Append(bytes.data(), bytes.size());
  }
  uint64_t Finish() {
    if (!streaming_) return XXH64(buffer_, used_, 0);
    XXH64_update(&state_, buffer_, used_);
    return XXH64_digest(&state_);
  }

 private:
  void Append(const void* data, size_t size) {
    if (used_ + size <= sizeof(buffer_)) {
      std::memcpy(buffer_ + used_, data, size);
      used_ += size;
      return;
    }
    if (!streaming_) {
      XXH64_reset(&state_, 0);
      streaming_ = true;
    }
    XXH64_update(&state_, buffer_, used_);
    used_ = 0;
    if (size <= sizeof(buffer_)) {
      std::memcpy(buffer_, data, size);
      used_ = size;
    } else {
      XXH64_update(&state_, data, size);
    }
  }

  unsigned char buffer_[256];
  size_t used_ = 0;
  bool streaming_ = false;
  XXH64_state_t state_;
};

}  // namespace

uint64_t ObjectDigest(const ObjectNode& node) {
  Hasher h;
  h.Bytes(node.key());
  h.Int<uint64_t>(node.value_size);
  h.Int<uint8_t>(static_cast<uint8_t>(node.state));
  h.Int<uint64_t>(node.owner_client_hash);
  h.Int<uint8_t>(node.soft_pin ? 1 : 0);
  h.Int<uint32_t>(static_cast<uint32_t>(node.replicas.size()));
  for (const Placement& p : node.replicas) {
    h.Int<uint32_t>(p.segment_handle);
    h.Int<uint64_t>(p.offset);
  }
  return h.Finish();
}

uint64_t SegmentDigest(const SegmentFields& s) {
  Hasher h;
  h.Int<uint32_t>(s.handle);
  h.Bytes(s.id);
  h.Bytes(s.name);
  h.Int<uint64_t>(s.base);
  h.Int<uint64_t>(s.size);
  h.Bytes(s.endpoint);
  h.Bytes(s.owner_client_id);
  return h.Finish();
}

uint64_t CombineDigests(const uint64_t* shard_digests, uint64_t segment_digest) {
  Hasher h;
  for (int i = 0; i < kShardCount; ++i) h.Int<uint64_t>(shard_digests[i]);
  h.Int<uint64_t>(segment_digest);
  return h.Finish();
}

uint64_t ClientHash(std::string_view client_id) {
  return XXH64(client_id.data(), client_id.size(), 0);
}

}  // namespace tandem::meta
