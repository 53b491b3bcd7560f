#include "server/low_priority_runner.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
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

// The runner thread's (policy, nice).
std::pair<int, int> PriorityOf(LowPriorityRunner& runner) {
  return runner.Run([] {
    return std::pair<int, int>(sched_getscheduler(0),
                               getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())));
  });
}

TEST(LowPriorityRunnerTest, IdleRunsUnderSchedIdleOrNiceTenWhereRefused) {
  LowPriorityRunner runner("idle");
  const auto [policy, nice] = PriorityOf(runner);
  // Lowering oneself to SCHED_IDLE needs no privilege, but a sandbox may refuse it: nice 10.
  EXPECT_TRUE(policy == SCHED_IDLE || (policy == SCHED_OTHER && nice == 10))
      << "policy " << policy << ", nice " << nice;
  LowPriorityRunner low("low");
  EXPECT_EQ(PriorityOf(low), std::make_pair(SCHED_OTHER, 10));
  // The caller's own priority is untouched.
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
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
