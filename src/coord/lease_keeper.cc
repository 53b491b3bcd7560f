#include "coord/lease_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace tandem::coord {

namespace {
// The loop re-reads the clock at least this often, so an injected clock that jumps is noticed.
constexpr uint64_t kTickMs = 50;
constexpr uint64_t kReopenPauseMs = 100;
constexpr uint64_t kResetLogEveryMs = 1000;
}  // namespace

StatusOr<std::unique_ptr<LeaseKeeper>> LeaseKeeper::Start(EtcdClient* client,
                                                          LeaseKeeperOptions options) {
  if (options.ttl_ms < kMinTtlMs) {
    return Status(ErrorCode::kInvalidParams, "lease_ttl_ms " + std::to_string(options.ttl_ms) +
                                                 " is below etcd's minimum lease TTL of 2000 ms");
  }
  if (!options.clock) options.clock = SteadyClockMs;
  int64_t ttl_s = (options.ttl_ms + 999) / 1000;
  uint64_t t_sent = options.clock();
  StatusOr<GrantedLease> lease = client->LeaseGrant(ttl_s);
  if (!lease.ok()) return lease.status();
  // etcd may grant more than asked (never less); validity follows what it granted.
  uint64_t ttl_ms = static_cast<uint64_t>(std::max(lease->ttl_s, ttl_s)) * 1000;
  uint64_t margin = options.margin_ms != 0 ? options.margin_ms : ttl_ms / 6;
  uint64_t interval =
      options.keepalive_interval_ms != 0 ? options.keepalive_interval_ms : ttl_ms / 3;
  if (margin + interval >= ttl_ms) {
    (void)client->LeaseRevoke(lease->id);
    return Status(ErrorCode::kInvalidParams,
                  "lease margin " + std::to_string(margin) + " ms + keepalive interval " +
                      std::to_string(interval) + " ms must stay below the TTL of " +
                      std::to_string(ttl_ms) + " ms");
  }
  options.margin_ms = static_cast<uint32_t>(margin);
  options.keepalive_interval_ms = static_cast<uint32_t>(interval);
  std::unique_ptr<LeaseKeeper> keeper(
      new LeaseKeeper(client, std::move(options), lease->id, ttl_ms, t_sent));
  keeper->thread_ = std::thread([k = keeper.get()] { k->Run(); });
  return keeper;
}

LeaseKeeper::LeaseKeeper(EtcdClient* client, LeaseKeeperOptions options, int64_t lease_id,
                         uint64_t ttl_ms, uint64_t granted_at_ms)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock),
      lease_id_(lease_id),
      ttl_ms_(ttl_ms),
      margin_ms_(options_.margin_ms),
      interval_ms_(options_.keepalive_interval_ms),
      fence_(options_.margin_ms) {
  fence_.Granted(granted_at_ms, ttl_ms);
  valid_until_ms_.store(fence_.valid_until_ms());
  next_send_ms_ = granted_at_ms + interval_ms_;
  spdlog::info("lease {:x} granted: ttl {} ms, keepalive every {} ms, fencing margin {} ms",
               lease_id_, ttl_ms_, interval_ms_, margin_ms_);
}

LeaseKeeper::~LeaseKeeper() {
  Stop();
  if (thread_.joinable()) thread_.detach();  // only when destroyed from on_lost (not supported)
}

void LeaseKeeper::Stop() {
  stop_.store(true);
  valid_until_ms_.store(0, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  valid_until_ms_.store(0, std::memory_order_release);  // an answer may have raced the first store
}

Status LeaseKeeper::Revoke() {
  Stop();
  Status status = client_->LeaseRevoke(lease_id_);
  if (status.ok()) spdlog::info("lease {:x} revoked", lease_id_);
  return status;
}

void LeaseKeeper::SleepMs(uint64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
}

void LeaseKeeper::Run() {
  while (!stop_.load()) {
    if (!Step()) return;
  }
  stream_.reset();
}

bool LeaseKeeper::Step() {
  uint64_t now = clock_();
  if (!fence_.Valid(now)) {
    Lose("no keepalive confirmed in time: valid until " + std::to_string(fence_.valid_until_ms()) +
         " ms, now " + std::to_string(now) + " ms");
    return false;
  }
  if (stream_ == nullptr && now >= next_open_ms_) OpenStream(now);
  if (stream_ != nullptr && now >= next_send_ms_) SendKeepAlive(now);
  std::optional<uint64_t> oldest = fence_.oldest_outstanding_ms();
  if (stream_ != nullptr && oldest.has_value() && now > *oldest + interval_ms_ / 2) {
    // A healthy member answers within milliseconds. One that cannot reach the raft leader (dead,
    // partitioned) holds the request for seconds: measured, moving on after half an interval is
    // what keeps the lease through an etcd leader kill.
    ResetStream(now, "no answer for " + std::to_string(now - *oldest) + " ms", /*failed=*/false);
    return true;  // reopen at once
  }
  uint64_t wait = std::min(
      {kTickMs, fence_.valid_until_ms() - now, next_send_ms_ > now ? next_send_ms_ - now : 1});
  wait = std::max<uint64_t>(wait, 1);
  if (stream_ == nullptr) {
    SleepMs(wait);
    return true;
  }
  StatusOr<std::optional<int64_t>> answer = stream_->Next(static_cast<uint32_t>(wait));
  if (!answer.ok()) {
    ResetStream(clock_(), answer.status().message(), /*failed=*/true);
  } else if (answer->has_value()) {
    return HandleAnswer(*answer.value());
  }
  return true;
}

void LeaseKeeper::OpenStream(uint64_t now_ms) {
  uint64_t left = fence_.valid_until_ms() - now_ms;
  auto timeout = static_cast<uint32_t>(std::clamp<uint64_t>(left / 2, 100, 1000));
  StatusOr<std::unique_ptr<KeepAliveStream>> stream = client_->OpenKeepAlive(lease_id_, timeout);
  if (!stream.ok()) {
    if (open_failures_++ == 0) {
      spdlog::warn("lease {:x}: cannot open a keepalive stream, retrying: {}", lease_id_,
                   stream.status().message());
    }
    next_open_ms_ = clock_() + kReopenPauseMs;
    return;
  }
  if (open_failures_ > 0) {
    spdlog::info("lease {:x}: keepalive stream open on {} after {} failed attempts", lease_id_,
                 stream.value()->endpoint(), open_failures_);
  }
  open_failures_ = 0;
  stream_ = std::move(stream.value());
  next_send_ms_ = now_ms;  // a new stream has nothing outstanding: renew at once
}

void LeaseKeeper::SendKeepAlive(uint64_t now_ms) {
  Status status = stream_->Send();
  if (!status.ok()) {
    ResetStream(now_ms, status.message(), /*failed=*/true);
    return;
  }
  fence_.Sent(now_ms);
  next_send_ms_ = now_ms + interval_ms_;
}

bool LeaseKeeper::HandleAnswer(int64_t ttl_s) {
  FencingClock::Answer answer = fence_.Answered(ttl_s);
  if (answer == FencingClock::Answer::kExpired) {
    Lose("etcd answered TTL=0 to a keepalive: the lease expired or was revoked");
    return false;
  }
  if (answer == FencingClock::Answer::kUnmatched) {
    spdlog::warn("lease {:x}: keepalive answer without a request, ignored", lease_id_);
  }
  if (!stop_.load()) valid_until_ms_.store(fence_.valid_until_ms(), std::memory_order_release);
  return true;
}

void LeaseKeeper::ResetStream(uint64_t now_ms, const std::string& why, bool failed) {
  std::string endpoint = stream_->endpoint();
  // Rate-limited: while etcd has no leader every member may refuse us in a row.
  if (!reset_logged_ || now_ms >= last_reset_log_ms_ + kResetLogEveryMs) {
    spdlog::warn(
        "lease {:x}: keepalive stream to {} reset ({}); {} ms of validity left{}", lease_id_,
        endpoint, why, fence_.valid_until_ms() > now_ms ? fence_.valid_until_ms() - now_ms : 0,
        resets_unlogged_ > 0
            ? " (" + std::to_string(resets_unlogged_) + " more resets since the last report)"
            : "");
    reset_logged_ = true;
    last_reset_log_ms_ = now_ms;
    resets_unlogged_ = 0;
  } else {
    ++resets_unlogged_;
  }
  client_->RotateEndpoint(endpoint);
  stream_.reset();
  fence_.StreamReset();
  // A silent stream is left for another endpoint at once; one that failed waits a little, so a
  // member that refuses every stream is not hammered.
  next_open_ms_ = now_ms + (failed ? kReopenPauseMs : 0);
}

void LeaseKeeper::Lose(const std::string& reason) {
  stream_.reset();
  if (stop_.load()) return;  // stopped or revoked meanwhile: not a loss to report
  lost_.store(true);
  valid_until_ms_.store(0, std::memory_order_release);
  spdlog::warn("lease {:x} lost: {}; keepalives stopped", lease_id_, reason);
  if (options_.on_lost) options_.on_lost(reason);
}

}  // namespace tandem::coord
