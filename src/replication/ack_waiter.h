// AckWaiter: sync-mode replication waits (DESIGN §3). A write at seq S is acknowledged to its
// client only once `min_sync_acks` distinct standbys acknowledged a seq >= S. Waits are grouped:
// waiters are kept ordered by seq, and each ack completes every waiter at or below the
// min_sync_acks-th highest acked seq, so one standby ack releases a whole batch of writers.
//
// Timeouts: a waiter not released within replication_timeout_ms completes with
// REPLICATION_TIMEOUT (sync_fallback = fail), or OK with the waiter degraded to async
// (sync_fallback = degrade): the `degraded` flag is set, logged once, and new waits complete at
// once until the standbys catch up with every seq waited for while degraded.
//
// The core is clock-driven and thread-free: Tick() expires waiters against the clock passed in.
// StartTimer() adds the one timer thread a server uses (sleeps until the earliest deadline,
// stops on Shutdown). Thread-safe. `done` callbacks run without the waiter's lock, on the thread
// that completes them (ack, timer, Shutdown, or the caller of WaitForAcks).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "replication/clock.h"

namespace tandem::replication {

enum class SyncFallback { kFail, kDegrade };  // --sync-fallback fail|degrade

struct AckWaiterOptions {
  uint32_t min_sync_acks = 1;              // --min-sync-acks
  uint64_t replication_timeout_ms = 1000;  // --replication-timeout-ms
  SyncFallback sync_fallback = SyncFallback::kFail;
};

struct AckWaiterStats {
  uint64_t waits = 0;        // WaitForAcks calls
  uint64_t timeouts = 0;     // waits that hit replication_timeout_ms (either fallback)
  uint64_t degraded = 0;     // times sync replication degraded to async
  bool is_degraded = false;  // currently degraded
  uint64_t pending = 0;      // waiters not yet completed
  uint64_t quorum_seq = 0;   // highest seq acknowledged by min_sync_acks standbys
};

class AckWaiter {
 public:
  using Done = std::function<void(Status)>;

  // `steady_clock`: monotonic milliseconds. (No hook hurries the primary's sender: it sends as
  // soon as the standby acked the previous batch, see primary.h.)
  AckWaiter(const AckWaiterOptions& options, Clock steady_clock);
  ~AckWaiter();  // Shutdown()
  AckWaiter(const AckWaiter&) = delete;
  AckWaiter& operator=(const AckWaiter&) = delete;

  // Completes `done` exactly once: OK once enough standbys acknowledged `seq`, or per the
  // fallback after the timeout, or UNAVAILABLE after Shutdown / the status given to FailAll.
  void WaitForAcks(uint64_t seq, Done done);
  // A standby acknowledged everything up to `acked_seq` (its latest position; it may go down
  // when a standby restarts its state with a full sync).
  void OnAck(const std::string& standby_id, uint64_t acked_seq);
  // Expires waiters whose deadline passed. Called by the timer thread, or by tests.
  void Tick();
  // Fails every pending waiter with `status` (e.g. NOT_LEADER when the primary steps down).
  void FailAll(const Status& status);

  void StartTimer();
  // Stops the timer thread, fails pending waiters with UNAVAILABLE; later waits fail at once.
  void Shutdown();

  AckWaiterStats Stats() const;
  bool degraded() const;

 private:
  struct Waiter {
    uint64_t seq;
    uint64_t deadline_ms;
    Done done;
  };
  using Completion = std::pair<Done, Status>;

  uint64_t QuorumSeqLocked() const;
  // Moves every waiter at or below the quorum seq into `out`; clears `degraded` when caught up.
  void ReleaseLocked(std::vector<Completion>& out);
  void ExpireLocked(uint64_t now_ms, std::vector<Completion>& out);
  static void Run(std::vector<Completion>& completions);
  void TimerLoop();

  const AckWaiterOptions options_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // wakes the timer thread
  // Waiter ids grow with time and every waiter has the same timeout, so id order is deadline
  // order; by_seq_ orders the same waiters for release by ack.
  std::map<uint64_t, Waiter> waiters_;
  std::multimap<uint64_t, uint64_t> by_seq_;  // seq -> waiter id
  uint64_t next_id_ = 1;
  std::unordered_map<std::string, uint64_t> acked_;  // standby id -> acked seq
  uint64_t quorum_seq_ = 0;
  bool degraded_ = false;
  uint64_t degraded_until_seq_ = 0;  // highest seq waited for while degraded
  bool shut_down_ = false;
  AckWaiterStats stats_;
  std::thread timer_;
};

}  // namespace tandem::replication
