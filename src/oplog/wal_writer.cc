#include "oplog/wal_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "oplog/entry_codec.h"

namespace tandem::oplog {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Past this many queued bytes the flusher writes early (without an fsync), bounding memory.
constexpr uint64_t kEagerWriteBytes = 4u << 20;
// interval/never: queued records reach the OS at most this late (a process crash loses them).
constexpr auto kWriteDelay = std::chrono::milliseconds(1);

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void SetU32(char* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>(v >> (8 * i));
}

Status Internal(std::string message) { return Status(ErrorCode::kInternal, std::move(message)); }

Status IoError(std::string_view what, const std::string& path) {
  return Internal("WAL: " + std::string(what) + " " + path + ": " + std::strerror(errno));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// A new or removed file name is durable only once its directory is fsynced.
Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open dir", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoError("fsync dir", dir);
}

}  // namespace

namespace wal {

std::string SegmentFileName(uint64_t first_seq) {
  char name[64];
  std::snprintf(name, sizeof(name), "wal-%020llu.log", static_cast<unsigned long long>(first_seq));
  return name;
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != 28 || !name.starts_with("wal-") || !name.ends_with(".log")) return {};
  std::string_view digits = name.substr(4, 20);
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size()) return {};
  return seq;
}

void AppendSegmentHeader(std::string_view cluster_id, uint64_t first_seq, std::string* out) {
  const size_t start = out->size();
  out->append(kMagic);
  PutU32(out, kVersion);
  PutU32(out, static_cast<uint32_t>(cluster_id.size()));
  out->append(cluster_id);
  PutU64(out, first_seq);
  PutU32(out, XXH32(out->data() + start, out->size() - start, 0));
}

size_t SegmentHeaderBytes(std::string_view cluster_id) {
  return kMagic.size() + 4 + 4 + cluster_id.size() + 8 + 4;
}

uint32_t RecordChecksum(std::string_view payload) {
  return XXH32(payload.data(), payload.size(), static_cast<uint32_t>(payload.size()));
}

StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir) {
  std::vector<SegmentFile> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<uint64_t> seq = ParseSegmentFileName(it->path().filename().string());
    if (!seq || !it->is_regular_file()) continue;
    uint64_t bytes = it->file_size(ec);
    if (ec) break;
    out.push_back({*seq, it->path().string(), bytes});
  }
  if (ec) return Internal("WAL: list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.first_seq < b.first_seq; });
  return out;
}

}  // namespace wal

namespace {

// Frames each entry as a record (wal_writer.h) into *out; *sizes gets each record's length.
Status EncodeRecords(std::span<const tandem::v1::OpLogEntry> entries, std::string* out,
                     std::vector<uint32_t>* sizes) {
  sizes->reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const tandem::v1::OpLogEntry& e = entries[i];
    if (i > 0 && e.sequence_id() != entries[i - 1].sequence_id() + 1) {
      return Internal("WAL: batch is not contiguous at seq " + std::to_string(e.sequence_id()));
    }
    if (!Verify(e)) {
      return Internal("WAL: entry seq " + std::to_string(e.sequence_id()) +
                      " fails its checksum; not logged");
    }
    const size_t start = out->size();
    out->append(wal::kRecordHeaderBytes, '\0');
    e.AppendToString(out);
    const size_t len = out->size() - start - wal::kRecordHeaderBytes;
    if (len > wal::kMaxRecordBytes) {
      return Internal("WAL: entry seq " + std::to_string(e.sequence_id()) + " is over 64 MiB");
    }
    std::string_view payload(out->data() + start + wal::kRecordHeaderBytes, len);
    SetU32(out->data() + start, static_cast<uint32_t>(len));
    SetU32(out->data() + start + 4, wal::RecordChecksum(payload));
    sizes->push_back(static_cast<uint32_t>(wal::kRecordHeaderBytes + len));
  }
  return Status::Ok();
}

}  // namespace

std::optional<WalFsync> ParseWalFsync(std::string_view name) {
  if (name == "always") return WalFsync::kAlways;
  if (name == "interval") return WalFsync::kInterval;
  if (name == "never") return WalFsync::kNever;
  return {};
}

std::string_view WalFsyncName(WalFsync policy) {
  switch (policy) {
    case WalFsync::kAlways:
      return "always";
    case WalFsync::kInterval:
      return "interval";
    case WalFsync::kNever:
      return "never";
  }
  return "?";
}

StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(const WalOptions& options, uint64_t next_seq) {
  if (options.dir.empty() || next_seq == 0 || options.segment_bytes == 0 ||
      options.cluster_id.size() > wal::kMaxClusterIdBytes) {
    return Status(ErrorCode::kInvalidParams, "WAL: bad options (dir, next_seq, segment size)");
  }
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Internal("WAL: create " + options.dir + ": " + ec.message());
  StatusOr<std::vector<wal::SegmentFile>> segments = wal::ListSegments(options.dir);
  if (!segments.ok()) return segments.status();
  for (const wal::SegmentFile& s : segments.value()) {
    if (s.first_seq >= next_seq) {
      return Status(ErrorCode::kInvalidState,
                    "WAL: segment " + s.path + " starts at seq " + std::to_string(s.first_seq) +
                        ", not before next_seq " + std::to_string(next_seq) +
                        "; recover (DiscardWalAfter) before opening the writer");
    }
  }
  std::unique_ptr<WalWriter> writer(new WalWriter(options, next_seq, std::move(segments).value()));
  writer->StartFlusher();
  return writer;
}

WalWriter::WalWriter(const WalOptions& options, uint64_t next_seq,
                     std::vector<wal::SegmentFile> segments)
    : options_(options),
      appended_seq_(next_seq - 1),
      written_seq_(next_seq - 1),
      synced_seq_(next_seq - 1),
      sync_wanted_(next_seq - 1),
      segments_(std::move(segments)),
      open_seq_(next_seq) {}

WalWriter::~WalWriter() {
  StopFlusher();
  if (active_fd_ >= 0) ::close(active_fd_);
}

void WalWriter::StartFlusher() {
  stop_ = false;
  flusher_ = std::thread([this] { FlusherLoop(); });
}

void WalWriter::StopFlusher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;  // the flusher writes and fsyncs what is queued before it exits
  }
  flusher_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

Status WalWriter::Enqueue(std::span<const tandem::v1::OpLogEntry> entries) {
  if (entries.empty()) return Status::Ok();
  // Encode outside the lock: serialization is the costly part and callers run it in parallel.
  std::string encoded;
  std::vector<uint32_t> sizes;
  if (Status s = EncodeRecords(entries, &encoded, &sizes); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  uint64_t seq = entries.front().sequence_id();
  if (seq != appended_seq_ + 1) {
    return Internal("WAL: expected seq " + std::to_string(appended_seq_ + 1) + ", got " +
                    std::to_string(seq));
  }
  const bool was_idle = pending_.empty();
  const uint64_t header_bytes = wal::SegmentHeaderBytes(options_.cluster_id);
  size_t offset = 0;
  for (uint32_t size : sizes) {
    // Rotate at record boundaries only; a record larger than a segment gets one to itself.
    bool rotate = !segment_started_ ||
                  (segment_fill_ + size > options_.segment_bytes && segment_fill_ > header_bytes);
    if (rotate) {
      pending_.push_back({true, seq, seq, {}});
      segment_fill_ = header_bytes;
      segment_started_ = true;
    } else if (pending_.empty()) {
      pending_.push_back({false, seq, seq, {}});
    }
    Pending& p = pending_.back();
    p.bytes.append(encoded, offset, size);
    p.last_seq = seq++;
    offset += size;
    segment_fill_ += size;
    pending_bytes_ += size;
  }
  appended_seq_ = seq - 1;
  if (was_idle || options_.fsync == WalFsync::kAlways || pending_bytes_ >= kEagerWriteBytes) {
    flusher_cv_.notify_one();
  }
  return Status::Ok();
}

Status WalWriter::Append(const tandem::v1::OpLogEntry& entry) {
  return AppendBatch(std::span<const tandem::v1::OpLogEntry>(&entry, 1));
}

Status WalWriter::AppendBatch(std::span<const tandem::v1::OpLogEntry> entries) {
  if (Status s = Enqueue(entries); !s.ok() || entries.empty()) return s;
  if (options_.fsync != WalFsync::kAlways) return Status::Ok();
  std::unique_lock<std::mutex> lock(mu_);
  return WaitLocked(lock, entries.back().sequence_id(), /*fsynced=*/true, std::nullopt);
}

Status WalWriter::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = appended_seq_;
  sync_wanted_ = std::max(sync_wanted_, target);
  flusher_cv_.notify_one();
  return WaitLocked(lock, target, /*fsynced=*/true, std::nullopt);
}

Status WalWriter::WaitDurable(uint64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return WaitLocked(lock, seq, /*fsynced=*/false, Clock::now() + timeout);
}

Status WalWriter::WaitLocked(std::unique_lock<std::mutex>& lock, uint64_t seq, bool fsynced,
                             std::optional<Clock::time_point> deadline) {
  auto reached = [&] { return !failed_.ok() || (fsynced ? synced_seq_ : DurableLocked()) >= seq; };
  if (deadline) {
    if (!durable_cv_.wait_until(lock, *deadline, reached)) {
      return Status(ErrorCode::kUnavailable, "WAL: durable_seq " + std::to_string(DurableLocked()) +
                                                 " has not reached seq " + std::to_string(seq));
    }
  } else {
    durable_cv_.wait(lock, reached);
  }
  return failed_;
}

uint64_t WalWriter::DurableLocked() const {
  return options_.fsync == WalFsync::kNever ? written_seq_ : synced_seq_;
}

uint64_t WalWriter::appended_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appended_seq_;
}

uint64_t WalWriter::durable_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DurableLocked();
}

Status WalWriter::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

WalStats WalWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WalStats stats;
  stats.appended_seq = appended_seq_;
  stats.durable_seq = DurableLocked();
  stats.segments = segments_.size();
  for (const wal::SegmentFile& s : segments_) stats.bytes_on_disk += s.bytes;
  stats.fsyncs = fsyncs_;
  return stats;
}

WalWriter::Round WalWriter::DecideRoundLocked(Clock::time_point now) const {
  const auto interval = std::chrono::milliseconds(options_.fsync_interval_ms);
  const bool pending = !pending_.empty();
  const bool unsynced = appended_seq_ > synced_seq_;
  const bool sync_wanted = sync_wanted_ > synced_seq_;
  const bool big = pending_bytes_ >= kEagerWriteBytes;
  Round r;
  if (stop_) {
    r.write = pending;
    r.fsync = unsynced;
    return r;
  }
  switch (options_.fsync) {
    case WalFsync::kAlways:
      r.fsync = unsynced;
      r.write = pending;
      break;
    case WalFsync::kInterval:
      // At most one fsync per interval: an entry after a quiet spell is synced at once, a
      // steady stream is synced in groups every interval. Records are handed to the OS at most
      // kWriteDelay after they were queued, not held until the next fsync: a process crash
      // (kill -9 of every node) then loses about a millisecond of writes, not an interval plus
      // an fsync. The delay groups writes, so a busy node makes ~1000 write calls a second.
      r.fsync = sync_wanted || (unsynced && now - last_fsync_ >= interval);
      r.write = pending && (r.fsync || big || now - last_write_ >= kWriteDelay);
      break;
    case WalFsync::kNever:
      r.fsync = sync_wanted;
      r.write = pending && (sync_wanted || big || now - last_write_ >= kWriteDelay);
      break;
  }
  return r;
}

Clock::time_point WalWriter::NextDeadlineLocked() const {
  const auto interval = std::chrono::milliseconds(options_.fsync_interval_ms);
  Clock::time_point next =
      options_.fsync == WalFsync::kNever ? Clock::time_point::max() : last_fsync_ + interval;
  if (!pending_.empty()) next = std::min(next, last_write_ + kWriteDelay);
  return next;
}

void WalWriter::FlusherLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    Round r = failed_.ok() ? DecideRoundLocked(Clock::now()) : Round{};
    if (!r.write && !r.fsync) {
      if (stop_) return;
      const bool waiting_for_timer = failed_.ok() && options_.fsync != WalFsync::kAlways &&
                                     (!pending_.empty() || appended_seq_ > synced_seq_) &&
                                     !(options_.fsync == WalFsync::kNever && pending_.empty());
      if (waiting_for_timer) {
        flusher_cv_.wait_until(lock, NextDeadlineLocked());
      } else {
        flusher_cv_.wait(lock);
      }
      continue;
    }
    std::vector<Pending> batch;
    if (r.write) {
      batch.swap(pending_);
      pending_bytes_ = 0;
    }
    const uint64_t target = batch.empty() ? written_seq_ : batch.back().last_seq;
    lock.unlock();
    Status s = WriteRound(batch, r.fsync);
    const Clock::time_point now = Clock::now();
    lock.lock();
    if (!s.ok()) {
      failed_ = s;
    } else {
      written_seq_ = std::max(written_seq_, target);
      if (r.write) last_write_ = now;
      if (r.fsync) {
        synced_seq_ = written_seq_;
        last_fsync_ = now;
        ++fsyncs_;
      }
    }
    durable_cv_.notify_all();
  }
}

Status WalWriter::WriteRound(std::vector<Pending>& batch, bool fsync) {
  for (Pending& p : batch) {
    if (p.new_segment) {
      if (Status s = StartSegment(p.first_seq); !s.ok()) return s;
    }
    if (Status s = WriteAll(active_fd_, p.bytes, active_path_); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    segments_.back().bytes += p.bytes.size();
  }
  if (fsync && active_fd_ >= 0 && ::fdatasync(active_fd_) != 0) {
    return IoError("fdatasync", active_path_);
  }
  return Status::Ok();
}

Status WalWriter::StartSegment(uint64_t first_seq) {
  if (active_fd_ >= 0) {
    // A finished segment is complete on disk before the next one exists, so a torn record can
    // only ever be at the end of the last segment.
    if (::fdatasync(active_fd_) != 0) return IoError("fdatasync", active_path_);
    ::close(active_fd_);
    active_fd_ = -1;
  }
  const std::string path = (fs::path(options_.dir) / wal::SegmentFileName(first_seq)).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create", path);
  std::string header;
  wal::AppendSegmentHeader(options_.cluster_id, first_seq, &header);
  Status s = WriteAll(fd, header, path);
  if (s.ok()) s = FsyncDir(options_.dir);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  active_fd_ = fd;
  active_path_ = path;
  std::lock_guard<std::mutex> lock(mu_);
  segments_.push_back({first_seq, path, header.size()});
  writing_segment_ = true;
  return Status::Ok();
}

StatusOr<int> WalWriter::RemoveCoveredBy(uint64_t seq) {
  std::vector<std::string> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t n = segments_.size();
    size_t covered = 0;
    for (; covered < n; ++covered) {
      if (writing_segment_ && covered == n - 1) break;  // the segment being written stays
      // A segment ends where the next begins; the last one before Open ends before open_seq_.
      uint64_t end = covered + 1 < n ? segments_[covered + 1].first_seq - 1 : open_seq_ - 1;
      if (end > seq) break;
      doomed.push_back(segments_[covered].path);
    }
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(covered));
  }
  for (const std::string& path : doomed) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("unlink", path);
  }
  if (!doomed.empty()) {
    if (Status s = FsyncDir(options_.dir); !s.ok()) return s;
  }
  return static_cast<int>(doomed.size());
}

Status WalWriter::Reset(uint64_t next_seq) {
  if (next_seq == 0) return Status(ErrorCode::kInvalidParams, "WAL: next_seq must be >= 1");
  StopFlusher();
  if (active_fd_ >= 0) ::close(active_fd_);
  active_fd_ = -1;
  StatusOr<std::vector<wal::SegmentFile>> segments = wal::ListSegments(options_.dir);
  Status result = segments.status();
  if (segments.ok()) {
    for (const wal::SegmentFile& s : segments.value()) {
      if (::unlink(s.path.c_str()) != 0 && errno != ENOENT) result = IoError("unlink", s.path);
    }
    if (result.ok()) result = FsyncDir(options_.dir);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    appended_seq_ = written_seq_ = synced_seq_ = sync_wanted_ = next_seq - 1;
    segments_.clear();
    pending_.clear();
    pending_bytes_ = 0;
    segment_fill_ = 0;
    segment_started_ = false;
    writing_segment_ = false;
    open_seq_ = next_seq;
    if (!result.ok()) failed_ = result;
  }
  StartFlusher();
  return result;
}

}  // namespace tandem::oplog
