#include "server/low_priority_runner.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace tandem::server {
namespace {

TEST(LowPriorityRunnerTest, RunsTheJobOnItsOwnThreadAndReturnsItsResult) {
  LowPriorityRunner runner("idle");
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  const std::string result = runner.Run([&] {
    ran_on = std::this_thread::get_id();
    return std::string("written");
  });
  EXPECT_EQ(result, "written");
  EXPECT_NE(ran_on, caller);
}

TEST(LowPriorityRunnerTest, IdleRunsUnderSchedIdleOrNiceTenWhereRefused) {
  LowPriorityRunner runner("idle");
  const int policy = runner.Run([] { return sched_getscheduler(0); });
  // SCHED_IDLE is allowed to lower oneself without privileges; the fallback is nice 10.
  EXPECT_EQ(policy, SCHED_IDLE);
  LowPriorityRunner low("low");
  EXPECT_EQ(low.Run([] { return sched_getscheduler(0); }), SCHED_OTHER);
}

TEST(LowPriorityRunnerTest, JobsFromSeveralCallersRunOneAtATime) {
  LowPriorityRunner runner("low");
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        runner.Run([&] {
          const int now = ++running;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          --running;
          return 0;
        });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(most.load(), 1);
}

}  // namespace
}  // namespace tandem::server
