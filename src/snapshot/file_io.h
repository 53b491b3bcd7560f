// Thin POSIX file helpers for the snapshot module: a buffered append-only file with fsync, a
// sequential reader, and the directory fsync that makes a create, rename or unlink durable.
// Errors come back as INTERNAL statuses naming the path and errno text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

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
  Status Append(std::string_view data);
  Status Sync();  // flushes the buffer, then fsync
  Status Close();
  uint64_t bytes() const { return bytes_; }

 private:
  Status Flush();

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t bytes_ = 0;
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
