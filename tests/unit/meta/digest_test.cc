// The digests are xxh64 of a fixed encoding (DESIGN.md §6): stores, snapshots and replicas built
// by other versions compare digests, so the bytes hashed must never change. Checked against a
// plain streaming xxh64 of the documented encoding, for short keys and keys long enough to go
// past the hasher's internal buffer.
#include "meta/digest.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <vector>

namespace tandem::meta {
namespace {

// xxh64 of little-endian integers and length-prefixed strings, one update per field.
class Reference {
 public:
  Reference() : state_(XXH64_createState()) { XXH64_reset(state_, 0); }
  ~Reference() { XXH64_freeState(state_); }
  template <typename T>
  Reference& Int(T value) {
    unsigned char bytes[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) {
      bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(value) >> (8 * i));
    }
    XXH64_update(state_, bytes, sizeof(T));
    return *this;
  }
  Reference& Bytes(const std::string& s) {
    Int<uint64_t>(s.size());
    XXH64_update(state_, s.data(), s.size());
    return *this;
  }
  uint64_t Finish() { return XXH64_digest(state_); }

 private:
  XXH64_state_t* state_;
};

TEST(DigestEncodingTest, ObjectDigestIsXxh64OfTheFixedEncoding) {
  for (size_t key_len : {1, 15, 40, 200, 220, 231, 232, 240, 255, 256, 300, 1000, 5000}) {
    for (size_t replicas : {1, 2, 3, 16}) {
      std::string key(key_len, 'k');
      for (size_t i = 0; i < key_len; ++i) key[i] = static_cast<char>('a' + i % 26);
      NodePtr node = ObjectNode::Create(key);
      node->value_size = 4096 + key_len;
      node->owner_client_hash = 0x0123456789abcdefull;
      node->state = replicas % 2 ? ReplicaState::kComplete : ReplicaState::kProcessing;
      node->soft_pin = replicas == 2;
      node->aux_ms = 77;  // soft or not hashed: no effect
      for (size_t r = 0; r < replicas; ++r) {
        node->replicas.push_back({static_cast<uint32_t>(r + 1), (r + 1) * 0x100000001ull});
      }
      Reference ref;
      ref.Bytes(key)
          .Int<uint64_t>(node->value_size)
          .Int<uint8_t>(static_cast<uint8_t>(node->state))
          .Int<uint64_t>(node->owner_client_hash)
          .Int<uint8_t>(node->soft_pin ? 1 : 0)
          .Int<uint32_t>(static_cast<uint32_t>(replicas));
      for (const Placement& p : node->replicas) {
        ref.Int<uint32_t>(p.segment_handle).Int<uint64_t>(p.offset);
      }
      EXPECT_EQ(ObjectDigest(*node), ref.Finish()) << key_len << " " << replicas;
    }
  }
}

TEST(DigestEncodingTest, SegmentDigestIsXxh64OfTheFixedEncoding) {
  for (size_t len : {0, 5, 60, 250, 600}) {
    std::string id(len, 'i'), name = "name" + std::string(len, 'n'), endpoint(len / 2, 'e');
    std::string owner = len % 2 ? "" : "owner-" + std::string(len, 'o');
    SegmentFields fields{7, id, name, 1ull << 40, 1ull << 30, endpoint, owner};
    Reference ref;
    ref.Int<uint32_t>(7)
        .Bytes(id)
        .Bytes(name)
        .Int<uint64_t>(1ull << 40)
        .Int<uint64_t>(1ull << 30)
        .Bytes(endpoint)
        .Bytes(owner);
    EXPECT_EQ(SegmentDigest(fields), ref.Finish()) << len;
  }
}

TEST(DigestEncodingTest, CombineDigestsIsXxh64OfTheShardDigestsThenTheSegments) {
  std::vector<uint64_t> shards(kShardCount);
  for (int i = 0; i < kShardCount; ++i) shards[i] = 0x9e3779b97f4a7c15ull * (i + 1);
  Reference ref;
  for (uint64_t d : shards) ref.Int<uint64_t>(d);
  ref.Int<uint64_t>(42);
  EXPECT_EQ(CombineDigests(shards.data(), 42), ref.Finish());
}

}  // namespace
}  // namespace tandem::meta
