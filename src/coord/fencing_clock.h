// FencingClock: the pure core of self-fencing (DESIGN §4 rule 1). It never reads a clock and does
// no I/O: the LeaseKeeper tells it when it sent what and what etcd answered.
//
// The lease is provably valid until `t_sent + TTL - margin`, where t_sent is when we sent the
// request whose answer confirmed the lease: etcd renewed it at some point after t_sent, so it
// cannot expire before t_sent + TTL (etcd's expiry only moves later, e.g. on an etcd leader
// change). The margin absorbs clock-rate differences and the delay between a caller's check and
// the effect of what it does next.
//
// Answers are matched to requests in order (etcd answers one stream's requests in order), so an
// answer always extends validity from the send time of the request it answers, never from a
// later one; a stream reset forgets the outstanding requests, whose answers can no longer come.
// Validity never moves backwards. Not thread-safe (the keeper's thread owns it).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace tandem::coord {

class FencingClock {
 public:
  explicit FencingClock(uint64_t margin_ms) : margin_ms_(margin_ms) {}

  // The lease was granted for ttl_ms by a LeaseGrant sent at t_sent_ms.
  void Granted(uint64_t t_sent_ms, uint64_t ttl_ms);
  void Sent(uint64_t t_sent_ms);

  enum class Answer {
    kExtended,     // validity moved to a later deadline
    kNotExtended,  // confirmed, but an earlier deadline than the current one
    kExpired,      // TTL <= 0: etcd no longer knows the lease; lost for good
    kUnmatched,    // no outstanding request (ignored)
  };
  // etcd's answer (TTL in seconds) to the oldest outstanding request.
  Answer Answered(int64_t ttl_s);
  void StreamReset() { outstanding_.clear(); }

  bool Valid(uint64_t now_ms) const { return now_ms < valid_until_ms_; }
  uint64_t valid_until_ms() const { return valid_until_ms_; }
  std::optional<uint64_t> oldest_outstanding_ms() const;
  size_t outstanding() const { return outstanding_.size(); }

 private:
  void Extend(uint64_t t_sent_ms, uint64_t ttl_ms, bool* extended);

  const uint64_t margin_ms_;
  uint64_t valid_until_ms_ = 0;
  std::deque<uint64_t> outstanding_;  // send times of unanswered keepalives, oldest first
};

}  // namespace tandem::coord
