#include "replication/ack_waiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace tandem::replication {

AckWaiter::AckWaiter(const AckWaiterOptions& options, Clock steady_clock)
    : options_(options), clock_(std::move(steady_clock)) {}

AckWaiter::~AckWaiter() { Shutdown(); }

void AckWaiter::WaitForAcks(uint64_t seq, Done done) {
  std::unique_lock<std::mutex> lock(mu_);
  ++stats_.waits;
  if (shut_down_) {
    lock.unlock();
    done(Status(ErrorCode::kUnavailable, "replication is shutting down"));
    return;
  }
  if (options_.min_sync_acks == 0 || seq <= quorum_seq_) {
    lock.unlock();
    done(Status::Ok());
    return;
  }
  if (degraded_) {  // async until the standbys catch up
    degraded_until_seq_ = std::max(degraded_until_seq_, seq);
    lock.unlock();
    done(Status::Ok());
    return;
  }
  const bool was_empty = waiters_.empty();
  const uint64_t id = next_id_++;
  waiters_.emplace(id, Waiter{seq, clock_() + options_.replication_timeout_ms, std::move(done)});
  by_seq_.emplace(seq, id);
  lock.unlock();
  if (was_empty) cv_.notify_one();  // the timer sleeps without a deadline while idle
}

void AckWaiter::OnAck(const std::string& standby_id, uint64_t acked_seq) {
  std::vector<Completion> completions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acked_[standby_id] = acked_seq;
    quorum_seq_ = QuorumSeqLocked();
    ReleaseLocked(completions);
  }
  Run(completions);
}

uint64_t AckWaiter::QuorumSeqLocked() const {
  if (options_.min_sync_acks == 0) return UINT64_MAX;
  if (acked_.size() < options_.min_sync_acks) return 0;
  std::vector<uint64_t> seqs;
  seqs.reserve(acked_.size());
  for (const auto& [id, seq] : acked_) seqs.push_back(seq);
  // The min_sync_acks-th highest: that many distinct standbys hold at least this seq.
  auto nth = seqs.begin() + (options_.min_sync_acks - 1);
  std::nth_element(seqs.begin(), nth, seqs.end(), std::greater<>());
  return *nth;
}

void AckWaiter::ReleaseLocked(std::vector<Completion>& out) {
  while (!by_seq_.empty() && by_seq_.begin()->first <= quorum_seq_) {
    auto waiter = waiters_.find(by_seq_.begin()->second);
    out.emplace_back(std::move(waiter->second.done), Status::Ok());
    waiters_.erase(waiter);
    by_seq_.erase(by_seq_.begin());
  }
  if (degraded_ && quorum_seq_ >= degraded_until_seq_) {
    degraded_ = false;
    spdlog::warn("sync replication restored: {} standby(s) acknowledged seq {}",
                 options_.min_sync_acks, quorum_seq_);
  }
}

void AckWaiter::Tick() {
  std::vector<Completion> completions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpireLocked(clock_(), completions);
  }
  Run(completions);
}

void AckWaiter::ExpireLocked(uint64_t now_ms, std::vector<Completion>& out) {
  if (waiters_.empty() || waiters_.begin()->second.deadline_ms > now_ms) return;
  if (options_.sync_fallback == SyncFallback::kFail) {
    while (!waiters_.empty() && waiters_.begin()->second.deadline_ms <= now_ms) {
      Waiter& w = waiters_.begin()->second;
      ++stats_.timeouts;
      out.emplace_back(std::move(w.done),
                       Status(ErrorCode::kReplicationTimeout,
                              "seq " + std::to_string(w.seq) + " not acknowledged by " +
                                  std::to_string(options_.min_sync_acks) + " standby(s) within " +
                                  std::to_string(options_.replication_timeout_ms) + " ms"));
      auto range = by_seq_.equal_range(w.seq);
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second == waiters_.begin()->first) {
          by_seq_.erase(it);
          break;
        }
      }
      waiters_.erase(waiters_.begin());
    }
    return;
  }
  // Degrade: stop waiting at all. Everyone pending completes OK; async until caught up.
  const uint64_t first_seq = waiters_.begin()->second.seq;
  for (auto& [id, w] : waiters_) {
    if (w.deadline_ms <= now_ms) ++stats_.timeouts;
    degraded_until_seq_ = std::max(degraded_until_seq_, w.seq);
    out.emplace_back(std::move(w.done), Status::Ok());
  }
  waiters_.clear();
  by_seq_.clear();
  degraded_ = true;
  ++stats_.degraded;
  spdlog::error(
      "SYNC REPLICATION DEGRADED TO ASYNC: seq {} not acknowledged by {} standby(s) within {} ms "
      "(acknowledged up to seq {}); writes are no longer protected by standbys until they catch "
      "up to seq {}",
      first_seq, options_.min_sync_acks, options_.replication_timeout_ms, quorum_seq_,
      degraded_until_seq_);
}

void AckWaiter::FailAll(const Status& status) {
  std::vector<Completion> completions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, w] : waiters_) completions.emplace_back(std::move(w.done), status);
    waiters_.clear();
    by_seq_.clear();
  }
  Run(completions);
}

void AckWaiter::Run(std::vector<Completion>& completions) {
  for (auto& [done, status] : completions) done(std::move(status));
}

void AckWaiter::StartTimer() {
  std::lock_guard<std::mutex> lock(mu_);
  if (timer_.joinable() || shut_down_) return;
  timer_ = std::thread([this] { TimerLoop(); });
}

void AckWaiter::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shut_down_) {
    if (waiters_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const uint64_t deadline = waiters_.begin()->second.deadline_ms;
    const uint64_t now = clock_();
    if (now < deadline) {
      cv_.wait_for(lock, std::chrono::milliseconds(deadline - now));
      continue;
    }
    std::vector<Completion> completions;
    ExpireLocked(now, completions);
    lock.unlock();
    Run(completions);
    lock.lock();
  }
}

void AckWaiter::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }
  cv_.notify_all();
  if (timer_.joinable() && timer_.get_id() != std::this_thread::get_id()) timer_.join();
  FailAll(Status(ErrorCode::kUnavailable, "replication is shutting down"));
}

AckWaiterStats AckWaiter::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  AckWaiterStats stats = stats_;
  stats.is_degraded = degraded_;
  stats.pending = waiters_.size();
  stats.quorum_seq = quorum_seq_;
  return stats;
}

bool AckWaiter::degraded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return degraded_;
}

}  // namespace tandem::replication
