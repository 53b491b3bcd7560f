// LowPriorityRunner: one thread at a low CPU priority (SCHED_IDLE, or nice 10) that runs jobs
// one at a time for a caller that waits for them.
//
// For work that keeps a core busy for a while but holds no lock a client path needs (serializing
// and writing a snapshot). A lock must never be held at this priority: on a busy machine the
// thread may not run again for many milliseconds, and a client thread waiting on that lock would
// wait as long (the snapshot capture therefore stays on its caller's thread).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

namespace tandem::server {

class LowPriorityRunner {
 public:
  // `priority`: "idle" (SCHED_IDLE; nice 10 where that is refused) or "low" (nice 10).
  explicit LowPriorityRunner(std::string priority);
  ~LowPriorityRunner();  // finishes the queued jobs, then joins; no Run may be under way
  LowPriorityRunner(const LowPriorityRunner&) = delete;
  LowPriorityRunner& operator=(const LowPriorityRunner&) = delete;

  // Runs fn() on the runner's thread and returns its result.
  template <typename Fn>
  std::invoke_result_t<Fn&> Run(Fn&& fn) {
    // The job owns the task: the runner may still be returning from it when get() returns.
    auto task =
        std::make_shared<std::packaged_task<std::invoke_result_t<Fn&>()>>(std::forward<Fn>(fn));
    auto result = task->get_future();
    Post([task] { (*task)(); });
    return result.get();
  }

 private:
  void Post(std::function<void()> job);
  void Loop();

  const std::string priority_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem::server
