#include "oplog/wal_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "oplog/entry_codec.h"

namespace tandem::oplog {
namespace {

namespace fs = std::filesystem;

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

std::string Str(uint64_t v) { return std::to_string(v); }
std::string Name(const std::string& path) { return fs::path(path).filename().string(); }

Status Internal(std::string message) { return Status(ErrorCode::kInternal, std::move(message)); }

StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Internal("WAL: cannot open " + path);
  std::string data(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) {
    return Internal("WAL: cannot read " + path);
  }
  return data;
}

// Truncates `path` to `size` bytes and makes the new size durable.
Status CutFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Internal("WAL: open " + path + ": " + std::strerror(errno));
  bool ok = ::ftruncate(fd, static_cast<off_t>(size)) == 0 && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return Internal("WAL: truncate " + path + ": " + std::strerror(err));
  return Status::Ok();
}

enum class HeaderCheck { kOk, kTorn, kBad };

// Checks a segment header; sets *end to the first record's offset or *why to the problem.
HeaderCheck CheckHeader(std::string_view buf, const std::string& cluster_id, uint64_t name_seq,
                        size_t* end, std::string* why) {
  const size_t fixed = wal::kMagic.size() + 8;
  if (buf.size() < fixed) {
    *why = "only " + Str(buf.size()) + " bytes, shorter than a segment header";
    return HeaderCheck::kTorn;
  }
  if (buf.substr(0, wal::kMagic.size()) != wal::kMagic) {
    *why = "bad magic (not a WAL segment)";
    return HeaderCheck::kBad;
  }
  const uint32_t version = GetU32(buf.data() + 8);
  const uint32_t id_len = GetU32(buf.data() + 12);
  if (version != wal::kVersion || id_len > wal::kMaxClusterIdBytes) {
    *why = "unsupported version " + Str(version) + " or bad cluster id length";
    return HeaderCheck::kBad;
  }
  const size_t total = fixed + id_len + 12;
  if (buf.size() < total) {
    *why = "only " + Str(buf.size()) + " bytes, shorter than its header";
    return HeaderCheck::kTorn;
  }
  if (XXH32(buf.data(), total - 4, 0) != GetU32(buf.data() + total - 4)) {
    *why = "header checksum mismatch";
    return HeaderCheck::kBad;
  }
  std::string_view id = buf.substr(fixed, id_len);
  if (id != cluster_id) {
    *why = "foreign segment: cluster id '" + std::string(id) + "', expected '" + cluster_id + "'";
    return HeaderCheck::kBad;
  }
  if (uint64_t first = GetU64(buf.data() + fixed + id_len); first != name_seq) {
    *why = "header says first seq " + Str(first) + ", the file name " + Str(name_seq);
    return HeaderCheck::kBad;
  }
  *end = total;
  return HeaderCheck::kOk;
}

// Decodes the record at `pos`. On success sets *entry and *end; otherwise returns why not.
std::string DecodeRecord(std::string_view buf, size_t pos, tandem::v1::OpLogEntry* entry,
                         size_t* end) {
  const size_t left = buf.size() - pos;
  if (left < wal::kRecordHeaderBytes) return "partial record header (" + Str(left) + " bytes)";
  const uint32_t len = GetU32(buf.data() + pos);
  if (len == 0 || len > wal::kMaxRecordBytes) return "bad record length " + Str(len);
  if (len > left - wal::kRecordHeaderBytes) {
    return "record length " + Str(len) + " runs past the end of the file";
  }
  std::string_view payload = buf.substr(pos + wal::kRecordHeaderBytes, len);
  if (wal::RecordChecksum(payload) != GetU32(buf.data() + pos + 4)) {
    return "record checksum mismatch";
  }
  if (!entry->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return "record does not parse";
  }
  if (!Verify(*entry)) return "entry checksum mismatch (seq " + Str(entry->sequence_id()) + ")";
  *end = pos + wal::kRecordHeaderBytes + len;
  return "";
}

// Cheap test before hashing a candidate record: its payload starts with field 1 (sequence_id,
// always first and never 0) holding a seq in (after_seq, max_seq]. Keeps a scan over garbage
// from hashing megabytes at every offset.
bool PlausibleRecord(std::string_view buf, size_t p, uint64_t after_seq, uint64_t max_seq) {
  const size_t left = buf.size() - p - wal::kRecordHeaderBytes;
  const uint32_t len = GetU32(buf.data() + p);
  if (len < 2 || len > wal::kMaxRecordBytes || len > left) return false;
  const char* payload = buf.data() + p + wal::kRecordHeaderBytes;
  if (payload[0] != 0x08) return false;
  uint64_t seq = 0;
  for (size_t i = 1; i < std::min<size_t>(len, 11); ++i) {
    const auto byte = static_cast<unsigned char>(payload[i]);
    seq |= static_cast<uint64_t>(byte & 0x7f) << (7 * (i - 1));
    if ((byte & 0x80) == 0) return seq > after_seq && seq <= max_seq;
  }
  return false;
}

// Offset of the first whole, valid record after `from` with a seq above `after_seq`, if any: the
// difference between a torn tail (nothing follows) and damage in the middle.
std::optional<size_t> FindValidRecord(std::string_view buf, size_t from, uint64_t after_seq,
                                      uint64_t* seq) {
  // Records are at least kMinRecordBytes, which bounds how many seqs the damage can hide.
  constexpr size_t kMinRecordBytes = wal::kRecordHeaderBytes + 2;
  tandem::v1::OpLogEntry entry;
  size_t end = 0;
  for (size_t p = from; p + wal::kRecordHeaderBytes <= buf.size(); ++p) {
    const uint64_t max_seq = after_seq + 2 + (p - from) / kMinRecordBytes;
    if (!PlausibleRecord(buf, p, after_seq, max_seq)) continue;
    if (DecodeRecord(buf, p, &entry, &end).empty() && entry.sequence_id() > after_seq) {
      *seq = entry.sequence_id();
      return p;
    }
  }
  return std::nullopt;
}

}  // namespace

StatusOr<std::unique_ptr<WalReader>> WalReader::Open(const WalReadOptions& options) {
  StatusOr<std::vector<wal::SegmentFile>> segments = wal::ListSegments(options.dir);
  if (!segments.ok()) return segments.status();
  std::unique_ptr<WalReader> reader(new WalReader(options));
  reader->segments_ = std::move(segments).value();
  // Start at the last segment that begins at or before from_seq: earlier ones hold only older
  // entries.
  size_t start = 0;
  for (size_t i = 0; i < reader->segments_.size(); ++i) {
    if (reader->segments_[i].first_seq <= options.from_seq) start = i;
  }
  reader->index_ = start;
  return reader;
}

void WalReader::Fail(const std::string& what) {
  status_ = Internal("WAL " + Name(segment().path) + ": " + what + "; replay stops at seq " +
                     Str(last_seq_));
}

bool WalReader::LoadNextSegment() {
  if (index_ == segments_.size()) return false;
  ++index_;
  const wal::SegmentFile& seg = segment();
  StatusOr<std::string> data = ReadWhole(seg.path);
  if (!data.ok()) {
    status_ = data.status();
    return false;
  }
  buf_ = std::move(data).value();
  std::string why;
  size_t header_end = 0;
  switch (CheckHeader(buf_, options_.cluster_id, seg.first_seq, &header_end, &why)) {
    case HeaderCheck::kOk:
      break;
    case HeaderCheck::kTorn:
      if (last_segment() && options_.repair_torn_tail) {
        // Created but never fully written: it holds no record, so dropping it loses nothing.
        if (::unlink(seg.path.c_str()) != 0) {
          Fail("cannot remove torn segment: " + std::string(std::strerror(errno)));
          return false;
        }
        notes_.push_back("WAL " + Name(seg.path) + ": removed a torn last segment (" + why + ")");
        return false;
      }
      Fail(why);
      return false;
    case HeaderCheck::kBad:
      Fail(why);
      return false;
  }
  if (expect_seq_ != 0 && seg.first_seq != expect_seq_) {
    Fail("starts at seq " + Str(seg.first_seq) + " but the log before it ends at seq " +
         Str(expect_seq_ - 1) + " (gap or overlap)");
    return false;
  }
  expect_seq_ = seg.first_seq;
  pos_ = header_end;
  loaded_ = true;
  return true;
}

bool WalReader::Next(tandem::v1::OpLogEntry* entry) {
  while (status_.ok()) {
    if (!loaded_ && !LoadNextSegment()) return false;
    if (pos_ == buf_.size()) {
      loaded_ = false;
      continue;
    }
    size_t end = 0;
    std::string bad = DecodeRecord(buf_, pos_, entry, &end);
    if (!bad.empty()) {
      HandleBadRecord(bad);
      continue;
    }
    if (entry->sequence_id() != expect_seq_) {
      Fail("record at offset " + Str(pos_) + " has seq " + Str(entry->sequence_id()) +
           ", expected " + Str(expect_seq_));
      return false;
    }
    pos_ = end;
    last_seq_ = expect_seq_++;
    if (entry->sequence_id() >= options_.from_seq) return true;
  }
  return false;
}

void WalReader::HandleBadRecord(const std::string& reason) {
  const std::string& path = segment().path;
  uint64_t next_seq = 0;
  std::optional<size_t> valid = FindValidRecord(buf_, pos_ + 1, last_seq_, &next_seq);
  if (valid) {
    Fail("record at offset " + Str(pos_) + " is damaged (" + reason +
         ") and valid records follow (seq " + Str(next_seq) + " at offset " + Str(*valid) +
         "): the log is corrupt in the middle");
    return;
  }
  if (!last_segment()) {
    // Nothing readable follows in this file; the next segment's first seq decides whether
    // anything is missing (LoadNextSegment checks it).
    notes_.push_back("WAL " + Name(path) + ": " + Str(buf_.size() - pos_) +
                     " unreadable bytes at offset " + Str(pos_) + " (" + reason +
                     ") end this segment; reading on at the next one");
    loaded_ = false;
    return;
  }
  if (!options_.repair_torn_tail) {
    Fail("torn last record at offset " + Str(pos_) + " (" + reason + "), not repaired");
    return;
  }
  if (Status s = CutFile(path, pos_); !s.ok()) {
    status_ = s;
    return;
  }
  notes_.push_back("WAL " + Name(path) + ": cut a torn last record at offset " + Str(pos_) + " (" +
                   Str(buf_.size() - pos_) + " bytes, " + reason + "); the log ends at seq " +
                   Str(last_seq_));
  buf_.resize(pos_);
}

namespace {

// Moves `path` aside as `path + suffix`.
Status MoveAside(const std::string& path, const std::string& suffix) {
  std::error_code ec;
  fs::rename(path, path + suffix, ec);
  if (ec) return Internal("WAL: rename " + path + ": " + ec.message());
  return Status::Ok();
}

// Cuts the segment at `path` after its last whole record with seq <= last_seq, saving the cut
// bytes beside it.
Status CutSegmentAfter(const std::string& path, uint64_t first_seq, uint64_t last_seq,
                       std::vector<std::string>* notes) {
  StatusOr<std::string> data = ReadWhole(path);
  if (!data.ok()) return data.status();
  const std::string& buf = data.value();
  // The header's cluster id is not checked here: only structure matters for where to cut.
  size_t pos = wal::kMagic.size() + 8;
  if (buf.size() >= pos) pos += GetU32(buf.data() + 12) + 12;
  if (pos > buf.size()) return MoveAside(path, ".discarded");
  tandem::v1::OpLogEntry entry;
  size_t end = 0;
  uint64_t expect = first_seq;
  while (pos < buf.size() && DecodeRecord(buf, pos, &entry, &end).empty() &&
         entry.sequence_id() == expect && expect <= last_seq) {
    pos = end;
    ++expect;
  }
  if (pos == buf.size()) return Status::Ok();
  const std::string saved = path + "." + Str(pos) + ".discarded";
  {
    std::ofstream out(saved, std::ios::binary | std::ios::trunc);
    out.write(buf.data() + pos, static_cast<std::streamsize>(buf.size() - pos));
    if (!out.flush()) return Internal("WAL: cannot save " + saved);
  }
  if (Status s = CutFile(path, pos); !s.ok()) return s;
  notes->push_back("WAL " + Name(path) + ": cut after seq " + Str(expect - 1) + " at offset " +
                   Str(pos) + "; the " + Str(buf.size() - pos) + " bytes after it saved as " +
                   Name(saved));
  return Status::Ok();
}

}  // namespace

Status DiscardWalAfter(const std::string& dir, uint64_t last_seq, std::vector<std::string>* notes) {
  StatusOr<std::vector<wal::SegmentFile>> segments = wal::ListSegments(dir);
  if (!segments.ok()) return segments.status();
  const std::vector<wal::SegmentFile>& segs = segments.value();
  for (size_t i = 0; i < segs.size(); ++i) {
    const wal::SegmentFile& s = segs[i];
    if (s.first_seq > last_seq) {
      if (Status st = MoveAside(s.path, ".discarded"); !st.ok()) return st;
      notes->push_back("WAL " + Name(s.path) + ": moved aside as " + Name(s.path) +
                       ".discarded (starts at seq " + Str(s.first_seq) + ", after seq " +
                       Str(last_seq) + ")");
    } else if (i + 1 == segs.size() || segs[i + 1].first_seq > last_seq) {
      if (Status st = CutSegmentAfter(s.path, s.first_seq, last_seq, notes); !st.ok()) return st;
    }
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return Status::Ok();
}

}  // namespace tandem::oplog
