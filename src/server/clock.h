// Clock: the only way the server reads time. The state machine takes `now_ms` as an argument and
// never reads a clock itself; the service and maintenance pass it NowMs(), so a test (or a
// future simulator) can drive time by substituting a fake.
#pragma once

#include <chrono>
#include <cstdint>

namespace tandem::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock: also stamped into OpLog entries). Thread-safe.
  virtual uint64_t NowMs() = 0;
};

class SystemClock : public Clock {
 public:
  uint64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace tandem::server
