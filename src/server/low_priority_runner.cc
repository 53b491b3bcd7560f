#include "server/low_priority_runner.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tandem::server {
namespace {

void LowerThisThread(const std::string& priority) {
  if (priority == "idle") {
    sched_param param{};
    if (::sched_setscheduler(::gettid(), SCHED_IDLE, &param) == 0) return;
    spdlog::warn("low-priority runner: cannot use SCHED_IDLE ({}); using nice 10",
                 std::strerror(errno));
  }
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10) != 0) {
    spdlog::debug("low-priority runner: cannot lower the thread's priority: {}",
                  std::strerror(errno));
  }
}

}  // namespace

LowPriorityRunner::LowPriorityRunner(std::string priority) : priority_(std::move(priority)) {
  thread_ = std::thread([this] { Loop(); });
}

LowPriorityRunner::~LowPriorityRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LowPriorityRunner::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void LowPriorityRunner::Loop() {
  LowerThisThread(priority_);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_, and every job ran
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

}  // namespace tandem::server
