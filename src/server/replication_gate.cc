#include "server/replication_gate.h"

#include <spdlog/spdlog.h>

namespace tandem::server {
namespace {

// A flag-configured primary writes the cluster's first epoch; etcd leadership will pick later
// ones.
constexpr uint64_t kFlagPrimaryEpoch = 1;

replication::PrimaryOptions ToPrimaryOptions(const MasterConfig& c) {
  replication::PrimaryOptions options;
  options.cluster_id = c.cluster_id;
  options.node_id = c.node_id;
  options.batch_size = c.replication_batch_size;
  options.batch_timeout_ms = static_cast<uint32_t>(c.replication_batch_timeout_ms);
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

}  // namespace

ReplicationGate::ReplicationGate(const MasterConfig& config, meta::MetaStore* store,
                                 oplog::LogBuffer* log, oplog::Sequencer* sequencer)
    : config_(config),
      is_standby_(config.role == "standby"),
      sync_mode_(config.replication == "sync" && config.role != "standby"),
      store_(store),
      log_(log),
      sequencer_(sequencer) {
  primary_ = std::make_unique<replication::ReplicationPrimary>(ToPrimaryOptions(config), log, store,
                                                               &history_);
  if (is_standby_) {
    sequencer_->Close(NotLeader());
    return;
  }
  (void)history_.Begin(kFlagPrimaryEpoch, sequencer_->last_seq() + 1);
  replication::ReplicationPrimary* primary = primary_.get();
  sequencer_->SetAppendListener([primary](uint64_t seq) { primary->NotifyAppended(seq); });
  if (sync_mode_) {
    // A waiting writer flushes the pending batch at once instead of letting it linger.
    acks_ = std::make_unique<replication::AckWaiter>(ToAckWaiterOptions(config),
                                                     replication::SteadyClockMs,
                                                     [primary](uint64_t) { primary->Flush(); });
    replication::AckWaiter* acks = acks_.get();
    primary_->SetAckListener(
        [acks](const std::string& standby, uint64_t seq) { acks->OnAck(standby, seq); });
  }
}

ReplicationGate::~ReplicationGate() { Shutdown(); }

grpc::Service* ReplicationGate::service() { return primary_->service(); }

Status ReplicationGate::NotLeader() const {
  return Status::NotLeader("this node is a standby; the primary is " + config_.primary,
                           config_.primary);
}

void ReplicationGate::Start(const std::string& own_address) {
  if (started_) return;
  started_ = true;
  if (!is_standby_) {
    primary_->SetServing(true, kFlagPrimaryEpoch);
    if (acks_ != nullptr) acks_->StartTimer();
    spdlog::info("replication: {} serves as primary of cluster {} (epoch {}, {} mode)",
                 config_.node_id, config_.cluster_id, kFlagPrimaryEpoch,
                 sync_mode_ ? "sync" : "async");
    return;
  }
  primary_->SetServing(false, 0, config_.primary);
  replication::FollowerOptions options;
  options.cluster_id = config_.cluster_id;
  options.node_id = config_.node_id;
  options.own_address = own_address;
  options.primary_address = config_.primary;
  follower_ = std::make_unique<replication::StandbyFollower>(options, store_, &history_, log_);
  follower_->Start();
  spdlog::info("replication: {} follows primary {} (cluster {}) from seq {}", config_.node_id,
               config_.primary, config_.cluster_id, store_->applied_seq());
}

void ReplicationGate::Shutdown() {
  if (!started_) return;
  started_ = false;
  if (acks_ != nullptr) {
    acks_->FailAll(Status(ErrorCode::kUnavailable, "node is shutting down"));
    acks_->Shutdown();
  }
  if (follower_ != nullptr) follower_->Stop();
  primary_->Shutdown();
}

Status ReplicationGate::Admit(Access) {
  if (!is_standby_) return Status::Ok();
  return NotLeader();
}

void ReplicationGate::AwaitCommit(uint64_t seq, std::function<void(Status)> done) {
  if (!sync_mode_) {
    done(Status::Ok());
    return;
  }
  acks_->WaitForAcks(seq, std::move(done));
}

ReplicationStatus ReplicationGate::Collect() const {
  ReplicationStatus status;
  status.mode = sync_mode_ ? "sync" : "async";
  status.is_standby = is_standby_;
  if (is_standby_) {
    if (follower_ != nullptr) status.follower = follower_->Status();
  } else {
    status.standbys = primary_->Standbys();
    if (acks_ != nullptr) status.acks = acks_->Stats();
  }
  return status;
}

}  // namespace tandem::server
