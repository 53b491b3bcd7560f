#include "snapshot/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace tandem::snapshot {
namespace {

// Large enough that a 100 MB snapshot is a few dozen write calls.
constexpr size_t kWriteBuffer = 4u << 20;

Status IoError(std::string_view what, const std::string& path) {
  return Status(ErrorCode::kInternal, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

WritableFile::~WritableFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status WritableFile::Open(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError("create", path);
  buffer_.reserve(kWriteBuffer);
  return Status::Ok();
}

void WritableFile::Pace(uint64_t bytes_per_s, size_t sync_every, const std::atomic<bool>* stop,
                        std::function<bool()> idle) {
  pacer_ = WritePacer(bytes_per_s);
  stop_pacing_ = stop;
  idle_ = std::move(idle);
  sync_every_ = bytes_per_s == 0 ? 0 : std::max<size_t>(sync_every, 4096);
}

Status WritableFile::Append(std::string_view data) {
  bytes_ += data.size();
  if (buffer_.size() + data.size() > kWriteBuffer) {
    if (Status s = Flush(); !s.ok()) return s;
  }
  if (data.size() >= kWriteBuffer) {
    buffer_.assign(data);  // a big block goes out on its own
    return Flush();
  }
  buffer_.append(data);
  return Status::Ok();
}

Status WritableFile::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("write", path_);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status WritableFile::Flush() {
  std::string_view data = buffer_;
  if (!pacer_.enabled()) {
    Status s = WriteAll(data);
    buffer_.clear();
    return s;
  }
  if (flushed_ == 0 && !data.empty()) pace_origin_ = std::chrono::steady_clock::now();
  while (!data.empty()) {
    const size_t piece = std::min(data.size(), sync_every_ - unsynced_);
    if (Status s = WriteAll(data.substr(0, piece)); !s.ok()) return s;
    data.remove_prefix(piece);
    flushed_ += piece;
    unsynced_ += piece;
    if (unsynced_ < sync_every_) continue;
    if (::fdatasync(fd_) != 0) return IoError("fdatasync", path_);
    unsynced_ = 0;
    if (idle_ && idle_()) {
      pace_origin_ = std::chrono::steady_clock::now();
      pace_origin_bytes_ = flushed_;
      continue;
    }
    // Waits in steps of at most 10 ms, so a stop is seen soon.
    for (int step = 0; step < 100'000; ++step) {
      if (stop_pacing_ != nullptr && stop_pacing_->load(std::memory_order_relaxed)) break;
      const std::chrono::nanoseconds wait = pacer_.Delay(
          flushed_ - pace_origin_bytes_, std::chrono::steady_clock::now() - pace_origin_);
      if (wait.count() <= 0) break;
      const auto nap = std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(10));
      std::this_thread::sleep_for(nap);
      paced_seconds_ += std::chrono::duration<double>(nap).count();
    }
  }
  buffer_.clear();
  return Status::Ok();
}

Status WritableFile::Sync() {
  if (Status s = Flush(); !s.ok()) return s;
  if (::fsync(fd_) != 0) return IoError("fsync", path_);
  return Status::Ok();
}

Status WritableFile::Close() {
  Status s = Flush();
  if (fd_ >= 0 && ::close(fd_) != 0 && s.ok()) s = IoError("close", path_);
  fd_ = -1;
  return s;
}

ReadableFile::~ReadableFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status ReadableFile::Open(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return IoError("open", path);
  struct stat st;
  if (::fstat(fd_, &st) != 0) return IoError("stat", path);
  size_ = static_cast<uint64_t>(st.st_size);
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  return Status::Ok();
}

Status ReadableFile::ReadAt(uint64_t offset, size_t n, std::string* out) const {
  out->resize(n);
  return ReadAt(offset, n, out->data());
}

Status ReadableFile::ReadAt(uint64_t offset, size_t n, char* out) const {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return IoError("read", path_);
    if (got == 0) {
      return Status(ErrorCode::kInternal,
                    fmt::format("{}: short read at offset {}", path_, offset + done));
    }
    done += static_cast<size_t>(got);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open dir", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoError("fsync dir", dir);
}

}  // namespace tandem::snapshot
