// The snapshot file format, version 1 (DESIGN.md §5). Integers are little-endian.
//
//   preamble  magic "TNDMSNAP" | u32 format_version | u32 header_len
//   header    u64 epoch | u64 seq | u64 applied_epoch | u64 object_count | u64 segment_count |
//             u64 created_ms | u32 cluster_id_len | cluster_id | u32 state_len | StateHeader
//   u64       header checksum = xxh64(preamble + header, seed kHeaderSeed)
//   blocks    u32 payload_len | u32 object_count | u64 checksum | payload (ObjectChunk protobuf)
//             checksum = xxh64(payload, seed = block index ^ payload_len << 32 ^ count): the
//             index in the seed makes a dropped, duplicated or reordered block fail too.
//   footer    u64 block_count | u64 object_count | u64 file_checksum | magic "TNDMSEND"
//             file_checksum: c = header checksum; per block, in order, c = xxh64(block checksum,
//             seed c). It ties the footer to the exact header and sequence of blocks.
//
// The footer sits at a fixed distance from the end, so a truncated file is recognised before
// any block is read; blocks are read up to the footer's offset and must land on it exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tandem/v1/state.pb.h"

namespace tandem::snapshot {

inline constexpr std::string_view kMagic = "TNDMSNAP";
inline constexpr std::string_view kFooterMagic = "TNDMSEND";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kPreambleBytes = 16;
inline constexpr size_t kBlockFrameBytes = 16;
inline constexpr size_t kFooterBytes = 32;
inline constexpr uint32_t kMaxHeaderBytes = 256u << 20;  // segments live in the header
inline constexpr uint32_t kMaxBlockBytes = 1u << 30;
inline constexpr uint64_t kHeaderSeed = 0x54534e4150484452ull;

// What a snapshot says about itself (the header, decoded).
struct SnapshotHeader {
  std::string cluster_id;
  uint64_t epoch = 0;          // leadership epoch of the node that wrote it
  uint64_t seq = 0;            // the state is the one right after this entry
  uint64_t applied_epoch = 0;  // epoch of that entry
  uint64_t object_count = 0;
  uint64_t segment_count = 0;
  uint64_t created_ms = 0;  // wall clock of the writer
};

struct BlockFrame {
  uint32_t payload_len = 0;
  uint32_t object_count = 0;
  uint64_t checksum = 0;
};

struct Footer {
  uint64_t block_count = 0;
  uint64_t object_count = 0;
  uint64_t file_checksum = 0;
};

// "snapshot-00000000000000001234.snap"; `.tmp` instead while being written.
std::string SnapshotFileName(uint64_t seq);
std::string TempFileName(uint64_t seq);
std::optional<uint64_t> ParseSnapshotFileName(std::string_view name);

// Preamble + header + header checksum, ready to write; *checksum receives the latter.
std::string EncodeHeader(const SnapshotHeader& header, const tandem::v1::StateHeader& state,
                         uint64_t* checksum);
// Checks the preamble; on success sets *header_len.
Status DecodePreamble(std::string_view preamble, uint32_t* header_len);
// `bytes` = preamble + header + checksum as written by EncodeHeader.
Status DecodeHeader(std::string_view bytes, SnapshotHeader* header, tandem::v1::StateHeader* state,
                    uint64_t* header_checksum);

uint64_t BlockChecksum(uint64_t index, uint32_t object_count, std::string_view payload);
void EncodeBlockFrame(const BlockFrame& frame, char out[kBlockFrameBytes]);
BlockFrame DecodeBlockFrame(const char in[kBlockFrameBytes]);

std::string EncodeFooter(const Footer& footer);
Status DecodeFooter(std::string_view bytes, Footer* footer);

// The running file checksum: the header checksum, then each block checksum in order.
class FileChecksum {
 public:
  explicit FileChecksum(uint64_t header_checksum);
  void Add(uint64_t block_checksum);
  uint64_t value() const { return value_; }

 private:
  uint64_t value_;
};

}  // namespace tandem::snapshot
