// Helpers shared by the server tests: a hand-driven clock and a scratch directory.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "scratch_dir.h"
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

using tandem::testing::ScratchDir;  // tests/common/scratch_dir.h

}  // namespace tandem::server::testing
