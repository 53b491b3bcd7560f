#include "coord/fencing_clock.h"

namespace tandem::coord {

void FencingClock::Extend(uint64_t t_sent_ms, uint64_t ttl_ms, bool* extended) {
  uint64_t deadline = ttl_ms > margin_ms_ ? t_sent_ms + ttl_ms - margin_ms_ : t_sent_ms;
  *extended = deadline > valid_until_ms_;
  if (*extended) valid_until_ms_ = deadline;
}

void FencingClock::Granted(uint64_t t_sent_ms, uint64_t ttl_ms) {
  bool extended = false;
  Extend(t_sent_ms, ttl_ms, &extended);
}

void FencingClock::Sent(uint64_t t_sent_ms) { outstanding_.push_back(t_sent_ms); }

FencingClock::Answer FencingClock::Answered(int64_t ttl_s) {
  if (outstanding_.empty()) return Answer::kUnmatched;
  uint64_t t_sent = outstanding_.front();
  outstanding_.pop_front();
  if (ttl_s <= 0) {
    valid_until_ms_ = 0;
    outstanding_.clear();
    return Answer::kExpired;
  }
  bool extended = false;
  Extend(t_sent, static_cast<uint64_t>(ttl_s) * 1000, &extended);
  return extended ? Answer::kExtended : Answer::kNotExtended;
}

std::optional<uint64_t> FencingClock::oldest_outstanding_ms() const {
  if (outstanding_.empty()) return std::nullopt;
  return outstanding_.front();
}

}  // namespace tandem::coord
