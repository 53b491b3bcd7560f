// Maintenance: the leader's periodic housekeeping on one background thread. Every interval it
// reaps PROCESSING puts older than --put-timeout-ms, expires clients silent for
// --client-ttl-ms (unmounting their segments) and evicts when space passes the high watermark,
// logging every round that did something, with counts and ids. The store decides; this class
// only supplies the time and the rhythm.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "meta/meta_store.h"
#include "server/clock.h"

namespace tandem::server {

class Maintenance {
 public:
  // `store` and `clock` are borrowed and must outlive this object.
  Maintenance(meta::MetaStore* store, Clock* clock, std::chrono::milliseconds interval);
  ~Maintenance();  // stops
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  void Start();
  // Wakes the thread and joins it: returns within one round's work, never a full interval.
  void Stop();
  // One round, synchronously (the thread runs exactly this).
  void RunOnce();

 private:
  void Loop();
  void ExpireClients(uint64_t now_ms);
  void Evict(uint64_t now_ms);

  meta::MetaStore* const store_;
  Clock* const clock_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_requested_ = false;
  std::thread thread_;
};

}  // namespace tandem::server
