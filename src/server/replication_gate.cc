#include "server/replication_gate.h"

#include <spdlog/spdlog.h>

namespace tandem::server {
namespace {

// A flag-configured primary writes the cluster's first epoch; with etcd the epoch is the leader
// key's create_revision.
constexpr uint64_t kFlagPrimaryEpoch = 1;

replication::PrimaryOptions ToPrimaryOptions(const MasterConfig& c) {
  replication::PrimaryOptions options;
  options.cluster_id = c.cluster_id;
  options.node_id = c.node_id;
  options.batch_size = c.replication_batch_size;
  options.batch_timeout_ms = static_cast<uint32_t>(c.replication_batch_timeout_ms);
  // A sync write waits for the ack anyway: the acks alone pace the batches (group commit).
  options.batch_min_gap_ms =
      c.replication == "sync" ? 0 : static_cast<uint32_t>(c.replication_batch_min_gap_ms);
  options.verify_seq_diff_threshold = c.verify_seq_diff_threshold;
  options.verify_max_repairs = c.verify_max_repairs;
  return options;
}

replication::AckWaiterOptions ToAckWaiterOptions(const MasterConfig& c) {
  replication::AckWaiterOptions options;
  options.min_sync_acks = c.min_sync_acks;
  options.replication_timeout_ms = c.replication_timeout_ms;
  options.sync_fallback = c.sync_fallback == "degrade" ? replication::SyncFallback::kDegrade
                                                       : replication::SyncFallback::kFail;
  return options;
}

GateRole InitialRole(const MasterConfig& c) {
  if (c.etcd_leadership() || c.role == "standby") return GateRole::kFollower;
  return c.role == "primary" ? GateRole::kLeader : GateRole::kStandalone;
}

}  // namespace

ReplicationGate::ReplicationGate(const MasterConfig& config, meta::MetaStore* store,
                                 oplog::LogBuffer* log, oplog::Sequencer* sequencer)
    : config_(config),
      sync_mode_(config.replication == "sync" && config.role != "standby"),
      store_(store),
      log_(log),
      sequencer_(sequencer),
      role_(InitialRole(config)) {
  primary_ = std::make_unique<replication::ReplicationPrimary>(ToPrimaryOptions(config), log, store,
                                                               &history_);
  if (config.role == "standalone" && !config.etcd_leadership()) return;
  replication::ReplicationPrimary* primary = primary_.get();
  sequencer_->SetAppendListener([primary](uint64_t seq) { primary->NotifyAppended(seq); });
  if (sync_mode_) {
    acks_ = std::make_unique<replication::AckWaiter>(ToAckWaiterOptions(config),
                                                     replication::SteadyClockMs);
    replication::AckWaiter* acks = acks_.get();
    primary_->SetAckListener(
        [acks](const std::string& standby, uint64_t seq) { acks->OnAck(standby, seq); });
  }
  if (role() == GateRole::kFollower) {
    leader_address_ = config.primary;
    sequencer_->Close(NotLeader());
    return;
  }
  (void)history_.Begin(kFlagPrimaryEpoch, sequencer_->last_seq() + 1);
  epoch_.store(kFlagPrimaryEpoch);
}

ReplicationGate::~ReplicationGate() { Shutdown(); }

grpc::Service* ReplicationGate::service() { return primary_->service(); }

Status ReplicationGate::NotLeader() const {
  std::string leader;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leader = leader_address_;
  }
  if (leader.empty()) {
    return Status::NotLeader("this node is a standby and no leader is known yet; retry shortly",
                             "");
  }
  return Status::NotLeader("this node is a standby; the leader is " + leader, leader);
}

Status ReplicationGate::Fenced() const {
  return Status(ErrorCode::kFenced,
                "this node's leader lease is no longer provably valid; a new leader is being "
                "elected, retry shortly");
}

void ReplicationGate::Start(const std::string& own_address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  own_address_ = own_address;
  if (acks_ != nullptr) acks_->StartTimer();
  if (config_.etcd_leadership()) {
    primary_->SetServing(false, 0, "");
    spdlog::info("replication: {} starts as a follower; etcd decides the leader", config_.node_id);
    return;
  }
  if (role() == GateRole::kLeader) {
    primary_->SetServing(true, kFlagPrimaryEpoch);
    spdlog::info("replication: {} serves as primary of cluster {} (epoch {}, {} mode)",
                 config_.node_id, config_.cluster_id, kFlagPrimaryEpoch,
                 sync_mode_ ? "sync" : "async");
    return;
  }
  if (role() == GateRole::kStandalone) return;
  primary_->SetServing(false, 0, config_.primary);
  StartFollowerLocked(config_.primary, 0);
}

void ReplicationGate::StartFollowerLocked(const std::string& address, uint64_t epoch) {
  if (follower_ != nullptr) {
    follower_->SetPrimary(address, epoch);
    return;
  }
  replication::FollowerOptions options;
  options.cluster_id = config_.cluster_id;
  options.node_id = config_.node_id;
  options.own_address = own_address_;
  options.primary_address = address;
  options.min_primary_epoch = epoch;
  follower_ = std::make_unique<replication::StandbyFollower>(options, store_, &history_, log_);
  follower_->Start();
  spdlog::info("replication: {} follows {} (cluster {}, epoch >= {}) from seq {}", config_.node_id,
               address, config_.cluster_id, epoch, store_->applied_seq());
}

void ReplicationGate::Shutdown() {
  std::unique_ptr<replication::StandbyFollower> follower;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) return;
    started_ = false;
    follower = std::move(follower_);
  }
  if (acks_ != nullptr) {
    acks_->FailAll(Status(ErrorCode::kUnavailable, "node is shutting down"));
    acks_->Shutdown();
  }
  if (follower != nullptr) follower->Stop();
  primary_->Shutdown();
}

Status ReplicationGate::BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> lease) {
  std::unique_ptr<replication::StandbyFollower> follower;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) return Status(ErrorCode::kInvalidState, "node is not running");
    if (epoch <= epoch_.load() && role() == GateRole::kLeader) {
      return Status(ErrorCode::kInvalidState,
                    "already leading epoch " + std::to_string(epoch_.load()));
    }
    follower = std::move(follower_);
  }
  // Everything the follower received is applied once Stop returns.
  if (follower != nullptr) follower->Stop();
  const uint64_t next_seq = store_->applied_seq() + 1;
  // A node that recovered its state and never followed anyone (cold start of the whole cluster)
  // starts its history where its state ends, so standbys at a prefix of it resume incrementally.
  if (history_.newest_epoch() == 0 && store_->applied_seq() != 0) {
    history_.ResetToImage(store_->applied_epoch(), store_->applied_seq());
  }
  Status begun = history_.Begin(epoch, next_seq);
  if (!begun.ok()) return begun;
  lease_.store(std::move(lease));
  {
    std::lock_guard<std::mutex> lock(mu_);
    leader_address_ = own_address_;
  }
  epoch_.store(epoch);
  sequencer_->Open(epoch, next_seq);
  primary_->SetServing(true, epoch);
  role_.store(GateRole::kLeader, std::memory_order_release);
  spdlog::info("replication: {} leads cluster {} in epoch {} from seq {} ({} mode)",
               config_.node_id, config_.cluster_id, epoch, next_seq, sync_mode_ ? "sync" : "async");
  return Status::Ok();
}

void ReplicationGate::BecomeFollower(const std::string& address, uint64_t epoch) {
  const bool was_leader = role() == GateRole::kLeader;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) return;
    leader_address_ = address;
  }
  role_.store(GateRole::kFollower, std::memory_order_release);
  sequencer_->Close(NotLeader());
  lease_.store(nullptr);
  if (acks_ != nullptr) acks_->FailAll(NotLeader());
  if (was_leader) {
    // Our standbys go and find the new leader; we stop streaming our (now old) epoch.
    primary_->SetServing(false, 0, address);
    spdlog::info("replication: {} steps down from epoch {}; the leader is {} (epoch {})",
                 config_.node_id, epoch_.load(), address.empty() ? "unknown" : address, epoch);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (address.empty()) return;  // keep whatever we follow until etcd names the leader
  StartFollowerLocked(address, epoch);
}

void ReplicationGate::StopWrites(const Status& status) {
  sequencer_->Close(status);
  if (acks_ != nullptr) acks_->FailAll(status);
}

void ReplicationGate::ResumeWrites() {
  if (role() != GateRole::kLeader) return;
  sequencer_->Open(epoch_.load(), sequencer_->last_seq() + 1);
}

void ReplicationGate::FlushReplication() { primary_->Flush(); }

uint64_t ReplicationGate::MinNeededSeq() const { return primary_->MinNeededSeq(); }

void ReplicationGate::SetImageSource(replication::ImageSource* source) {
  primary_->SetImageSource(source);
}

uint64_t ReplicationGate::AckedSeq(const std::string& standby_id) const {
  for (const replication::StandbyStatus& standby : primary_->Standbys()) {
    if (standby.standby_id == standby_id) return standby.acked_seq;
  }
  return 0;
}

Status ReplicationGate::Admit(Access) {
  switch (role()) {
    case GateRole::kStandalone:
      return Status::Ok();
    case GateRole::kFollower:
      return NotLeader();
    case GateRole::kLeader: {
      std::shared_ptr<const FencingLease> lease = lease_.load();
      if (lease != nullptr && !lease->Valid()) return Fenced();
      return Status::Ok();
    }
  }
  return Status::Ok();
}

void ReplicationGate::AwaitCommit(uint64_t seq, std::function<void(Status)> done) {
  std::shared_ptr<const FencingLease> lease = lease_.load();
  if (lease == nullptr) {
    if (!sync_mode_) {
      done(Status::Ok());
    } else {
      acks_->WaitForAcks(seq, std::move(done));
    }
    return;
  }
  // Acknowledge only while the lease still proves we lead: a write applied just before the
  // lease ran out may be lost by the next leader, so its client must not be told it succeeded.
  auto fenced_done = [this, lease, done = std::move(done)](Status status) {
    if (status.ok() && !lease->Valid()) status = Fenced();
    done(std::move(status));
  };
  if (!sync_mode_) {
    fenced_done(Status::Ok());
  } else {
    acks_->WaitForAcks(seq, std::move(fenced_done));
  }
}

ReplicationStatus ReplicationGate::Collect() const {
  ReplicationStatus status;
  status.mode = sync_mode_ ? "sync" : "async";
  status.is_standby = is_standby();
  if (status.is_standby) {
    std::lock_guard<std::mutex> lock(mu_);
    if (follower_ != nullptr) status.follower = follower_->Status();
  } else {
    status.standbys = primary_->Standbys();
    if (acks_ != nullptr) status.acks = acks_->Stats();
  }
  return status;
}

void ReplicationGate::RequestFullSync(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (follower_ != nullptr) follower_->RequestFullSync(reason);
}

}  // namespace tandem::server
