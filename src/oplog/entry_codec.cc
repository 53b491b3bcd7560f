#include "oplog/entry_codec.h"

#define XXH_STATIC_LINKING_ONLY  // stack-allocated XXH32_state_t
#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace tandem::oplog {
namespace {

// Feeds a fixed-width integer in little-endian order so checksums do not depend on the host.
template <typename T>
void UpdateInt(XXH32_state_t* state, T value) {
  unsigned char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  XXH32_update(state, bytes, sizeof(T));
}

void UpdateBytes(XXH32_state_t* state, const std::string& bytes) {
  UpdateInt<uint64_t>(state, bytes.size());  // length prefix: ("ab","c") != ("a","bc")
  XXH32_update(state, bytes.data(), bytes.size());
}

}  // namespace

uint32_t ComputeChecksum(const tandem::v1::OpLogEntry& entry) {
  XXH32_state_t state;
  XXH32_reset(&state, 0);
  UpdateInt<uint64_t>(&state, entry.sequence_id());
  UpdateInt<uint64_t>(&state, entry.epoch());
  UpdateInt<uint64_t>(&state, entry.timestamp_ms());
  UpdateInt<uint32_t>(&state, static_cast<uint32_t>(entry.op_type()));
  UpdateBytes(&state, entry.object_key());
  UpdateBytes(&state, entry.payload());
  // Only when set, so entries without one keep the checksum they always had.
  if (!entry.request_id().empty()) UpdateBytes(&state, entry.request_id());
  return XXH32_digest(&state);
}

uint32_t PrefixHash(std::string_view key) {
  if (key.empty()) return 0;
  return XXH32(key.data(), std::min<size_t>(key.size(), 8), 0);
}

void Seal(tandem::v1::OpLogEntry& entry) {
  entry.set_prefix_hash(PrefixHash(entry.object_key()));
  entry.set_checksum(ComputeChecksum(entry));
}

bool Verify(const tandem::v1::OpLogEntry& entry) {
  return entry.checksum() == ComputeChecksum(entry) &&
         entry.prefix_hash() == PrefixHash(entry.object_key());
}

}  // namespace tandem::oplog
