// LeaseKeeper: owns one etcd lease, keeps it alive, and is the node's fencing clock.
//
// Start() grants a lease of ttl_ms (at least 2000, etcd's minimum; rounded up to whole seconds)
// and starts a thread that sends a keepalive every keepalive_interval_ms (default TTL/3) on a
// LeaseKeepAlive stream. Validity follows FencingClock: valid until t_sent + TTL - margin, t_sent
// being the send time of the request whose answer last confirmed the lease.
//
// Valid(now) / ValidUntilMs() are one atomic load each: check them before acknowledging a write.
//
// The lease is lost when etcd answers TTL = 0 (it expired or was revoked behind our back) or when
// the clock reaches the deadline without a newer confirmation. Then, once and from the keeper's
// thread, on_lost(reason) runs and keepalives stop for good; the node must step down and get a
// new LeaseKeeper. A stream that breaks or stays silent (no answer within half an interval)
// is replaced, on the next endpoint, without losing the lease as long as some answer arrives in
// time.
//
// Sizing: renewals stall while etcd elects a new raft leader, so the lease survives an etcd leader
// failure only if that election takes less than TTL - margin - interval (1.5 s at TTL 3 s).
// etcd's default election timeout (1 s, randomized up to 2 s) does not always fit (measured: a
// spurious, safe loss in 1 of 10 leader kills): run etcd with --election-timeout=500, or use
// TTL >= 6 s.
//
// Revoke() (graceful handover) and Stop() end keepalives without calling on_lost; both may be
// called from on_lost (a loss detected just before them may still report). The destructor stops
// but does not revoke: the lease then expires by itself. Do not destroy the keeper from on_lost.
// Thread-safe. The EtcdClient must outlive the keeper.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "coord/clock.h"
#include "coord/etcd_client.h"
#include "coord/fencing_clock.h"

namespace tandem::coord {

struct LeaseKeeperOptions {
  uint32_t ttl_ms = 3000;              // lease_ttl_ms
  uint32_t margin_ms = 0;              // 0: ttl_ms / 6
  uint32_t keepalive_interval_ms = 0;  // 0: ttl_ms / 3
  Clock clock;                         // monotonic ms; default SteadyClockMs
  std::function<void(const std::string& reason)> on_lost;
};

class LeaseKeeper {
 public:
  static constexpr uint32_t kMinTtlMs = 2000;

  // kInvalidParams for ttl_ms < 2000 or a margin not below the TTL; etcd errors from LeaseGrant.
  static StatusOr<std::unique_ptr<LeaseKeeper>> Start(EtcdClient* client,
                                                      LeaseKeeperOptions options);
  ~LeaseKeeper();

  int64_t lease_id() const { return lease_id_; }
  uint64_t ttl_ms() const { return ttl_ms_; }  // as granted (whole seconds)
  uint64_t margin_ms() const { return margin_ms_; }

  // Cheap (one atomic load): true while now_ms < ValidUntilMs().
  bool Valid(uint64_t now_ms) const {
    return now_ms < valid_until_ms_.load(std::memory_order_acquire);
  }
  bool Valid() const { return Valid(clock_()); }
  // 0 once lost, stopped or revoked.
  uint64_t ValidUntilMs() const { return valid_until_ms_.load(std::memory_order_acquire); }
  bool lost() const { return lost_.load(); }
  const Clock& clock() const { return clock_; }

  // Stops keepalives (validity ends now) and revokes the lease, deleting every key under it.
  Status Revoke();
  // Stops keepalives; validity ends now; the lease expires in etcd after its TTL.
  void Stop();

 private:
  LeaseKeeper(EtcdClient* client, LeaseKeeperOptions options, int64_t lease_id, uint64_t ttl_ms,
              uint64_t granted_at_ms);
  void Run();
  // One turn of the loop; false once the lease is lost.
  bool Step();
  void OpenStream(uint64_t now_ms);
  void SendKeepAlive(uint64_t now_ms);
  bool HandleAnswer(int64_t ttl_s);
  void ResetStream(uint64_t now_ms, const std::string& why, bool failed);
  void Lose(const std::string& reason);
  void SleepMs(uint64_t ms);

  EtcdClient* const client_;
  const LeaseKeeperOptions options_;
  const Clock clock_;
  const int64_t lease_id_;
  const uint64_t ttl_ms_;
  const uint64_t margin_ms_;
  const uint64_t interval_ms_;

  // Keeper thread only.
  FencingClock fence_;
  std::unique_ptr<KeepAliveStream> stream_;
  uint64_t next_send_ms_ = 0;
  uint64_t next_open_ms_ = 0;
  uint32_t open_failures_ = 0;
  bool reset_logged_ = false;
  uint64_t last_reset_log_ms_ = 0;
  uint32_t resets_unlogged_ = 0;

  std::atomic<uint64_t> valid_until_ms_{0};
  std::atomic<bool> lost_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // for sleeping only
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace tandem::coord
