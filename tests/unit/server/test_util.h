// Helpers shared by the server tests: a hand-driven clock and a scratch directory.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "server/clock.h"

namespace tandem::server::testing {

class ManualClock : public Clock {
 public:
  explicit ManualClock(uint64_t start_ms = 1'000'000) : now_ms_(start_ms) {}
  uint64_t NowMs() override { return now_ms_.load(); }
  void Advance(uint64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<uint64_t> now_ms_;
};

// A fresh directory under /tmp, removed with everything in it at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = "/tmp/tandem-server-test-XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    path_ = made != nullptr ? made : "";
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace tandem::server::testing
