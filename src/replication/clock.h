// Time as a seam: the replication classes read time only through these functions, so tests can
// pass a fake clock and drive timeouts by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace tandem::replication {

// Milliseconds. Which clock is meant is said where one is taken (wall time for entry timestamps
// and status, steady time for timeouts).
using Clock = std::function<uint64_t()>;

inline uint64_t WallClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

inline uint64_t SteadyClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace tandem::replication
