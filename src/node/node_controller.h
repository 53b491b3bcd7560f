// NodeController: a node's leadership through etcd (DESIGN §4), one control thread.
//
// Start() connects to etcd, takes a lease (LeaseKeeper: keepalive every TTL/3, self-fencing
// deadline), claims /tandem/<cluster>/members/<node> (a live duplicate node id fails here), then
// watches the leader key. From then on the control thread:
// - follows whoever leads (runtime->BecomeFollower with the leader's address and epoch);
// - when the leader key is absent, ranks itself among the published members (coord::PlanCampaign:
//   eligible = was streaming and caught up; most advanced (epoch, seq) first, others after a
//   rank-proportional delay; a handover names its target, who goes first) and campaigns;
// - on winning, promotes (runtime->BecomeLeader with the epoch = the key's create_revision and
//   the lease as the write fence) and publishes the member entry as leader;
// - when the lease is lost (etcd said so, or the local deadline passed without a confirmed
//   keepalive) or the leader key is no longer ours: stops writes at once, steps down, revokes the
//   old lease (best effort), takes a new one and rejoins as a follower;
// - publishes its member entry (role, epoch, applied seq, lag, ready) as things change.
//
// Handover() (tandemctl failover, SIGTERM via Stop(true)) drains writes, waits until the target
// acknowledged our last seq, leaves a hint naming it, and resigns: switchover in milliseconds.
// Thread-safe; the runtime must outlive the controller.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coord/election.h"
#include "coord/etcd_client.h"
#include "coord/lease_keeper.h"
#include "coord/membership.h"
#include "coord/ranking.h"
#include "node/node_runtime.h"
#include "node/node_state.h"

namespace tandem::node {

struct NodeControllerOptions {
  std::string cluster_id;
  std::string node_id;
  std::vector<std::string> etcd_endpoints;
  uint32_t lease_ttl_ms = 3000;
  coord::RankingOptions ranking;
  uint32_t handover_timeout_ms = 2000;
  std::string client_address;  // published in the leader key and the member entry
  uint32_t tick_ms = 20;       // control loop period when nothing happens
  // A follower that has not been streaming for this long re-reads the leader key, then again at
  // this interval (0: never), in case its
  // watch went quiet on a dead connection (gRPC keepalives take ~13 s to notice one).
  uint32_t leader_reread_ms = 1000;
  bool watch_leader = true;  // false only in tests: the re-read alone must find the leader
};

struct HandoverResult {
  std::string new_leader;  // the standby that takes over
  uint64_t last_seq = 0;   // our last seq, acknowledged by it before we resigned
};

class NodeController {
 public:
  NodeController(NodeControllerOptions options, NodeRuntime* runtime);
  ~NodeController();  // Stop(false)
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  // kInvalidParams for bad ids or a node id in use by a live member, kUnavailable when no etcd
  // endpoint answers. On error nothing is left running.
  Status Start();
  // With `handover` and while leading: hand over first (bounded by handover_timeout_ms). Then
  // stops the control thread, deletes the member entry and revokes the lease. Idempotent.
  void Stop(bool handover);

  // Planned switchover to `target` (empty: the most advanced eligible standby). Only on the
  // leader (kInvalidState otherwise); kUnavailable if the target did not catch up in time
  // (writes resume, we stay leader).
  StatusOr<HandoverResult> Handover(const std::string& target, uint32_t timeout_ms);

  LeadershipStatus Leadership() const;

 private:
  struct HandoverRequest {
    std::string target;
    uint32_t timeout_ms = 0;
    std::promise<StatusOr<HandoverResult>> result;
  };

  void Run();
  void Tick(uint64_t now);
  void OnLeaderChanged(const std::optional<coord::LeaderInfo>& leader, uint64_t now);
  void MaybeCampaign(uint64_t now);
  void Campaign(const std::string& why, uint64_t now);
  void StepDown(const std::string& reason, uint64_t now);
  void RenewLease(uint64_t now);
  StatusOr<HandoverResult> DoHandover(const std::string& target, uint32_t timeout_ms);
  void Publish(bool now_not_later);
  coord::MemberInfo SelfInfo() const;
  bool SelfReady(uint64_t now) const;
  void Transition(NodeState state, const std::string& sub, const std::string& reason);
  // ERROR on an unrecoverable local fault: step down, give the leader key up, never campaign.
  void CheckFault(uint64_t now);
  // While following without a stream: re-read the leader key (bounded rate) and act if it differs.
  void RereadLeader(uint64_t now);

  const NodeControllerOptions options_;
  NodeRuntime* const runtime_;

  std::unique_ptr<coord::EtcdClient> etcd_;
  std::unique_ptr<coord::LeaderElection> election_;
  std::unique_ptr<coord::Membership> membership_;
  std::unique_ptr<coord::WatchHandle> watch_;
  std::shared_ptr<coord::LeaseKeeper> keeper_;                // control thread (and Start/Stop)
  std::vector<std::shared_ptr<coord::LeaseKeeper>> retired_;  // lost leases, kept until Stop

  // Events for the control thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::optional<coord::LeaderInfo>> leader_event_;
  std::string lease_lost_reason_;
  bool lease_lost_ = false;
  std::deque<std::shared_ptr<HandoverRequest>> handovers_;
  bool stop_ = false;
  LeadershipStatus status_;  // snapshot for Status()

  // Control thread only.
  NodeStateMachine machine_;
  std::optional<coord::LeaderInfo> leader_;  // as last seen
  int64_t my_epoch_ = 0;                     // while leading
  uint64_t leader_absent_since_ = 0;         // 0: a leader is known
  int64_t departed_epoch_ = 0;               // epoch of the leader that went away
  std::string hint_target_;                  // handover hint for departed_epoch_
  bool hint_read_ = false;
  uint64_t next_plan_ms_ = 0;
  uint64_t next_leader_reread_ms_ = 0;
  uint64_t not_streaming_since_ms_ = 0;  // 0: streaming
  uint64_t next_lease_try_ms_ = 0;
  uint64_t last_ready_ms_ = 0;
  uint64_t next_fault_check_ms_ = 0;
  bool joined_ = false;
  std::thread thread_;
  bool running_ = false;
};

}  // namespace tandem::node
