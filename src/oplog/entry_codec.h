// Integrity fields of an OpLogEntry. The checksum covers every field that changes meaning
// (seq, epoch, timestamp, type, key, payload), not just the payload, so a corrupted header is
// caught as surely as a corrupted body.
#pragma once

#include <cstdint>
#include <string_view>

#include "tandem/v1/oplog.pb.h"

namespace tandem::oplog {

uint32_t ComputeChecksum(const tandem::v1::OpLogEntry& entry);
// xxh32 of the key's first 8 bytes (seed 0); 0 for an empty key.
uint32_t PrefixHash(std::string_view key);
// Sets checksum and prefix_hash from the other fields.
void Seal(tandem::v1::OpLogEntry& entry);
// True when checksum and prefix_hash match the other fields.
bool Verify(const tandem::v1::OpLogEntry& entry);

}  // namespace tandem::oplog
