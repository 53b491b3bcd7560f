#include "replication/follower.h"

#include <spdlog/spdlog.h>

#include "replication/follower_impl.h"

namespace tandem::replication {

const char* FollowerStateName(FollowerState state) {
  switch (state) {
    case FollowerState::kStopped:
      return "stopped";
    case FollowerState::kConnecting:
      return "connecting";
    case FollowerState::kFullSync:
      return "full-sync";
    case FollowerState::kStreaming:
      return "streaming";
    case FollowerState::kDisconnected:
      return "disconnected";
    case FollowerState::kError:
      return "error";
  }
  return "unknown";
}

// ---- Facade ----

StandbyFollower::StandbyFollower(const FollowerOptions& options, meta::MetaStore* store,
                                 EpochHistory* history, oplog::LogBuffer* log, Clock wall_clock)
    : impl_(std::make_unique<Impl>(options, store, history, log, std::move(wall_clock))) {}

StandbyFollower::~StandbyFollower() = default;
void StandbyFollower::Start() { impl_->Start(); }
void StandbyFollower::Stop() { impl_->Stop(); }
void StandbyFollower::SetPrimaryAddress(const std::string& address) {
  impl_->SetPrimaryAddress(address);
}

void StandbyFollower::SetPrimary(const std::string& address, uint64_t min_epoch) {
  impl_->SetPrimary(address, min_epoch);
}
void StandbyFollower::RequestFullSync(const std::string& reason) { impl_->RequestFullSync(reason); }

FollowerStatus StandbyFollower::Status() const { return impl_->Status(); }

// ---- Impl: lifecycle ----

StandbyFollower::Impl::Impl(const FollowerOptions& options, meta::MetaStore* store,
                            EpochHistory* history, oplog::LogBuffer* log, Clock wall_clock)
    : options_(options),
      store_(store),
      history_(history),
      log_(log),
      clock_(std::move(wall_clock)) {
  status_.primary_address = options.primary_address;
}

StandbyFollower::Impl::~Impl() { Stop(); }

void StandbyFollower::Impl::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  // Whatever the store already holds (a restart) is the start of what we know of its history.
  if (history_->newest_epoch() == 0 && store_->applied_seq() != 0) {
    history_->ResetToImage(store_->applied_epoch(), store_->applied_seq());
  }
  newest_primary_epoch_ = std::max(newest_primary_epoch_, store_->applied_epoch());
  status_.state = FollowerState::kConnecting;
  runner_ = std::thread([this] { Run(); });
  watchdog_ = std::thread([this] { Watchdog(); });
}

void StandbyFollower::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  runner_.join();
  watchdog_.join();
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
  status_.state = FollowerState::kStopped;
}

void StandbyFollower::Impl::SetPrimaryAddress(const std::string& address) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (address == options_.primary_address) return;
    spdlog::info("replication: standby {} follows {} instead of {}", options_.node_id, address,
                 options_.primary_address);
    options_.primary_address = address;
    status_.primary_address = address;
    address_changed_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
}

void StandbyFollower::Impl::RequestFullSync(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    spdlog::warn("replication: standby {} asks for a full sync: {}", options_.node_id, reason);
    full_sync_requested_ = true;
    address_changed_ = true;  // reconnect now, not after a back-off
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
}

void StandbyFollower::Impl::SetPrimary(const std::string& address, uint64_t min_epoch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (min_epoch > options_.min_primary_epoch) {
      options_.min_primary_epoch = min_epoch;
      // A stream from an older primary must not deliver one more batch.
      if (context_ != nullptr && status_.primary_epoch < min_epoch) context_->TryCancel();
      address_changed_ = true;  // a new term: retry now, not after an error back-off
    }
  }
  cv_.notify_all();
  SetPrimaryAddress(address);
}

FollowerStatus StandbyFollower::Impl::Status() const {
  FollowerStatus out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = status_;
  }
  out.applied_seq = store_->applied_seq();
  out.applied_epoch = store_->applied_epoch();
  out.lag_entries =
      out.primary_last_seq > out.applied_seq ? out.primary_last_seq - out.applied_seq : 0;
  if (out.lag_entries == 0) out.lag_ms = 0;
  return out;
}

void StandbyFollower::Impl::SetState(FollowerState state, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  status_.state = state;
  if (!error.empty()) status_.last_error = error;
}

// ---- Impl: the reconnect loop ----

void StandbyFollower::Impl::Run() {
  backoff_ms_ = options_.reconnect_initial_ms;
  while (true) {
    bool was_accepted = false;
    const Outcome outcome = RunStream(&was_accepted);
    if (outcome == Outcome::kStopped) return;
    if (!Sleep(NextBackoff(outcome, was_accepted))) return;
  }
}

uint64_t StandbyFollower::Impl::NextBackoff(Outcome outcome, bool was_accepted) {
  if (was_accepted) backoff_ms_ = options_.reconnect_initial_ms;  // it worked for a while
  uint64_t delay = backoff_ms_;
  switch (outcome) {
    case Outcome::kError:
      return options_.error_retry_ms;
    case Outcome::kResync:
      delay = options_.reconnect_initial_ms;
      break;
    case Outcome::kRetry:
      backoff_ms_ = std::min<uint64_t>(backoff_ms_ * 2, options_.reconnect_max_ms);
      break;
    case Outcome::kStopped:
      return 0;
  }
  // +-20 % jitter so standbys of a restarted primary do not reconnect in lockstep.
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return static_cast<uint64_t>(static_cast<double>(delay) * jitter(rng_));
}

bool StandbyFollower::Impl::Sleep(uint64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_ || address_changed_; });
  address_changed_ = false;
  return !stopping_;
}

std::shared_ptr<grpc::Channel> StandbyFollower::Impl::Channel(std::string* address) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    *address = options_.primary_address;
  }
  if (channel_ == nullptr || channel_address_ != *address) {
    grpc::ChannelArguments args;
    // Our own loop does the backoff; keep the channel's reconnects on the same short scale
    // (grpc's default grows to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_initial_ms));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_initial_ms));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_max_ms));
    channel_ = grpc::CreateCustomChannel(*address, grpc::InsecureChannelCredentials(), args);
    channel_address_ = *address;
  }
  return channel_;
}

void StandbyFollower::Impl::Watchdog() {
  const uint64_t timeout = options_.primary_timeout_ms;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<uint64_t>(timeout / 4, 10)));
    if (stopping_ || context_ == nullptr || read_started_ms_ == 0) continue;
    const uint64_t waited = SteadyClockMs() - read_started_ms_;
    if (waited < timeout) continue;
    cancel_reason_ = "no message from the primary for " + std::to_string(waited) +
                     " ms (primary_timeout_ms " + std::to_string(timeout) + ")";
    read_started_ms_ = 0;
    context_->TryCancel();
  }
}

}  // namespace tandem::replication
