// LeaseKeeper against a real etcd: keepalives keep the key, self-fencing turns Valid() false
// before etcd deletes the key when keepalives stop getting through, on_lost on a TTL=0 answer,
// an injected clock, and a 3-member etcd whose raft leader is killed.
#include "coord/lease_keeper.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

#include "etcd_harness.h"

namespace tandem::coord::testing {
namespace {

using LeaseKeeperTest = EtcdTest;

struct LossRecorder {
  std::atomic<int> count{0};
  std::atomic<uint64_t> at_ms{0};
  std::mutex mu;
  std::string reason;
  std::function<void(const std::string&)> Callback() {
    return [this](const std::string& why) {
      {
        std::lock_guard<std::mutex> lock(mu);
        reason = why;
      }
      at_ms.store(NowMs());
      count.fetch_add(1);
    };
  }
  std::string Reason() {
    std::lock_guard<std::mutex> lock(mu);
    return reason;
  }
};

int PortOf(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

TEST(LeaseKeeperOptionsTest, RefusesTtlBelowEtcdMinimum) {
  auto client = Connect({"127.0.0.1:1"});  // never contacted
  LeaseKeeperOptions options;
  options.ttl_ms = 1999;
  auto keeper = LeaseKeeper::Start(client.get(), options);
  ASSERT_FALSE(keeper.ok());
  EXPECT_EQ(keeper.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(keeper.status().message().find("2000"), std::string::npos);
}

TEST_F(LeaseKeeperTest, KeepsTheKeyAliveAndRevokeDeletesItWithoutReportingLoss) {
  LossRecorder loss;
  LeaseKeeperOptions options;
  options.ttl_ms = 2000;
  options.on_lost = loss.Callback();
  auto keeper = LeaseKeeper::Start(client_.get(), options);
  ASSERT_TRUE(keeper.ok()) << keeper.status().ToString();
  LeaseKeeper& k = *keeper.value();
  EXPECT_EQ(k.ttl_ms(), 2000u);
  ASSERT_TRUE(client_->Put("/k/held", "v", k.lease_id()).ok());
  for (int i = 0; i < 8; ++i) {  // 4 s = 2 TTLs
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_TRUE(k.Valid()) << "at " << (i + 1) * 500 << " ms";
  }
  EXPECT_TRUE(client_->Get("/k/held").value().has_value());
  // Validity is always ahead of now and never beyond TTL - margin from now.
  uint64_t now = k.clock()();
  EXPECT_GT(k.ValidUntilMs(), now);
  EXPECT_LE(k.ValidUntilMs(), now + k.ttl_ms() - k.margin_ms());

  ASSERT_TRUE(k.Revoke().ok());
  EXPECT_FALSE(k.Valid());
  EXPECT_FALSE(client_->Get("/k/held").value().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(loss.count.load(), 0);
}

TEST_F(LeaseKeeperTest, OnLostFiresOnceWhenEtcdAnswersTtlZero) {
  LossRecorder loss;
  LeaseKeeperOptions options;
  options.ttl_ms = 2500;  // rounded up to whole seconds
  options.on_lost = loss.Callback();
  auto keeper = LeaseKeeper::Start(client_.get(), options);
  ASSERT_TRUE(keeper.ok());
  LeaseKeeper& k = *keeper.value();
  EXPECT_EQ(k.ttl_ms(), 3000u);
  EXPECT_EQ(k.margin_ms(), 500u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(client_->LeaseRevoke(k.lease_id()).ok());  // behind the keeper's back
  uint64_t revoked_at = NowMs();
  ASSERT_TRUE(WaitFor([&] { return loss.count.load() > 0; }, 2500));
  spdlog::info("measured: on_lost {} ms after an external revoke (keepalive every {} ms)",
               loss.at_ms.load() - revoked_at, k.ttl_ms() / 3);
  EXPECT_NE(loss.Reason().find("TTL=0"), std::string::npos) << loss.Reason();
  EXPECT_TRUE(k.lost());
  EXPECT_FALSE(k.Valid());
  EXPECT_EQ(k.ValidUntilMs(), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(loss.count.load(), 1);
}

// Keepalives stop getting through (a frozen proxy: silence, no reset). The keeper must consider
// itself fenced strictly before etcd deletes the key.
TEST_F(LeaseKeeperTest, ValidTurnsFalseBeforeEtcdDeletesTheKeyWhenKeepalivesStop) {
  TcpProxy proxy(PortOf(etcd_->endpoint()));
  auto keeper_client = Connect({proxy.endpoint()});
  LossRecorder loss;
  LeaseKeeperOptions options;
  options.ttl_ms = 3000;
  options.on_lost = loss.Callback();
  auto keeper = LeaseKeeper::Start(keeper_client.get(), options);
  ASSERT_TRUE(keeper.ok()) << keeper.status().ToString();
  LeaseKeeper& k = *keeper.value();
  ASSERT_TRUE(client_->Put("/k/fenced", "v", k.lease_id()).ok());
  std::atomic<uint64_t> deleted_at{0};
  WatchOptions watch;
  watch.key = "/k/fenced";
  auto handle = client_->Watch(watch, [&](const WatchBatch& batch) {
    for (const auto& e : batch.events) {
      if (e.type == WatchEvent::Type::kDelete) deleted_at.store(NowMs());
    }
  });
  ASSERT_TRUE(handle.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a few keepalives
  ASSERT_TRUE(k.Valid());

  uint64_t frozen_at = NowMs();
  proxy.Freeze(true);
  uint64_t invalid_at = 0;
  ASSERT_TRUE(WaitFor([&] { return !k.Valid(); }, 4000));
  invalid_at = NowMs();
  EXPECT_EQ(deleted_at.load(), 0u) << "etcd deleted the key before the holder fenced itself";
  ASSERT_TRUE(WaitFor([&] { return deleted_at.load() != 0; }, 3000));
  spdlog::info(
      "measured: keepalives stopped -> Valid()==false after {} ms, etcd deleted the key "
      "after {} ms ({} ms later; TTL 3000, margin {})",
      invalid_at - frozen_at, deleted_at.load() - frozen_at, deleted_at.load() - invalid_at,
      k.margin_ms());
  EXPECT_LE(invalid_at - frozen_at, 3000u - 500u + 100u);
  EXPECT_LT(invalid_at, deleted_at.load());
  EXPECT_LE(deleted_at.load() - frozen_at, 3000u + 1000u + 200u);
  ASSERT_TRUE(WaitFor([&] { return loss.count.load() == 1; }, 1000));
  EXPECT_NE(loss.Reason().find("no keepalive confirmed"), std::string::npos) << loss.Reason();
  proxy.Freeze(false);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(k.Valid()) << "a lost lease never becomes valid again";
  EXPECT_EQ(loss.count.load(), 1);
}

// With an injected clock the deadline is exact: t_sent + TTL - margin.
TEST_F(LeaseKeeperTest, InjectedClockDrivesTheFencingDeadline) {
  std::atomic<uint64_t> fake{1000};
  LossRecorder loss;
  LeaseKeeperOptions options;
  options.ttl_ms = 3000;
  options.margin_ms = 500;
  options.clock = [&] { return fake.load(); };
  options.on_lost = loss.Callback();
  auto keeper = LeaseKeeper::Start(client_.get(), options);
  ASSERT_TRUE(keeper.ok());
  LeaseKeeper& k = *keeper.value();
  EXPECT_EQ(k.ValidUntilMs(), 3500u);
  EXPECT_TRUE(k.Valid(3499));
  EXPECT_FALSE(k.Valid(3500));
  fake.store(2000);  // the keeper sends a keepalive "at 2000"; its answer moves validity
  ASSERT_TRUE(WaitFor([&] { return k.ValidUntilMs() == 4500u; }, 2000)) << k.ValidUntilMs();
  EXPECT_EQ(loss.count.load(), 0);
  fake.store(4500);  // no confirmation after 2000 counts for this instant: lost
  ASSERT_TRUE(WaitFor([&] { return loss.count.load() == 1; }, 1000));
  EXPECT_FALSE(k.Valid(4499)) << "lost is final";
  EXPECT_NE(loss.Reason().find("valid until 4500"), std::string::npos) << loss.Reason();
}

// A 3-member etcd loses its raft leader: the lease survives (no spurious loss) because some
// keepalive is answered by the new leader before the local deadline.
//
// That needs etcd to elect a new leader within TTL - margin - keepalive interval (1.5 s at the
// default TTL of 3 s). etcd's default election timeout (1 s, randomized up to 2 s) does not always
// fit: measured, 1 kill in 10 then ended in a (safe but spurious) local loss. Hence this
// cluster runs with a 500 ms election timeout, the setting a deployment with TTL 3 s needs too
// (or TTL >= 6 s with etcd's defaults).
TEST(LeaseKeeperClusterTest, SurvivesTheEtcdLeaderBeingKilled) {
  std::string error;
  auto etcd = EtcdCluster::Start(3, &error, {"--heartbeat-interval=100", "--election-timeout=500"});
  ASSERT_NE(etcd, nullptr) << error;
  auto client = Connect(etcd->endpoints());
  LossRecorder loss;
  LeaseKeeperOptions options;
  options.ttl_ms = 3000;
  options.on_lost = loss.Callback();
  auto keeper = LeaseKeeper::Start(client.get(), options);
  ASSERT_TRUE(keeper.ok()) << keeper.status().ToString();
  LeaseKeeper& k = *keeper.value();
  ASSERT_TRUE(client->Put("/k/survivor", "v", k.lease_id()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  int leader = etcd->LeaderIndex();
  ASSERT_GE(leader, 0);
  uint64_t killed_at = NowMs();
  etcd->member(leader).Kill();
  uint64_t min_margin = UINT64_MAX;  // closest the keeper came to its deadline
  while (NowMs() - killed_at < 6000) {
    uint64_t now = k.clock()();
    min_margin =
        std::min<uint64_t>(min_margin, k.ValidUntilMs() > now ? k.ValidUntilMs() - now : 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  spdlog::info("measured: etcd leader e{} killed; lease validity never below {} ms ahead", leader,
               min_margin);
  EXPECT_EQ(loss.count.load(), 0) << loss.Reason();
  EXPECT_TRUE(k.Valid());
  auto survivors = Connect({etcd->endpoint((leader + 1) % 3), etcd->endpoint((leader + 2) % 3)});
  StatusOr<std::optional<KeyValue>> kv = survivors->Get("/k/survivor");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_TRUE(kv.value().has_value());
}

}  // namespace
}  // namespace tandem::coord::testing
