#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace tandem::server {

StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& data_dir) {
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return Status(ErrorCode::kInternal,
                  "cannot create data dir " + data_dir + ": " + error.message());
  }
  const std::string path = (std::filesystem::path(data_dir) / "LOCK").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(ErrorCode::kInternal, "cannot open " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int flock_errno = errno;
    ::close(fd);
    if (flock_errno == EWOULDBLOCK) {
      return Status(
          ErrorCode::kInvalidState,
          "data dir " + data_dir + " is in use by another tandem-master (" + path + " is locked)");
    }
    return Status(ErrorCode::kInternal, "cannot lock " + path + ": " + std::strerror(flock_errno));
  }
  // The holder's pid, for whoever finds the directory locked.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::write(fd, pid.data(), pid.size()) < 0) {
    // Not fatal: the lock is what matters.
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() { ::close(fd_); }

}  // namespace tandem::server
