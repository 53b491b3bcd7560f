#include "server/server_runtime.h"

namespace tandem::server {

node::AppliedPosition ServerRuntime::Applied() const {
  return node::AppliedPosition{store_->applied_epoch(), store_->applied_seq()};
}

node::FollowerView ServerRuntime::Follower() const {
  node::FollowerView view;
  if (!gate_->is_standby()) return view;
  const replication::FollowerStatus status = gate_->Collect().follower;
  view.streaming = status.state == replication::FollowerState::kStreaming;
  view.full_sync = status.state == replication::FollowerState::kFullSync;
  view.lag_ms = status.lag_ms;
  view.state = replication::FollowerStateName(status.state);
  return view;
}

Status ServerRuntime::BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> lease) {
  Status status = gate_->BecomeLeader(epoch, std::move(lease));
  if (!status.ok()) return status;
  reporter_->set_role(Role::kLeader);
  maintenance_->Start();  // reaping, expiry and eviction decide effects: the leader's job
  return Status::Ok();
}

void ServerRuntime::BecomeFollower(const std::string& address, uint64_t epoch) {
  maintenance_->Stop();
  gate_->BecomeFollower(address, epoch);
  reporter_->set_role(Role::kFollower);
}

void ServerRuntime::StopWrites(const Status& status) { gate_->StopWrites(status); }

void ServerRuntime::ResumeWrites() { gate_->ResumeWrites(); }

void ServerRuntime::FlushReplication() { gate_->FlushReplication(); }

uint64_t ServerRuntime::LastSeq() const { return sequencer_->last_seq(); }

uint64_t ServerRuntime::AckedSeq(const std::string& node_id) const {
  return gate_->AckedSeq(node_id);
}

std::vector<node::StandbyView> ServerRuntime::Standbys() const {
  std::vector<node::StandbyView> out;
  if (gate_->is_standby()) return out;
  for (const replication::StandbyStatus& standby : gate_->Collect().standbys) {
    out.push_back({standby.standby_id, standby.state == replication::StandbyState::kStreaming,
                   standby.acked_seq});
  }
  return out;
}

}  // namespace tandem::server
