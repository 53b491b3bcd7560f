// WritePacer: spreads a snapshot's disk writes over time. On a small virtual machine an unpaced
// 50 MB write-back stalls the threads serving clients for milliseconds (measured in
// bench/RESULTS.md: client p99 5-8x), while the same bytes written in 1 MiB synced pieces at
// 16-32 MiB/s leave it near its baseline. Pure arithmetic: the file that uses it does the sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace tandem::snapshot {

class WritePacer {
 public:
  // bytes_per_s 0: no pacing (Delay is always zero).
  explicit WritePacer(uint64_t bytes_per_s) : bytes_per_s_(bytes_per_s) {}

  bool enabled() const { return bytes_per_s_ != 0; }

  // How long to wait, `elapsed` after the first write, once `bytes` have been written in all,
  // so the average rate stays at or under bytes_per_s. Zero when the writer is behind schedule
  // (a slow disk is not made slower).
  std::chrono::nanoseconds Delay(uint64_t bytes, std::chrono::nanoseconds elapsed) const;

 private:
  uint64_t bytes_per_s_;
};

}  // namespace tandem::snapshot
