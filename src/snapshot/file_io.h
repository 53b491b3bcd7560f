// Thin POSIX file helpers for the snapshot module: a buffered append-only file with fsync, a
// sequential reader, and the directory fsync that makes a create, rename or unlink durable.
// Errors come back as INTERNAL statuses naming the path and errno text.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "snapshot/write_pacer.h"

namespace tandem::snapshot {

// Append-only, buffered. Close() without Sync() loses nothing but promises no durability.
class WritableFile {
 public:
  WritableFile() = default;
  ~WritableFile();
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;

  // Creates or truncates `path`.
  Status Open(const std::string& path);
  // Writes at most `bytes_per_s` on average, each `sync_every` bytes pushed to the disk
  // (fdatasync) before the next: small, spread-out write-backs instead of one burst. 0: off.
  // Once *stop (when given) is true, the file no longer waits. When idle() (when given) is true
  // at a piece's end, that piece does not wait and the average restarts after it: a node that
  // serves nobody writes at full speed, and pacing resumes as soon as someone is served.
  void Pace(uint64_t bytes_per_s, size_t sync_every, const std::atomic<bool>* stop = nullptr,
            std::function<bool()> idle = nullptr);
  Status Append(std::string_view data);
  Status Sync();  // flushes the buffer, then fsync
  Status Close();
  uint64_t bytes() const { return bytes_; }
  // Time spent waiting for the pace, in seconds.
  double paced_seconds() const { return paced_seconds_; }

 private:
  Status Flush();
  Status WriteAll(std::string_view data);

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t bytes_ = 0;
  WritePacer pacer_{0};
  size_t sync_every_ = 0;
  const std::atomic<bool>* stop_pacing_ = nullptr;
  std::function<bool()> idle_;
  uint64_t flushed_ = 0;   // bytes handed to write(2)
  uint64_t unsynced_ = 0;  // of which not yet fdatasync'ed (paced mode)
  double paced_seconds_ = 0;
  // The pace is the average since this point: the first write, or the end of the last idle piece.
  std::chrono::steady_clock::time_point pace_origin_{};
  uint64_t pace_origin_bytes_ = 0;
};

class ReadableFile {
 public:
  ReadableFile() = default;
  ~ReadableFile();
  ReadableFile(const ReadableFile&) = delete;
  ReadableFile& operator=(const ReadableFile&) = delete;

  Status Open(const std::string& path);
  uint64_t size() const { return size_; }
  // Reads exactly n bytes at `offset` into *out (resized); INTERNAL on a short read.
  Status ReadAt(uint64_t offset, size_t n, std::string* out) const;
  Status ReadAt(uint64_t offset, size_t n, char* out) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

Status FsyncDir(const std::string& dir);

}  // namespace tandem::snapshot
