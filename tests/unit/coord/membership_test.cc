// Membership against a real etcd: publish and list, rate limiting, duplicate node ids.
#include "coord/membership.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "coord/lease_keeper.h"
#include "etcd_harness.h"

namespace tandem::coord::testing {
namespace {

using MembershipTest = EtcdTest;

MembershipOptions Options(std::string node_id) {
  MembershipOptions options;
  options.cluster_id = "c1";
  options.node_id = std::move(node_id);
  options.min_publish_interval_ms = 200;
  options.claim_wait_ms = 4000;
  return options;
}

MemberInfo Info(std::string role, uint64_t seq) {
  MemberInfo info;
  info.role = std::move(role);
  info.epoch = 7;
  info.applied_epoch = 7;
  info.applied_seq = seq;
  info.lag_ms = 12;
  info.ready = true;
  info.state = "FOLLOWER/streaming";
  info.address = "127.0.0.1:7000";
  info.replication_address = "127.0.0.1:7001";
  return info;
}

std::unique_ptr<LeaseKeeper> Keeper(EtcdClient* client) {
  LeaseKeeperOptions options;
  options.ttl_ms = 3000;
  return std::move(LeaseKeeper::Start(client, options).value());
}

TEST_F(MembershipTest, BadIdsAreRejected) {
  MembershipOptions options = Options("n 1");
  EXPECT_EQ(Membership::Create(client_.get(), options).status().code(), ErrorCode::kInvalidParams);
  options = Options("n1");
  options.cluster_id = "c/1";
  EXPECT_EQ(Membership::Create(client_.get(), options).status().code(), ErrorCode::kInvalidParams);
}

TEST_F(MembershipTest, PublishesAndListsEveryMember) {
  auto keeper1 = Keeper(client_.get());
  auto keeper2 = Keeper(client_.get());
  auto m1 = std::move(Membership::Create(client_.get(), Options("n1")).value());
  auto m2 = std::move(Membership::Create(client_.get(), Options("n2")).value());
  ASSERT_TRUE(m1->Join(Info("leader", 100), keeper1->lease_id()).ok());
  ASSERT_TRUE(m2->Join(Info("standby", 90), keeper2->lease_id()).ok());
  ASSERT_TRUE(m2->PublishNow(Info("standby", 95)).ok());

  StatusOr<std::vector<MemberInfo>> members = m1->ListMembers();
  ASSERT_TRUE(members.ok()) << members.status().ToString();
  ASSERT_EQ(members.value().size(), 2u);
  const MemberInfo& n1 = members.value()[0];
  const MemberInfo& n2 = members.value()[1];
  EXPECT_EQ(n1.node_id, "n1");
  EXPECT_EQ(n1.role, "leader");
  EXPECT_EQ(n1.applied_seq, 100u);
  EXPECT_EQ(n1.lease, keeper1->lease_id());
  EXPECT_EQ(n2.node_id, "n2");
  EXPECT_EQ(n2.applied_seq, 95u);
  EXPECT_EQ(n2.epoch, 7);
  EXPECT_EQ(n2.applied_epoch, 7);
  EXPECT_EQ(n2.lag_ms, 12u);
  EXPECT_TRUE(n2.ready);
  EXPECT_EQ(n2.state, "FOLLOWER/streaming");
  EXPECT_EQ(n2.address, "127.0.0.1:7000");
  EXPECT_EQ(n2.replication_address, "127.0.0.1:7001");
  EXPECT_GT(n2.updated_ms, 0u);
  EXPECT_EQ(CandidateFromMember(n2).applied_seq, 95u);

  // The entry goes with the lease.
  ASSERT_TRUE(keeper2->Revoke().ok());
  EXPECT_EQ(m1->ListMembers().value().size(), 1u);
  EXPECT_EQ(m2->PublishNow(Info("standby", 96)).code(), ErrorCode::kInvalidState)
      << "a node never rewrites an entry that is no longer its own";
  ASSERT_TRUE(m1->Leave().ok());
  EXPECT_TRUE(m1->ListMembers().value().empty());
}

TEST_F(MembershipTest, UpdatesAreRateLimitedAndTheLatestWins) {
  auto keeper = Keeper(client_.get());
  auto m = std::move(Membership::Create(client_.get(), Options("n1")).value());
  ASSERT_TRUE(m->Join(Info("standby", 0), keeper->lease_id()).ok());
  std::atomic<int> puts{0};
  WatchOptions watch;
  watch.key = m->key();
  auto handle = client_->Watch(watch, [&](const WatchBatch& b) { puts += b.events.size(); });
  ASSERT_TRUE(handle.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  uint64_t start = NowMs();
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    m->Update(Info("standby", seq));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  uint64_t took = NowMs() - start;
  ASSERT_TRUE(WaitFor([&] { return m->ListMembers().value()[0].applied_seq == 100; }, 2000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int expected_max = static_cast<int>(took / 200) + 2;
  EXPECT_LE(puts.load(), expected_max) << "100 updates in " << took << " ms";
  EXPECT_GE(puts.load(), 2);
  int before = puts.load();
  m->Update(Info("standby", 100));  // nothing changed: no write
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(puts.load(), before);
}

TEST_F(MembershipTest, ALiveMemberKeepsItsNodeId) {
  auto keeper1 = Keeper(client_.get());
  auto first = std::move(Membership::Create(client_.get(), Options("n1")).value());
  ASSERT_TRUE(first->Join(Info("leader", 1), keeper1->lease_id()).ok());

  auto client2 = Connect(etcd_->endpoints());
  auto keeper2 = Keeper(client2.get());
  auto second = std::move(Membership::Create(client2.get(), Options("n1")).value());
  uint64_t start = NowMs();
  Status status = second->Join(Info("standby", 0), keeper2->lease_id());
  uint64_t took = NowMs() - start;
  spdlog::info("measured: duplicate node id refused after {} ms: {}", took, status.message());
  EXPECT_EQ(status.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(status.message().find("node id n1 is already in use by a live member"),
            std::string::npos)
      << status.message();
  EXPECT_LE(took, 4000u + 500u);
  // The first member's entry is untouched.
  EXPECT_EQ(first->ListMembers().value()[0].lease, keeper1->lease_id());
}

TEST_F(MembershipTest, ARestartedNodeWaitsForItsPreviousLeaseToExpire) {
  // The "previous run": an entry under a 2 s lease nobody renews any more.
  StatusOr<GrantedLease> old_lease = client_->LeaseGrant(2);
  ASSERT_TRUE(old_lease.ok());
  auto previous = std::move(Membership::Create(client_.get(), Options("n1")).value());
  ASSERT_TRUE(previous->Join(Info("leader", 1), old_lease.value().id).ok());
  previous.reset();

  auto keeper = Keeper(client_.get());
  auto restarted = std::move(Membership::Create(client_.get(), Options("n1")).value());
  uint64_t start = NowMs();
  Status status = restarted->Join(Info("standby", 1), keeper->lease_id());
  uint64_t took = NowMs() - start;
  spdlog::info("measured: restarted node claimed its id after {} ms (old lease TTL 2 s)", took);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_LE(took, 2000u + 1000u);
  EXPECT_EQ(restarted->ListMembers().value()[0].lease, keeper->lease_id());
}

}  // namespace
}  // namespace tandem::coord::testing
