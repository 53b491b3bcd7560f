#include "node/node_controller.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "coord/clock.h"
#include "coord/keys.h"

namespace tandem::node {
namespace {

// The leader's write fence over the etcd lease.
class KeeperLease : public FencingLease {
 public:
  explicit KeeperLease(std::shared_ptr<coord::LeaseKeeper> keeper) : keeper_(std::move(keeper)) {}
  bool Valid() const override { return keeper_->Valid(); }

 private:
  const std::shared_ptr<coord::LeaseKeeper> keeper_;
};

// A handover leaves this hint so that its target campaigns first (the others wait a little).
std::string HandoverKey(const std::string& cluster_id) {
  return coord::ClusterPrefix(cluster_id) + "handover";
}
constexpr uint64_t kHintDelayMs = 1000;   // how long the non-targets hold back
constexpr uint64_t kLeaseRetryMs = 500;   // after failing to get a lease
constexpr uint64_t kPlanIntervalMs = 50;  // how often a leaderless follower re-plans
// After the leader disappears every member publishes its final position at once; ranking waits
// this long so that it compares fresh positions, not ones up to a publish interval old.
constexpr uint64_t kSettleMs = 100;

}  // namespace

NodeController::NodeController(NodeControllerOptions options, NodeRuntime* runtime)
    : options_(std::move(options)), runtime_(runtime) {}

NodeController::~NodeController() { Stop(false); }

void NodeController::Transition(NodeState state, const std::string& sub,
                                const std::string& reason) {
  // ERROR is final for this process (the operator restarts the node once the fault is fixed).
  if (machine_.state() == NodeState::kError && state != NodeState::kError) return;
  const bool state_changed = state != machine_.state();
  if (!machine_.Transition(state, sub, reason, coord::WallClockMs())) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.state = machine_.info();  // visible at once, not at the end of the turn
  }
  if (state_changed) {
    spdlog::info("node {}: -> {} ({})", options_.node_id, machine_.info().Name(), reason);
  } else {
    spdlog::debug("node {}: -> {} ({})", options_.node_id, machine_.info().Name(), reason);
  }
}

Status NodeController::Start() {
  Status valid = coord::ValidateId("cluster id", options_.cluster_id);
  if (valid.ok()) valid = coord::ValidateId("node id", options_.node_id);
  if (!valid.ok()) return valid;
  coord::EtcdOptions etcd_options;
  etcd_options.endpoints = options_.etcd_endpoints;
  StatusOr<std::unique_ptr<coord::EtcdClient>> etcd = coord::EtcdClient::Create(etcd_options);
  if (!etcd.ok()) {
    return Status(etcd.status().code(), "etcd: " + etcd.status().message());
  }
  etcd_ = std::move(etcd).value();
  StatusOr<std::unique_ptr<coord::LeaderElection>> election =
      coord::LeaderElection::Create(etcd_.get(), options_.cluster_id);
  if (!election.ok()) return election.status();
  election_ = std::move(election).value();
  coord::MembershipOptions member_options;
  member_options.cluster_id = options_.cluster_id;
  member_options.node_id = options_.node_id;
  member_options.claim_wait_ms = options_.lease_ttl_ms * 2 + 1000;
  StatusOr<std::unique_ptr<coord::Membership>> membership =
      coord::Membership::Create(etcd_.get(), member_options);
  if (!membership.ok()) return membership.status();
  membership_ = std::move(membership).value();

  next_lease_try_ms_ = 0;
  RenewLease(coord::SteadyClockMs());
  if (keeper_ == nullptr || !joined_) {
    const std::string why = machine_.info().reason;
    if (keeper_ != nullptr) (void)keeper_->Revoke();
    keeper_.reset();
    membership_.reset();
    election_.reset();
    etcd_.reset();
    return Status(why.find("already in use") != std::string::npos ? ErrorCode::kInvalidParams
                                                                  : ErrorCode::kUnavailable,
                  why);
  }
  Transition(NodeState::kFollower, "no-leader", "joined cluster " + options_.cluster_id);
  if (options_.watch_leader) {
    StatusOr<std::unique_ptr<coord::WatchHandle>> watch =
        election_->WatchLeader([this](const std::optional<coord::LeaderInfo>& leader) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            leader_event_ = leader;
          }
          cv_.notify_all();
        });
    if (!watch.ok()) {
      (void)membership_->Leave();
      (void)keeper_->Revoke();
      keeper_.reset();
      return watch.status();
    }
    watch_ = std::move(watch).value();
  }
  running_ = true;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void NodeController::Stop(bool handover) {
  if (!running_) return;
  if (handover) {
    bool leading = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      leading = status_.state.state == NodeState::kLeader;
    }
    if (leading) {
      StatusOr<HandoverResult> result = Handover("", options_.handover_timeout_ms);
      if (result.ok()) {
        spdlog::info("node {}: handed over to {} at seq {} before stopping", options_.node_id,
                     result->new_leader, result->last_seq);
      } else {
        spdlog::warn("node {}: no handover before stopping: {}", options_.node_id,
                     result.status().ToString());
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  running_ = false;
  watch_.reset();
  if (my_epoch_ != 0) runtime_->StopWrites(Status(ErrorCode::kUnavailable, "node is stopping"));
  if (membership_ != nullptr) (void)membership_->Leave();
  if (keeper_ != nullptr) {
    if (my_epoch_ != 0) (void)election_->Resign(/*revoke_lease=*/false);
    Status revoked = keeper_->Revoke();  // deletes our leader key (if any) and member entry
    if (!revoked.ok())
      spdlog::warn("node {}: revoking lease: {}", options_.node_id, revoked.ToString());
  }
  my_epoch_ = 0;
  keeper_.reset();
  retired_.clear();
  membership_.reset();
  election_.reset();
  etcd_.reset();
}

StatusOr<HandoverResult> NodeController::Handover(const std::string& target, uint32_t timeout_ms) {
  if (timeout_ms == 0) timeout_ms = options_.handover_timeout_ms;
  auto request = std::make_shared<HandoverRequest>();
  request->target = target;
  request->timeout_ms = timeout_ms;
  std::future<StatusOr<HandoverResult>> result = request->result.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_ || stop_) return Status(ErrorCode::kUnavailable, "node is stopping");
    handovers_.push_back(request);
  }
  cv_.notify_all();
  if (result.wait_for(std::chrono::milliseconds(timeout_ms + 5000)) != std::future_status::ready) {
    return Status(ErrorCode::kUnavailable, "handover did not finish in time");
  }
  return result.get();
}

LeadershipStatus NodeController::Leadership() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void NodeController::Run() {
  for (;;) {
    std::optional<std::optional<coord::LeaderInfo>> leader_event;
    bool lease_lost = false;
    std::string lost_reason;
    std::deque<std::shared_ptr<HandoverRequest>> handovers;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms), [&] {
        return stop_ || leader_event_.has_value() || lease_lost_ || !handovers_.empty();
      });
      if (stop_) {
        for (auto& request : handovers_) {
          request->result.set_value(Status(ErrorCode::kUnavailable, "node is stopping"));
        }
        handovers_.clear();
        return;
      }
      leader_event.swap(leader_event_);
      lease_lost = lease_lost_;
      lost_reason = lease_lost_reason_;
      lease_lost_ = false;
      handovers.swap(handovers_);
    }
    uint64_t now = coord::SteadyClockMs();
    if (lease_lost && keeper_ != nullptr && keeper_->lost()) {
      StepDown("lease lost: " + lost_reason, now);
    }
    if (leader_event.has_value()) OnLeaderChanged(*leader_event, now);
    for (auto& request : handovers) {
      request->result.set_value(DoHandover(request->target, request->timeout_ms));
    }
    Tick(coord::SteadyClockMs());
  }
}

void NodeController::Tick(uint64_t now) {
  if (keeper_ != nullptr && (keeper_->lost() || !keeper_->Valid(now))) {
    StepDown("lease no longer provably valid", now);
  }
  if (keeper_ == nullptr) RenewLease(now);
  CheckFault(now);
  if (my_epoch_ != 0) not_streaming_since_ms_ = 0;
  if (my_epoch_ == 0) {
    FollowerView follower = runtime_->Follower();
    if (follower.streaming && follower.lag_ms <= options_.ranking.max_promotion_lag_ms) {
      last_ready_ms_ = now;
    }
    if (machine_.state() == NodeState::kFollower && leader_.has_value() &&
        !follower.state.empty()) {
      machine_.SetSubState(follower.state);
    }
    if (follower.streaming) {
      not_streaming_since_ms_ = 0;
    } else {
      if (not_streaming_since_ms_ == 0) not_streaming_since_ms_ = now;
      RereadLeader(now);
    }
    if (leader_absent_since_ != 0 && machine_.state() != NodeState::kError) MaybeCampaign(now);
  }
  Publish(false);
  LeadershipStatus snapshot;
  snapshot.state = machine_.info();
  if (leader_.has_value()) {
    snapshot.leader_id = leader_->node_id;
    snapshot.leader_address = leader_->client_address;
    snapshot.leader_epoch = static_cast<uint64_t>(leader_->epoch);
  }
  if (keeper_ != nullptr) {
    const uint64_t until = keeper_->ValidUntilMs();
    snapshot.lease_valid = keeper_->Valid(now);
    snapshot.lease_valid_for_ms = until > now ? until - now : 0;
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot.elections_won = status_.elections_won;
  snapshot.step_downs = status_.step_downs;
  snapshot.leases_lost = status_.leases_lost;
  status_ = std::move(snapshot);
}

void NodeController::RereadLeader(uint64_t now) {
  // Only after a while without a stream: right after a change the watch is about to tell.
  if (options_.leader_reread_ms == 0 || now < next_leader_reread_ms_ ||
      now - not_streaming_since_ms_ < options_.leader_reread_ms) {
    return;
  }
  next_leader_reread_ms_ = now + options_.leader_reread_ms;
  StatusOr<std::optional<coord::LeaderInfo>> current = election_->GetLeader();
  if (!current.ok()) return;  // etcd unreachable: the watch and the lease keeper will tell
  const std::optional<coord::LeaderInfo>& got = current.value();
  const bool same =
      got.has_value() == leader_.has_value() && (!got.has_value() || got->epoch == leader_->epoch);
  if (same) return;
  spdlog::warn("node {}: etcd names {} but the leader watch did not say so; acting on it",
               options_.node_id,
               got.has_value() ? got->node_id + " (epoch " + std::to_string(got->epoch) + ")"
                               : std::string("no leader"));
  OnLeaderChanged(got, now);
}

void NodeController::CheckFault(uint64_t now) {
  if (machine_.state() == NodeState::kError || now < next_fault_check_ms_) return;
  next_fault_check_ms_ = now + 200;
  const std::string fault = runtime_->Fault();
  if (fault.empty()) return;
  if (my_epoch_ != 0) {
    StepDown("unrecoverable fault: " + fault, now);
    // Give the key up at once so a healthy standby takes over without waiting for the lease.
    (void)election_->Resign(/*revoke_lease=*/false);
  }
  spdlog::error("node {}: unrecoverable fault, will not lead: {}", options_.node_id, fault);
  Transition(NodeState::kError, "fault", fault);
  Publish(true);
}

void NodeController::OnLeaderChanged(const std::optional<coord::LeaderInfo>& leader, uint64_t now) {
  not_streaming_since_ms_ = 0;  // a new situation: give the stream (and the watch) time again
  if (!leader.has_value()) {
    const int64_t departed = leader_.has_value() ? leader_->epoch : departed_epoch_;
    leader_.reset();
    if (my_epoch_ != 0) StepDown("the leader key is gone (lease expired or revoked)", now);
    if (leader_absent_since_ == 0) {
      leader_absent_since_ = now;
      departed_epoch_ = departed;
      hint_read_ = false;
      hint_target_.clear();
      next_plan_ms_ = 0;
    }
    if (machine_.state() != NodeState::kCandidate) {
      Transition(NodeState::kFollower, "no-leader", "no leader in etcd");
    }
    Publish(true);  // our final position, for the others' ranking
    return;
  }
  if (leader->node_id == options_.node_id) {
    if (my_epoch_ != 0 && leader->epoch == my_epoch_) return;  // our own key
    // A key of ours we did not win in this run: a previous incarnation's. Ids are unique (the
    // member entry proves it), so its lease is ours to revoke: the election goes on at once.
    if (keeper_ == nullptr || leader->lease != keeper_->lease_id()) {
      spdlog::info(
          "node {}: leader key of epoch {} is from a previous run of this node; revoking "
          "its lease {}",
          options_.node_id, leader->epoch, leader->lease);
      if (my_epoch_ != 0) StepDown("a stale leader key of ours appeared", now);
      (void)etcd_->LeaseRevoke(leader->lease);
      return;
    }
    // Our key on our live lease, but we stepped down (we were told it was gone): while it exists
    // nobody else campaigns, and following ourselves serves nobody. Delete it; the watch then
    // reports no leader and the election runs again.
    spdlog::warn(
        "node {}: the leader key still names us (epoch {}) though we stepped down; deleting it "
        "so the election can run again",
        options_.node_id, leader->epoch);
    StatusOr<bool> deleted = etcd_->DeleteIfCreateRevision(election_->leader_key(), leader->epoch);
    if (!deleted.ok()) {
      spdlog::warn("node {}: deleting our stale leader key failed: {}", options_.node_id,
                   deleted.status().message());
    }
    return;
  }
  leader_ = leader;
  leader_absent_since_ = 0;
  if (my_epoch_ != 0) {
    StepDown("node " + leader->node_id + " leads epoch " + std::to_string(leader->epoch), now);
  }
  runtime_->BecomeFollower(leader->client_address, static_cast<uint64_t>(leader->epoch));
  Transition(NodeState::kFollower, "following",
             "leader is " + leader->node_id + " at " + leader->client_address + " (epoch " +
                 std::to_string(leader->epoch) + ")");
  Publish(true);
}

bool NodeController::SelfReady(uint64_t now) const {
  if (machine_.state() == NodeState::kError) return false;
  if (my_epoch_ != 0) return true;
  FollowerView follower = runtime_->Follower();
  if (follower.full_sync) return false;
  if (leader_.has_value()) {
    return follower.streaming && follower.lag_ms <= options_.ranking.max_promotion_lag_ms;
  }
  // The leader is gone: we count as caught up if we were shortly before it went.
  return last_ready_ms_ != 0 && now - last_ready_ms_ <= 2ull * options_.lease_ttl_ms + 1000;
}

void NodeController::MaybeCampaign(uint64_t now) {
  if (keeper_ == nullptr || !joined_ || !keeper_->Valid(now)) return;
  if (now < next_plan_ms_) return;
  next_plan_ms_ = now + kPlanIntervalMs;
  if (!hint_read_) {
    hint_read_ = true;
    StatusOr<std::optional<coord::KeyValue>> hint = etcd_->Get(HandoverKey(options_.cluster_id));
    if (hint.ok() && hint->has_value()) {
      nlohmann::json value = nlohmann::json::parse(hint.value()->value, nullptr, false);
      if (value.is_object() && value.value("from_epoch", int64_t{0}) == departed_epoch_ &&
          departed_epoch_ != 0) {
        hint_target_ = value.value("to", std::string());
      }
    }
  }
  if (!hint_target_.empty() && hint_target_ == options_.node_id) {
    Campaign("handover target", now);
    return;
  }
  if (now - leader_absent_since_ < kSettleMs) return;
  StatusOr<std::vector<coord::MemberInfo>> members = membership_->ListMembers();
  if (!members.ok()) return;
  const AppliedPosition applied = runtime_->Applied();
  coord::CandidateState me;
  me.node_id = options_.node_id;
  me.applied_epoch = static_cast<int64_t>(applied.epoch);
  me.applied_seq = applied.seq;
  me.lag_ms = runtime_->Follower().lag_ms;
  me.eligible = SelfReady(now);
  std::vector<coord::CandidateState> others;
  bool all_empty = applied.seq == 0;
  for (const coord::MemberInfo& member : members.value()) {
    if (member.node_id == options_.node_id || member.role == "leader") continue;
    others.push_back(coord::CandidateFromMember(member));
    if (member.applied_seq != 0) all_empty = false;
  }
  if (all_empty) {  // a new cluster: nobody has anything to lose, the lowest id goes first
    me.eligible = true;
    for (coord::CandidateState& other : others) other.eligible = true;
  }
  coord::CampaignPlan plan = coord::PlanCampaign(me, others, options_.ranking);
  uint64_t delay = plan.delay_ms + (hint_target_.empty() ? 0 : kHintDelayMs);
  if (plan.may_campaign && now - leader_absent_since_ >= delay) Campaign(plan.reason, now);
}

void NodeController::Campaign(const std::string& why, uint64_t now) {
  Transition(NodeState::kCandidate, "campaigning", why);
  coord::LeaderValue value{options_.node_id, options_.client_address, options_.client_address};
  StatusOr<coord::CampaignResult> result = election_->Campaign(value, keeper_->lease_id());
  if (!result.ok()) {
    Transition(NodeState::kFollower, "no-leader", "campaign failed: " + result.status().ToString());
    next_plan_ms_ = now + 200;
    return;
  }
  if (!result->won) {
    OnLeaderChanged(result->leader, coord::SteadyClockMs());
    return;
  }
  const int64_t epoch = result->leader.epoch;
  if (!keeper_->Valid()) {
    (void)election_->Resign(/*revoke_lease=*/false);
    Transition(NodeState::kFollower, "no-leader",
               "won epoch " + std::to_string(epoch) + " but the lease ran out; resigned");
    return;
  }
  const AppliedPosition applied = runtime_->Applied();
  Status promoted =
      runtime_->BecomeLeader(static_cast<uint64_t>(epoch), std::make_shared<KeeperLease>(keeper_));
  if (!promoted.ok()) {
    (void)election_->Resign(/*revoke_lease=*/false);
    Transition(NodeState::kFollower, "no-leader",
               "promotion to epoch " + std::to_string(epoch) + " failed: " + promoted.ToString());
    return;
  }
  my_epoch_ = epoch;
  leader_ = result->leader;
  leader_absent_since_ = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.elections_won;
  }
  Transition(NodeState::kLeader, "serving",
             "won election for epoch " + std::to_string(epoch) + " at applied (epoch " +
                 std::to_string(applied.epoch) + ", seq " + std::to_string(applied.seq) +
                 "): " + why);
  Publish(true);
}

void NodeController::StepDown(const std::string& reason, uint64_t now) {
  const bool lease_gone = keeper_ != nullptr && (keeper_->lost() || !keeper_->Valid(now));
  if (my_epoch_ != 0) {
    runtime_->StopWrites(Status(ErrorCode::kFenced, reason));
    std::string address;
    uint64_t epoch = 0;
    if (leader_.has_value() && leader_->node_id != options_.node_id) {
      address = leader_->client_address;
      epoch = static_cast<uint64_t>(leader_->epoch);
    }
    runtime_->BecomeFollower(address, epoch);
    spdlog::warn("node {}: stepping down from epoch {}: {}", options_.node_id, my_epoch_, reason);
    my_epoch_ = 0;
    if (leader_.has_value() && leader_->node_id == options_.node_id) leader_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.step_downs;
  }
  Transition(NodeState::kFollower, leader_.has_value() ? "following" : "no-leader", reason);
  if (lease_gone) {
    // A lost lease is gone for good: revoke it (our leader key and member entry go with it, so
    // the next election need not wait for etcd's expiry) and take a new one.
    std::shared_ptr<coord::LeaseKeeper> old = std::move(keeper_);
    old->Stop();
    (void)etcd_->LeaseRevoke(old->lease_id());
    retired_.push_back(std::move(old));
    joined_ = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++status_.leases_lost;
    }
    next_lease_try_ms_ = 0;
  }
  if (keeper_ == nullptr) RenewLease(now);
}

void NodeController::RenewLease(uint64_t now) {
  if (now < next_lease_try_ms_) return;
  next_lease_try_ms_ = now + kLeaseRetryMs;
  if (keeper_ == nullptr) {
    coord::LeaseKeeperOptions lease_options;
    lease_options.ttl_ms = options_.lease_ttl_ms;
    lease_options.on_lost = [this](const std::string& reason) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        lease_lost_ = true;
        lease_lost_reason_ = reason;
      }
      cv_.notify_all();
    };
    StatusOr<std::unique_ptr<coord::LeaseKeeper>> keeper =
        coord::LeaseKeeper::Start(etcd_.get(), lease_options);
    if (!keeper.ok()) {
      Transition(NodeState::kFollower, "no-lease",
                 "cannot get an etcd lease: " + keeper.status().ToString());
      return;
    }
    keeper_ = std::shared_ptr<coord::LeaseKeeper>(std::move(keeper).value());
  }
  Status joined = membership_->Join(SelfInfo(), keeper_->lease_id());
  if (!joined.ok()) {
    Transition(machine_.state() == NodeState::kInitializing ? NodeState::kInitializing
                                                            : NodeState::kFollower,
               "not-a-member", "cannot claim member entry: " + joined.ToString());
    return;
  }
  joined_ = true;
  spdlog::info("node {}: member of cluster {} with lease {:x} (TTL {} ms)", options_.node_id,
               options_.cluster_id, keeper_->lease_id(), keeper_->ttl_ms());
}

coord::MemberInfo NodeController::SelfInfo() const {
  const uint64_t now = coord::SteadyClockMs();
  const AppliedPosition applied = runtime_->Applied();
  const FollowerView follower = runtime_->Follower();
  coord::MemberInfo info;
  info.node_id = options_.node_id;
  info.role = my_epoch_ != 0                              ? "leader"
              : machine_.state() == NodeState::kCandidate ? "candidate"
                                                          : "standby";
  info.epoch = my_epoch_ != 0 ? my_epoch_ : (leader_.has_value() ? leader_->epoch : 0);
  info.applied_seq = applied.seq;
  info.applied_epoch = static_cast<int64_t>(applied.epoch);
  info.lag_ms = my_epoch_ != 0 ? 0 : follower.lag_ms;
  info.ready = SelfReady(now);
  info.state = machine_.info().Name();
  info.address = options_.client_address;
  info.replication_address = options_.client_address;
  return info;
}

void NodeController::Publish(bool now_not_later) {
  if (!joined_ || membership_ == nullptr) return;
  coord::MemberInfo info = SelfInfo();
  if (!now_not_later) {
    membership_->Update(info);
    return;
  }
  Status published = membership_->PublishNow(info);
  if (published.code() == ErrorCode::kInvalidState) {
    joined_ = false;  // the entry is no longer ours: claim it again
    next_lease_try_ms_ = 0;
  }
}

StatusOr<HandoverResult> NodeController::DoHandover(const std::string& target,
                                                    uint32_t timeout_ms) {
  if (my_epoch_ == 0) {
    std::string leader = leader_.has_value() ? leader_->node_id : "unknown";
    return Status(ErrorCode::kInvalidState,
                  "node " + options_.node_id + " is not the leader (the leader is " + leader + ")");
  }
  // The leader's own replication streams say who is connected and how far (fresher than etcd).
  std::optional<StandbyView> chosen;
  for (const StandbyView& standby : runtime_->Standbys()) {
    if (standby.node_id == options_.node_id) continue;
    if (!target.empty()) {
      if (standby.node_id == target) chosen = standby;
      continue;
    }
    if (!standby.streaming) continue;
    if (!chosen.has_value() || standby.acked_seq > chosen->acked_seq ||
        (standby.acked_seq == chosen->acked_seq && standby.node_id < chosen->node_id)) {
      chosen = standby;
    }
  }
  if (!chosen.has_value()) {
    if (!target.empty()) {
      return Status(ErrorCode::kInvalidParams,
                    "node " + target + " is not a standby of this leader (never connected)");
    }
    return Status(ErrorCode::kUnavailable, "no connected standby to hand over to");
  }
  const std::string to = chosen->node_id;
  const int64_t epoch = my_epoch_;
  Transition(NodeState::kLeader, "handing-over", "handover to " + to + " requested");
  runtime_->StopWrites(Status::NotLeader("leadership is being handed over to " + to, ""));
  const uint64_t last = runtime_->LastSeq();
  runtime_->FlushReplication();
  const uint64_t deadline = coord::SteadyClockMs() + timeout_ms;
  while (runtime_->AckedSeq(to) < last && coord::SteadyClockMs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t acked = runtime_->AckedSeq(to);
  if (acked < last) {
    runtime_->ResumeWrites();
    Transition(NodeState::kLeader, "serving",
               "handover to " + to + " abandoned: it acknowledged seq " + std::to_string(acked) +
                   " of " + std::to_string(last) + " within " + std::to_string(timeout_ms) + " ms");
    return Status(ErrorCode::kUnavailable, "standby " + to + " did not catch up to seq " +
                                               std::to_string(last) + " in time");
  }
  nlohmann::json hint = {{"to", to}, {"from_epoch", epoch}};
  StatusOr<int64_t> put = etcd_->Put(HandoverKey(options_.cluster_id), hint.dump());
  if (!put.ok())
    spdlog::warn("node {}: handover hint: {}", options_.node_id, put.status().ToString());
  Status resigned = election_->Resign(/*revoke_lease=*/false);
  if (!resigned.ok()) {
    // We may still hold the key: stay fenced (writes stopped) and let the lease decide.
    spdlog::warn("node {}: resign failed: {}", options_.node_id, resigned.ToString());
  }
  my_epoch_ = 0;
  runtime_->BecomeFollower("", static_cast<uint64_t>(epoch));
  leader_.reset();
  leader_absent_since_ = coord::SteadyClockMs();
  departed_epoch_ = epoch;
  hint_target_ = to;
  hint_read_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.step_downs;
  }
  Transition(NodeState::kFollower, "no-leader",
             "handed over to " + to + " at seq " + std::to_string(last));
  Publish(true);
  return HandoverResult{to, last};
}

}  // namespace tandem::node
