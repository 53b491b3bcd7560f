// NodeController against a real etcd with a fake runtime: election, following, fencing on lease
// loss, handover refusals, bad input. The cluster-level behaviour (real masters) is in
// tests/integration/failover_test.cc.
#include "node/node_controller.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "coord/keys.h"
#include "coord/membership.h"
#include "etcd_harness.h"

namespace tandem::node {
namespace {

using coord::testing::EtcdCluster;
using coord::testing::TcpProxy;
using coord::testing::WaitFor;

class FakeRuntime : public NodeRuntime {
 public:
  AppliedPosition Applied() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return applied;
  }
  FollowerView Follower() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return follower;
  }
  Status BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> l) override {
    std::lock_guard<std::mutex> lock(mu_);
    leader_epoch = epoch;
    lease = std::move(l);
    ++promotions;
    return Status::Ok();
  }
  void BecomeFollower(const std::string& address, uint64_t epoch) override {
    std::lock_guard<std::mutex> lock(mu_);
    leader_epoch = 0;
    followed_address = address;
    followed_epoch = epoch;
    ++demotions;
  }
  void StopWrites(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    stop_status = status;
    ++stops;
  }
  void ResumeWrites() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++resumes;
  }
  void FlushReplication() override {}
  uint64_t LastSeq() const override { return Applied().seq; }
  uint64_t AckedSeq(const std::string&) const override { return 0; }
  std::vector<StandbyView> Standbys() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return standbys;
  }
  std::string Fault() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return fault;
  }

  template <typename T>
  T Get(T FakeRuntime::*field) const {
    std::lock_guard<std::mutex> lock(mu_);
    return this->*field;
  }

  mutable std::mutex mu_;
  AppliedPosition applied;
  FollowerView follower;
  std::vector<StandbyView> standbys;
  std::string fault;
  uint64_t leader_epoch = 0;
  std::shared_ptr<const FencingLease> lease;
  std::string followed_address;
  uint64_t followed_epoch = 0;
  Status stop_status;
  int promotions = 0, demotions = 0, stops = 0, resumes = 0;
};

NodeControllerOptions Options(const std::vector<std::string>& endpoints, const std::string& id) {
  NodeControllerOptions options;
  options.cluster_id = "nodetest";
  options.node_id = id;
  options.etcd_endpoints = endpoints;
  options.client_address = "127.0.0.1:1" + id.substr(1);  // distinct per node
  return options;
}

TEST(NodeStateMachineTest, RecordsTransitionsWithReasons) {
  NodeStateMachine machine;
  EXPECT_EQ(machine.state(), NodeState::kInitializing);
  EXPECT_TRUE(machine.Transition(NodeState::kFollower, "no-leader", "joined", 10));
  EXPECT_FALSE(machine.Transition(NodeState::kFollower, "no-leader", "again", 11));
  EXPECT_TRUE(machine.Transition(NodeState::kLeader, "serving", "won epoch 7", 12));
  EXPECT_EQ(machine.info().Name(), "LEADER/serving");
  EXPECT_EQ(machine.info().reason, "won epoch 7");
  EXPECT_EQ(machine.info().since_ms, 12u);
  EXPECT_EQ(machine.info().transitions, 2u);
  machine.SetSubState("handing-over");
  EXPECT_EQ(machine.info().transitions, 2u);
  EXPECT_EQ(NodeStateName(NodeState::kRecovering), "RECOVERING");
}

TEST(NodeControllerTest, RejectsBadIdsAndUnreachableEtcd) {
  FakeRuntime runtime;
  NodeControllerOptions bad = Options({"127.0.0.1:1"}, "n1");
  bad.cluster_id = "no/slashes";
  NodeController c1(bad, &runtime);
  EXPECT_EQ(c1.Start().code(), ErrorCode::kInvalidParams);
  NodeController c2(Options({"127.0.0.1:" + std::to_string(coord::testing::FreePort())}, "n1"),
                    &runtime);
  Status status = c2.Start();
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("etcd"), std::string::npos) << status.ToString();
  EXPECT_EQ(runtime.Get(&FakeRuntime::promotions), 0);
}

class NodeControllerEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    etcd_ = EtcdCluster::Start(1, &error, {"--heartbeat-interval=100", "--election-timeout=500"});
    ASSERT_NE(etcd_, nullptr) << error;
  }
  std::unique_ptr<EtcdCluster> etcd_;
};

TEST_F(NodeControllerEtcdTest, LoneNodeLeadsAndASecondFollowsIt) {
  FakeRuntime r1, r2;
  NodeController n1(Options(etcd_->endpoints(), "n1"), &r1);
  ASSERT_TRUE(n1.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r1.Get(&FakeRuntime::leader_epoch) > 0; }, 5000));
  const uint64_t epoch = r1.Get(&FakeRuntime::leader_epoch);
  // Leadership() is refreshed once per control-loop turn, right after the runtime calls.
  ASSERT_TRUE(WaitFor([&] { return n1.Leadership().state.state == NodeState::kLeader; }, 2000));
  ASSERT_TRUE(WaitFor([&] { return n1.Leadership().lease_valid; }, 2000));
  EXPECT_TRUE(r1.Get(&FakeRuntime::lease)->Valid());

  NodeController n2(Options(etcd_->endpoints(), "n2"), &r2);
  ASSERT_TRUE(n2.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::followed_epoch) == epoch; }, 5000));
  EXPECT_EQ(r2.Get(&FakeRuntime::followed_address), "127.0.0.1:11");
  EXPECT_EQ(r2.Get(&FakeRuntime::promotions), 0);
  ASSERT_TRUE(WaitFor([&] { return n2.Leadership().leader_id == "n1"; }, 2000));

  // Both published member entries.
  auto client = coord::testing::Connect(etcd_->endpoints());
  coord::MembershipOptions observer;
  observer.cluster_id = "nodetest";
  observer.node_id = "observer";
  auto membership = coord::Membership::Create(client.get(), observer);
  ASSERT_TRUE(membership.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto members = membership.value()->ListMembers();
        if (!members.ok() || members.value().size() != 2) return false;
        return members.value()[0].role == "leader" && members.value()[1].role == "standby";
      },
      3000));

  // A handover from a follower is refused; the leader without a connected standby refuses too
  // and keeps leading (writes never stopped).
  EXPECT_EQ(n2.Handover("", 500).status().code(), ErrorCode::kInvalidState);
  EXPECT_EQ(n1.Handover("", 500).status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(n1.Handover("n9", 500).status().code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(r1.Get(&FakeRuntime::stops), 0);
  EXPECT_EQ(n1.Leadership().state.state, NodeState::kLeader);

  // The leader stops: the follower takes over in a new epoch (its ranking: the only one left).
  n1.Stop(/*handover=*/false);
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::leader_epoch) > epoch; }, 8000));
  EXPECT_TRUE(WaitFor([&] { return n2.Leadership().state.state == NodeState::kLeader; }, 2000));
}

// A follower whose leader watch went quiet (here: none at all) still finds the leader, and
// its departure, by re-reading the key while it is not streaming. Without the re-read it never
// would: the chaos campaign saw standbys stuck for 11 s on a silent watch connection.
TEST_F(NodeControllerEtcdTest, FollowerWithoutAWorkingWatchFindsTheLeaderByRereading) {
  FakeRuntime r1, r2, r3;
  NodeController n1(Options(etcd_->endpoints(), "n1"), &r1);
  ASSERT_TRUE(n1.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r1.Get(&FakeRuntime::leader_epoch) > 0; }, 5000));
  const uint64_t epoch = r1.Get(&FakeRuntime::leader_epoch);

  NodeControllerOptions blind = Options(etcd_->endpoints(), "n3");
  blind.watch_leader = false;
  blind.leader_reread_ms = 0;
  NodeController n3(blind, &r3);
  ASSERT_TRUE(n3.Start().ok());

  NodeControllerOptions rereading = Options(etcd_->endpoints(), "n2");
  rereading.watch_leader = false;
  rereading.leader_reread_ms = 200;
  NodeController n2(rereading, &r2);
  ASSERT_TRUE(n2.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::followed_epoch) == epoch; }, 3000));
  EXPECT_EQ(r2.Get(&FakeRuntime::followed_address), "127.0.0.1:11");
  EXPECT_EQ(r3.Get(&FakeRuntime::followed_epoch), 0u);  // no watch, no re-read: never learns

  n3.Stop(false);
  n1.Stop(/*handover=*/false);  // resigns: the key goes at once
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::leader_epoch) > epoch; }, 8000));
}

// A node that stepped down (a resumed watch once delivered an old deletion late, and it took
// that for its own key's) can find the leader key still naming it, on its own live lease. The
// chaos campaign saw the cluster then stay leaderless: the node followed itself and the others
// followed it. The node now deletes that key so the election runs again.
TEST_F(NodeControllerEtcdTest, AFollowerNamedByTheLeaderKeyOnItsOwnLeaseDeletesIt) {
  FakeRuntime r1, r2;
  NodeController n1(Options(etcd_->endpoints(), "n1"), &r1);
  ASSERT_TRUE(n1.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r1.Get(&FakeRuntime::leader_epoch) > 0; }, 5000));
  const uint64_t epoch = r1.Get(&FakeRuntime::leader_epoch);
  NodeController n2(Options(etcd_->endpoints(), "n2"), &r2);
  ASSERT_TRUE(n2.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::followed_epoch) == epoch; }, 5000));

  // Rewrite the key (same create revision, so the same epoch) to name n2 on n2's member lease.
  auto client = coord::testing::Connect(etcd_->endpoints());
  auto member = client->Get(coord::MemberKey("nodetest", "n2"));
  ASSERT_TRUE(member.ok() && member->has_value());
  const int64_t n2_lease = member.value()->lease;
  ASSERT_NE(n2_lease, 0);
  const std::string value =
      coord::LeaderElection::EncodeValue({"n2", "127.0.0.1:12", "127.0.0.1:12"});
  ASSERT_TRUE(client->Put(coord::LeaderKey("nodetest"), value, n2_lease).ok());

  // n1 steps down for "n2"; n2, not leading, deletes the key; a new election picks a leader.
  ASSERT_TRUE(WaitFor(
      [&] {
        return r1.Get(&FakeRuntime::leader_epoch) > epoch ||
               r2.Get(&FakeRuntime::leader_epoch) > epoch;
      },
      8000))
      << "no leader after the key named a node that does not lead";
}

TEST_F(NodeControllerEtcdTest, LeaderWithAnUnrecoverableFaultStepsDownAndNeverLeadsAgain) {
  FakeRuntime r1, r2;
  NodeController n1(Options(etcd_->endpoints(), "n1"), &r1);
  ASSERT_TRUE(n1.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r1.Get(&FakeRuntime::leader_epoch) > 0; }, 5000));
  NodeController n2(Options(etcd_->endpoints(), "n2"), &r2);
  ASSERT_TRUE(n2.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::followed_epoch) > 0; }, 5000));
  {
    std::lock_guard<std::mutex> lock(r1.mu_);
    r1.fault = "WAL write failed: No space left on device";
  }
  // n1 stops writes, gives the key up, and n2 takes over without waiting for n1's lease.
  ASSERT_TRUE(WaitFor([&] { return n1.Leadership().state.state == NodeState::kError; }, 3000));
  EXPECT_NE(n1.Leadership().state.reason.find("No space left"), std::string::npos);
  EXPECT_GE(r1.Get(&FakeRuntime::stops), 1);
  EXPECT_EQ(r1.Get(&FakeRuntime::leader_epoch), 0u);
  ASSERT_TRUE(WaitFor([&] { return r2.Get(&FakeRuntime::leader_epoch) > 0; }, 3000));
  // n2 goes away: n1, faulty, still never campaigns.
  n2.Stop(/*handover=*/false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(r1.Get(&FakeRuntime::promotions), 1);
  EXPECT_EQ(n1.Leadership().state.state, NodeState::kError);
}

TEST_F(NodeControllerEtcdTest, DuplicateNodeIdIsRefused) {
  FakeRuntime r1, r2;
  NodeController first(Options(etcd_->endpoints(), "n1"), &r1);
  ASSERT_TRUE(first.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return first.Leadership().lease_valid; }, 3000));
  NodeController second(Options(etcd_->endpoints(), "n1"), &r2);
  Status status = second.Start();
  EXPECT_EQ(status.code(), ErrorCode::kInvalidParams) << status.ToString();
  EXPECT_NE(status.message().find("already in use"), std::string::npos) << status.ToString();
  EXPECT_EQ(first.Leadership().state.state, NodeState::kLeader);
}

TEST_F(NodeControllerEtcdTest, LeaderCutOffFromEtcdFencesItselfAndStepsDown) {
  TcpProxy proxy(std::stoi(etcd_->endpoint().substr(etcd_->endpoint().rfind(':') + 1)));
  FakeRuntime runtime;
  NodeController node(Options({proxy.endpoint()}, "n1"), &runtime);
  ASSERT_TRUE(node.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime.Get(&FakeRuntime::leader_epoch) > 0; }, 5000));
  std::shared_ptr<const FencingLease> lease = runtime.Get(&FakeRuntime::lease);
  ASSERT_TRUE(lease->Valid());
  const auto cut_at = std::chrono::steady_clock::now();
  proxy.Freeze(true);  // silence, not resets: keepalives go unanswered
  ASSERT_TRUE(WaitFor([&] { return !lease->Valid(); }, 5000));
  const auto fenced_after = std::chrono::steady_clock::now() - cut_at;
  // Fenced before etcd could expire the key (TTL 3 s after the last renewal).
  EXPECT_LT(fenced_after, std::chrono::milliseconds(3000));
  ASSERT_TRUE(WaitFor([&] { return runtime.Get(&FakeRuntime::stops) >= 1; }, 2000));
  EXPECT_EQ(runtime.Get(&FakeRuntime::stop_status).code(), ErrorCode::kFenced);
  EXPECT_EQ(runtime.Get(&FakeRuntime::leader_epoch), 0u);  // became a follower
  EXPECT_TRUE(WaitFor([&] { return node.Leadership().state.state != NodeState::kLeader; }, 2000));
  proxy.Freeze(false);
  // Back in touch: a new lease, and (alone in the cluster) it leads again in a newer epoch.
  ASSERT_TRUE(WaitFor([&] { return runtime.Get(&FakeRuntime::promotions) >= 2; }, 15000))
      << node.Leadership().state.Name() << ": " << node.Leadership().state.reason;
  EXPECT_GE(node.Leadership().leases_lost, 1u);
  node.Stop(false);
}

}  // namespace
}  // namespace tandem::node
