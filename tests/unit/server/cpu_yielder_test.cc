#include "server/cpu_yielder.h"

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

TEST(CpuYielderTest, YieldsOncePerIntervalAtMost) {
  CpuYielder every_call{std::chrono::microseconds(0)};
  for (int i = 0; i < 5; ++i) every_call.MaybeYield();
  EXPECT_EQ(every_call.yields(), 5u);

  CpuYielder never{std::chrono::hours(1)};
  for (int i = 0; i < 1000; ++i) never.MaybeYield();
  EXPECT_EQ(never.yields(), 0u);
}

}  // namespace
}  // namespace tandem::server
