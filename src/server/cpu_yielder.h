// CpuYielder: lets long background work (a snapshot's capture and serialization) give its core
// back every ~100 µs.
//
// Why: on Linux 6.x (EEVDF) a running thread -- even a SCHED_IDLE one -- may keep its core for
// most of a scheduler slice (~3 ms) after a client thread of the same process wakes up wanting
// it. On a 2-core box a snapshot thread thus put client get p99 at 3-4x its baseline; the same
// work yielding every 100 µs measured 1.03x (bench/RESULTS.md, docs/decisions.md). A yield with
// nothing else runnable returns at once, so an idle machine loses no speed.
#pragma once

#include <chrono>
#include <cstdint>

namespace tandem::server {

class CpuYielder {
 public:
  explicit CpuYielder(std::chrono::microseconds every = std::chrono::microseconds(100));

  // Calls sched_yield() when `every` has passed since the last yield (or since construction).
  // Cheap enough to call per block of work: one clock read otherwise.
  void MaybeYield();
  uint64_t yields() const { return yields_; }

 private:
  std::chrono::steady_clock::duration every_;
  std::chrono::steady_clock::time_point last_;
  uint64_t yields_ = 0;
};

}  // namespace tandem::server
