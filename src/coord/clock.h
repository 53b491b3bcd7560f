// Time as a seam for the coordination layer: the lease keeper, membership and their tests read
// time only through a Clock, so a test can drive the fencing deadline by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace tandem::coord {

// Milliseconds; monotonic unless said otherwise where one is taken.
using Clock = std::function<uint64_t()>;

inline uint64_t SteadyClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

inline uint64_t WallClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace tandem::coord
