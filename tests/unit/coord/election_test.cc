// LeaderElection against a real etcd: one winner, epochs from create_revision, the loser
// watching and taking over after a resign, resign never touching a successor's key.
#include "coord/election.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>

#include "coord/lease_keeper.h"
#include "etcd_harness.h"

namespace tandem::coord::testing {
namespace {

using ElectionTest = EtcdTest;

// One candidate node: its own client, lease keeper and election object.
struct Candidate {
  std::string id;
  std::unique_ptr<EtcdClient> client;
  std::unique_ptr<LeaseKeeper> keeper;
  std::unique_ptr<LeaderElection> election;

  Candidate(std::string node_id, const std::vector<std::string>& endpoints)
      : id(std::move(node_id)), client(Connect(endpoints)) {
    LeaseKeeperOptions options;
    options.ttl_ms = 3000;
    keeper = std::move(LeaseKeeper::Start(client.get(), options).value());
    election = std::move(LeaderElection::Create(client.get(), "c1").value());
  }
  ~Candidate() {
    election.reset();
    keeper.reset();
  }
  StatusOr<CampaignResult> Campaign() {
    return election->Campaign({id, id + ":7000", id + ":7001"}, keeper->lease_id());
  }
};

TEST(ElectionIds, BadClusterIdsAreRejected) {
  auto client = Connect({"127.0.0.1:1"});  // never contacted
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "x y", std::string(65, 'a'),
                                                         "caf\xc3\xa9", "a.b", "..", "c1\n"}) {
    auto election = LeaderElection::Create(client.get(), bad);
    ASSERT_FALSE(election.ok()) << bad;
    EXPECT_EQ(election.status().code(), ErrorCode::kInvalidParams);
    EXPECT_NE(election.status().message().find("cluster id"), std::string::npos);
  }
  EXPECT_TRUE(LeaderElection::Create(client.get(), "Tandem_prod-01").ok());
  EXPECT_TRUE(LeaderElection::Create(client.get(), std::string(64, 'z')).ok());
}

TEST_F(ElectionTest, ExactlyOneOfTwoCandidatesWinsAndTheEpochIsTheCreateRevision) {
  Candidate a("node-a", etcd_->endpoints());
  Candidate b("node-b", etcd_->endpoints());
  std::optional<StatusOr<CampaignResult>> ra, rb;
  std::thread ta([&] { ra.emplace(a.Campaign()); });
  std::thread tb([&] { rb.emplace(b.Campaign()); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra->ok() && rb->ok());
  ASSERT_NE(ra->value().won, rb->value().won) << "exactly one winner";
  const CampaignResult& win = ra->value().won ? ra->value() : rb->value();
  const CampaignResult& lose = ra->value().won ? rb->value() : ra->value();
  Candidate& winner = ra->value().won ? a : b;

  StatusOr<std::optional<KeyValue>> key = client_->Get("/tandem/c1/leader");
  ASSERT_TRUE(key.ok() && key.value().has_value());
  EXPECT_EQ(win.leader.epoch, key.value()->create_revision);
  EXPECT_EQ(winner.election->epoch(), key.value()->create_revision);
  EXPECT_EQ(key.value()->lease, winner.keeper->lease_id());
  EXPECT_EQ(lose.leader.node_id, winner.id) << "the loser learns who leads";
  EXPECT_EQ(lose.leader.epoch, win.leader.epoch);
  EXPECT_EQ(lose.leader.client_address, winner.id + ":7000");
  EXPECT_EQ(lose.leader.replication_address, winner.id + ":7001");

  // A retried campaign (say, after a lost answer) finds its own key: still the winner.
  StatusOr<CampaignResult> again = winner.Campaign();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.value().won);
  EXPECT_EQ(again.value().leader.epoch, win.leader.epoch);
}

TEST_F(ElectionTest, LoserSeesWinnerAndTakesOverAfterResignWithAGreaterEpoch) {
  Candidate a("node-a", etcd_->endpoints());
  Candidate b("node-b", etcd_->endpoints());
  StatusOr<CampaignResult> ra = a.Campaign();
  ASSERT_TRUE(ra.ok() && ra.value().won);
  int64_t epoch_a = ra.value().leader.epoch;

  // b follows the leader key and campaigns as soon as it disappears.
  std::mutex mu;
  std::vector<std::string> seen;  // node ids, "-" for none
  std::atomic<int64_t> epoch_b{0};
  std::atomic<uint64_t> won_at{0};
  auto watch = b.election->WatchLeader([&](const std::optional<LeaderInfo>& leader) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(leader ? leader->node_id : "-");
    }
    if (leader || epoch_b.load() != 0) return;
    StatusOr<CampaignResult> r = b.Campaign();
    if (r.ok() && r.value().won) {
      won_at.store(NowMs());
      epoch_b.store(r.value().leader.epoch);
    }
  });
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return !seen.empty();
      },
      3000));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen.front(), "node-a") << "the loser sees the winner";
  }

  uint64_t resign_at = NowMs();
  ASSERT_TRUE(a.election->Resign(/*revoke_lease=*/false).ok());
  ASSERT_TRUE(a.keeper->Revoke().ok());
  ASSERT_TRUE(WaitFor([&] { return epoch_b.load() != 0; }, 3000));
  spdlog::info("measured: handover (Resign of node-a -> node-b won) took {} ms",
               won_at.load() - resign_at);
  EXPECT_LT(won_at.load() - resign_at, 500u);
  EXPECT_GT(epoch_b.load(), epoch_a) << "epochs grow across terms";
  EXPECT_EQ(a.election->epoch(), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return seen.size() >= 3;
      },
      2000));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen[1], "-");
    EXPECT_EQ(seen[2], "node-b");
  }
  watch.value()->Cancel();
}

TEST_F(ElectionTest, ResignNeverDeletesASuccessorsKey) {
  Candidate a("node-a", etcd_->endpoints());
  Candidate b("node-b", etcd_->endpoints());
  ASSERT_TRUE(a.Campaign().value().won);
  // a's lease ends behind its back (as if it expired); b takes over.
  ASSERT_TRUE(client_->LeaseRevoke(a.keeper->lease_id()).ok());
  StatusOr<CampaignResult> rb = b.Campaign();
  ASSERT_TRUE(rb.ok());
  ASSERT_TRUE(rb.value().won);
  // a, still believing it leads, resigns: b's key must survive.
  EXPECT_NE(a.election->epoch(), 0);
  EXPECT_TRUE(a.election->Resign(/*revoke_lease=*/true).ok());
  StatusOr<std::optional<LeaderInfo>> leader = b.election->GetLeader();
  ASSERT_TRUE(leader.ok());
  ASSERT_TRUE(leader.value().has_value());
  EXPECT_EQ(leader.value()->node_id, "node-b");
  EXPECT_EQ(leader.value()->epoch, rb.value().leader.epoch);
}

TEST_F(ElectionTest, CampaignValidatesItsInput) {
  Candidate a("node-a", etcd_->endpoints());
  EXPECT_EQ(a.election->Campaign({"bad id", "", ""}, a.keeper->lease_id()).status().code(),
            ErrorCode::kInvalidParams);
  EXPECT_EQ(a.election->Campaign({"node-a", "", ""}, 0).status().code(), ErrorCode::kInvalidParams);
  EXPECT_TRUE(a.election->Resign().ok()) << "resigning without leading is a no-op";
}

}  // namespace
}  // namespace tandem::coord::testing
