#include "snapshot/format.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <charconv>

namespace tandem::snapshot {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void SetU32(char* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>(v >> (8 * i));
}
void SetU64(char* at, uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

Status Corrupt(std::string message) { return Status(ErrorCode::kInternal, std::move(message)); }

// Reads length-checked fields out of the header bytes.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}
  bool U32(uint32_t* v) {
    return Take(4, [&](const char* p) { *v = GetU32(p); });
  }
  bool U64(uint64_t* v) {
    return Take(8, [&](const char* p) { *v = GetU64(p); });
  }
  bool Bytes(std::string_view* v) {
    uint32_t len = 0;
    if (!U32(&len) || len > bytes_.size() - pos_) return false;
    *v = bytes_.substr(pos_, len);
    pos_ += len;
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  template <typename F>
  bool Take(size_t n, F read) {
    if (bytes_.size() - pos_ < n) return false;
    read(bytes_.data() + pos_);
    pos_ += n;
    return true;
  }
  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

std::string SnapshotFileName(uint64_t seq) { return fmt::format("snapshot-{:020}.snap", seq); }
std::string TempFileName(uint64_t seq) { return fmt::format("snapshot-{:020}.tmp", seq); }

std::optional<uint64_t> ParseSnapshotFileName(std::string_view name) {
  if (name.size() != 34 || !name.starts_with("snapshot-") || !name.ends_with(".snap")) return {};
  std::string_view digits = name.substr(9, 20);
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size()) return {};
  return seq;
}

std::string EncodeHeader(const SnapshotHeader& h, const tandem::v1::StateHeader& state,
                         uint64_t* checksum) {
  std::string out(kMagic);
  PutU32(&out, kFormatVersion);
  PutU32(&out, 0);  // header_len, set below
  PutU64(&out, h.epoch);
  PutU64(&out, h.seq);
  PutU64(&out, h.applied_epoch);
  PutU64(&out, h.object_count);
  PutU64(&out, h.segment_count);
  PutU64(&out, h.created_ms);
  PutU32(&out, static_cast<uint32_t>(h.cluster_id.size()));
  out += h.cluster_id;
  std::string state_bytes = state.SerializeAsString();
  PutU32(&out, static_cast<uint32_t>(state_bytes.size()));
  out += state_bytes;
  SetU32(out.data() + 12, static_cast<uint32_t>(out.size() - kPreambleBytes));
  *checksum = XXH64(out.data(), out.size(), kHeaderSeed);
  PutU64(&out, *checksum);
  return out;
}

Status DecodePreamble(std::string_view preamble, uint32_t* header_len) {
  if (preamble.size() < kPreambleBytes || preamble.substr(0, kMagic.size()) != kMagic) {
    return Corrupt("not a snapshot file (bad magic)");
  }
  if (uint32_t version = GetU32(preamble.data() + 8); version != kFormatVersion) {
    return Corrupt(fmt::format("format version {} is not supported (this build reads {})", version,
                               kFormatVersion));
  }
  *header_len = GetU32(preamble.data() + 12);
  if (*header_len > kMaxHeaderBytes) return Corrupt("header length out of range");
  return Status::Ok();
}

Status DecodeHeader(std::string_view bytes, SnapshotHeader* h, tandem::v1::StateHeader* state,
                    uint64_t* header_checksum) {
  if (bytes.size() < kPreambleBytes + 8) return Corrupt("header truncated");
  const size_t body = bytes.size() - 8;
  *header_checksum = GetU64(bytes.data() + body);
  if (XXH64(bytes.data(), body, kHeaderSeed) != *header_checksum) {
    return Corrupt("header checksum mismatch");
  }
  Cursor c(bytes.substr(kPreambleBytes, body - kPreambleBytes));
  std::string_view cluster_id, state_bytes;
  if (!c.U64(&h->epoch) || !c.U64(&h->seq) || !c.U64(&h->applied_epoch) ||
      !c.U64(&h->object_count) || !c.U64(&h->segment_count) || !c.U64(&h->created_ms) ||
      !c.Bytes(&cluster_id) || !c.Bytes(&state_bytes) || !c.done()) {
    return Corrupt("header fields do not fit its length");
  }
  h->cluster_id = std::string(cluster_id);
  if (!state->ParseFromArray(state_bytes.data(), static_cast<int>(state_bytes.size()))) {
    return Corrupt("state header does not parse");
  }
  if (state->applied_seq() != h->seq || state->applied_epoch() != h->applied_epoch ||
      state->object_count() != h->object_count ||
      static_cast<uint64_t>(state->segments_size()) != h->segment_count) {
    return Corrupt("header fields disagree with the state header");
  }
  return Status::Ok();
}

uint64_t BlockChecksum(uint64_t index, uint32_t object_count, std::string_view payload) {
  const uint64_t seed = index ^ (static_cast<uint64_t>(payload.size()) << 32) ^ object_count;
  return XXH64(payload.data(), payload.size(), seed);
}

void EncodeBlockFrame(const BlockFrame& frame, char out[kBlockFrameBytes]) {
  SetU32(out, frame.payload_len);
  SetU32(out + 4, frame.object_count);
  SetU64(out + 8, frame.checksum);
}

BlockFrame DecodeBlockFrame(const char in[kBlockFrameBytes]) {
  return {GetU32(in), GetU32(in + 4), GetU64(in + 8)};
}

std::string EncodeFooter(const Footer& footer) {
  std::string out;
  PutU64(&out, footer.block_count);
  PutU64(&out, footer.object_count);
  PutU64(&out, footer.file_checksum);
  out += kFooterMagic;
  return out;
}

Status DecodeFooter(std::string_view bytes, Footer* footer) {
  if (bytes.size() != kFooterBytes || bytes.substr(24) != kFooterMagic) {
    return Corrupt("footer magic missing (truncated or not a complete snapshot)");
  }
  footer->block_count = GetU64(bytes.data());
  footer->object_count = GetU64(bytes.data() + 8);
  footer->file_checksum = GetU64(bytes.data() + 16);
  return Status::Ok();
}

FileChecksum::FileChecksum(uint64_t header_checksum) : value_(header_checksum) {}

void FileChecksum::Add(uint64_t block_checksum) {
  char bytes[8];
  SetU64(bytes, block_checksum);
  value_ = XXH64(bytes, sizeof(bytes), value_);
}

}  // namespace tandem::snapshot
