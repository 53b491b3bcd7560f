#include "server/cpu_yielder.h"

#include <sched.h>

namespace tandem::server {

CpuYielder::CpuYielder(std::chrono::microseconds every)
    : every_(every), last_(std::chrono::steady_clock::now()) {}

void CpuYielder::MaybeYield() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < every_) return;
  sched_yield();
  ++yields_;
  last_ = std::chrono::steady_clock::now();
}

}  // namespace tandem::server
