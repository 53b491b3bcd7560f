// DataDirLock: exclusive ownership of a data directory for the life of the process, through
// flock on <data-dir>/LOCK. The kernel drops the lock when the process dies, so a crash never
// leaves a stale lock behind; a second master on the same directory is refused.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace tandem::server {

class DataDirLock {
 public:
  // Creates the directory if missing and locks it. INVALID_STATE when another process holds
  // the lock, INTERNAL for any other failure (message names the path and errno text).
  static StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir);
  ~DataDirLock();  // releases
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace tandem::server
