#include "snapshot/write_pacer.h"

#include <algorithm>
#include <cstdint>

namespace tandem::snapshot {

std::chrono::nanoseconds WritePacer::Delay(uint64_t bytes, std::chrono::nanoseconds elapsed) const {
  if (bytes_per_s_ == 0) return std::chrono::nanoseconds(0);
  // 128-bit: bytes * 1e9 overflows 64 bits past ~18 GB.
  const unsigned __int128 due_ns =
      static_cast<unsigned __int128>(bytes) * 1'000'000'000u / bytes_per_s_;
  const std::chrono::nanoseconds due(
      static_cast<int64_t>(std::min<unsigned __int128>(due_ns, INT64_MAX)));
  return due > elapsed ? due - elapsed : std::chrono::nanoseconds(0);
}

}  // namespace tandem::snapshot
