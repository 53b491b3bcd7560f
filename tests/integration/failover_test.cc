// Leadership through etcd (issue 4), end to end: a real etcd and real tandem-master processes on
// 127.0.0.1. Lease TTL 3 s (the default). Every wait is bounded; every process stopped by PID.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "failover_util.h"

namespace tandem::testing {
namespace {

constexpr int kTtlMs = 3000;

class FailoverTest : public ::testing::Test {
 protected:
  void StartCluster(std::vector<std::string> extra_args, int nodes = 3, int etcd_members = 1) {
    cluster_ = std::make_unique<EtcdTandemCluster>(dir_.path(), nodes, std::move(extra_args),
                                                   etcd_members);
    std::string error;
    ASSERT_TRUE(cluster_->Start(&error)) << error;
    leader_ = cluster_->WaitLeader(-1, 10000);
    ASSERT_GE(leader_, 0) << "no leader elected";
    // Space for the writers: a static segment (no owner, never expires).
    auto admin = ClientOf(cluster_->node(leader_).address());
    ASSERT_TRUE(admin->MountSegment(Segment{"", "pool", 0, 1ull << 40, "h:0"}).ok());
  }

  // A client of one node that never retries and never follows a redirect.
  static std::unique_ptr<Client> PinnedClient(const std::string& address,
                                              const std::string& client_id) {
    ClientOptions options;
    options.address = address;
    options.client_id = client_id;
    options.use_streams = false;
    options.timeout_ms = 20000;
    options.max_retry_ms = 0;
    return std::make_unique<Client>(options);
  }

  // Every acknowledged key is on the node at `index` (PutEnd'ed: ExistKey true).
  void ExpectAllPresent(int index, const std::vector<std::string>& keys) {
    auto client = ClientOf(cluster_->node(index).address(), "", false, 5000);
    std::vector<std::string> missing;
    for (size_t start = 0; start < keys.size(); start += 500) {
      std::vector<std::string> batch(
          keys.begin() + static_cast<long>(start),
          keys.begin() + static_cast<long>(std::min(start + 500, keys.size())));
      auto exists = client->BatchExistKey(batch);
      ASSERT_TRUE(exists.ok()) << exists.status().ToString();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!exists.value()[i].ok() || !exists.value()[i].value()) missing.push_back(batch[i]);
      }
    }
    EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged writes missing, first "
                                 << missing.front();
  }

  TempDir dir_{"tandem-failover-it"};
  std::unique_ptr<EtcdTandemCluster> cluster_;
  int leader_ = -1;
};

TEST_F(FailoverTest, KillPrimaryUnderLoadSyncModeLosesNoAcknowledgedWrite) {
  StartCluster({"--replication", "sync", "--replication-timeout-ms", "1000"});
  RecordingWriter writer(cluster_->ClientOptionsForCluster("w"), "k");
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= 100; }, 200));
  const uint64_t killed_at = SteadyMs();
  cluster_->node(leader_).Kill9();
  const int next = cluster_->WaitLeader(leader_, kTtlMs + 4000);
  const uint64_t elected_ms = SteadyMs() - killed_at;
  ASSERT_GE(next, 0) << "no new leader";
  // The bound of the issue is TTL + 1 s; the assertion leaves room for a loaded CI machine, the
  // benchmark (bench/failover.sh) reports the real distribution.
  EXPECT_LE(elected_ms, static_cast<uint64_t>(kTtlMs + 2500));
  const uint64_t acked_before = writer.acked();
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= acked_before + 100; }, 300))
      << "clients did not continue on the new leader";
  writer.Stop();
  RecordingWriter::Outcome outcome = writer.Result();
  ExpectAllPresent(next, outcome.acked);
  std::string detail;
  EXPECT_TRUE(cluster_->WaitConverged(10000, &detail)) << detail;
  std::cout << "[failover] kill -9: new leader after " << elected_ms << " ms; acked "
            << outcome.acked.size() << ", failed after retries " << outcome.failed.size()
            << std::endl;
}

TEST_F(FailoverTest, PausedPrimaryIsFencedAndRejoinsAsStandby) {
  StartCluster({});
  ReplNode& old_leader = cluster_->node(leader_);
  auto pinned = PinnedClient(old_leader.address(), "pinned");
  ASSERT_TRUE(pinned->MountSegment(Segment{"", "seg-p", 0, 1ull << 30, "h:1"}).ok());
  const uint64_t old_epoch = cluster_->Epoch(leader_);

  old_leader.Signal(SIGSTOP);
  // A write sent to the paused leader waits in its socket until it wakes up, long after its
  // lease ran out: it must not be acknowledged.
  std::atomic<bool> done{false};
  Status late = Status::Ok();
  std::thread late_writer([&] {
    late = pinned->PutStart("late-key", 1024).status();
    done = true;
  });
  const int next = cluster_->WaitLeader(leader_, kTtlMs + 6000);
  ASSERT_GE(next, 0);
  EXPECT_GT(cluster_->Epoch(next), old_epoch);
  old_leader.Signal(SIGCONT);
  late_writer.join();
  // Not acknowledged: refused (FENCED / NOT_LEADER), or cut off (UNAVAILABLE) while paused.
  EXPECT_FALSE(late.ok()) << "the deposed leader acknowledged a write after its lease ran out";
  // Right after waking up, it refuses writes by itself.
  Status woke = pinned->PutStart("woke-key", 1024).status();
  EXPECT_TRUE(woke.code() == ErrorCode::kFenced || woke.code() == ErrorCode::kNotLeader)
      << woke.ToString();
  // It rejoins as a standby of the new epoch and converges.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto status = old_leader.StatusJson();
        return status && (*status)["role"] == "follower" &&
               (*status)["leadership"]["leader_id"] == cluster_->node(next).node_id();
      },
      200))
      << old_leader.LogTail();
  auto via_new = ClientOf(cluster_->node(next).address(), "c2");
  ASSERT_TRUE(via_new->MountSegment(Segment{"", "seg-n", 0, 1ull << 30, "h:2"}).ok());
  ASSERT_TRUE(via_new->PutStart("after", 1024).ok());
  std::string detail;
  EXPECT_TRUE(cluster_->WaitConverged(10000, &detail)) << detail;
  for (const char* key : {"late-key", "woke-key"}) {
    auto exists = ClientOf(cluster_->node(next).address())->ExistKey(key);
    ASSERT_TRUE(exists.ok());
    EXPECT_FALSE(exists.value()) << key << ": the fenced write reached the new leader";
  }
}

TEST_F(FailoverTest, MoreAdvancedStandbyWins) {
  // n1 leads a new cluster (lowest id); n2 is paused so it falls behind, n3 stays current.
  StartCluster({});
  ASSERT_EQ(leader_, 0);
  auto client = ClientOf(cluster_->node(0).address(), "c");
  ASSERT_TRUE(client->MountSegment(Segment{"", "seg", 0, 1ull << 30, "h:1"}).ok());
  std::string detail;
  ASSERT_TRUE(cluster_->WaitConverged(5000, &detail)) << detail;
  cluster_->node(1).Signal(SIGSTOP);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(client->PutStart("k" + std::to_string(i), 64).ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto status = cluster_->node(2).StatusJson();
    return status && (*status)["applied_seq"] == cluster_->node(0).StatusJson()->at("applied_seq");
  }));
  cluster_->node(0).Kill9();
  cluster_->node(1).Signal(SIGCONT);  // alive and eligible again, but 50 entries behind
  const int next = cluster_->WaitLeader(0, kTtlMs + 6000);
  ASSERT_EQ(next, 2) << "the lagging standby won";
  auto exists = ClientOf(cluster_->node(2).address())->ExistKey("k49");
  ASSERT_TRUE(exists.ok());
  EXPECT_TRUE(exists.value());
  EXPECT_TRUE(cluster_->WaitConverged(10000, &detail)) << detail;
}

TEST_F(FailoverTest, PlannedSwitchoverUnderLoadFailsNoRequest) {
  StartCluster({});
  RecordingWriter writer(cluster_->ClientOptionsForCluster("w"), "s");
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= 100; }, 200));
  auto admin = std::make_unique<Client>(cluster_->ClientOptionsForCluster());
  const uint64_t started = SteadyMs();
  auto handed = admin->Handover("", 2000);
  ASSERT_TRUE(handed.ok()) << handed.status().ToString();
  const int next = cluster_->WaitLeader(leader_, 3000);
  const uint64_t switch_ms = SteadyMs() - started;
  ASSERT_GE(next, 0);
  EXPECT_EQ(cluster_->node(next).node_id(), handed.value());
  const uint64_t acked_before = writer.acked();
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= acked_before + 100; }, 300));
  // Then SIGTERM on the new leader: another handover.
  const uint64_t term_at = SteadyMs();
  cluster_->node(next).Stop();
  const int third = cluster_->WaitLeader(next, 5000);
  ASSERT_GE(third, 0);
  const uint64_t term_ms = SteadyMs() - term_at;
  const uint64_t acked_mid = writer.acked();
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= acked_mid + 100; }, 300));
  writer.Stop();
  RecordingWriter::Outcome outcome = writer.Result();
  EXPECT_TRUE(outcome.failed.empty())
      << outcome.failed.size() << " requests failed, first: " << outcome.errors.front();
  ExpectAllPresent(third, outcome.acked);
  std::cout << "[failover] switchover by RPC " << switch_ms << " ms, by SIGTERM " << term_ms
            << " ms (stop included); acked " << outcome.acked.size() << std::endl;
}

TEST_F(FailoverTest, EtcdLeaderChangeCausesNoFailoverButPrimaryDeathDoes) {
  // Keepalives stall while etcd elects a new raft leader. At TTL 3 s the lease survives an
  // election shorter than TTL - margin - keepalive interval = 1.5 s, which holds on an idle box
  // (this test passed at TTL 3 s in repeated runs) but not always on a CI machine running tests
  // in parallel (one spurious, safe step-down seen). The property under test is "no failover
  // while the primary is healthy", so this test uses the TTL an operator would pick for a busy
  // etcd: 5 s (docs/decisions.md: "etcd timing").
  constexpr int kTtlMs = 5000;
  StartCluster({"--lease-ttl-ms", "5000"}, 3, /*etcd_members=*/3);
  const uint64_t epoch = cluster_->Epoch(leader_);
  RecordingWriter writer(cluster_->ClientOptionsForCluster("w"), "e");
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= 50; }, 200));
  const int etcd_leader = cluster_->etcd().LeaderIndex();
  ASSERT_GE(etcd_leader, 0);
  cluster_->etcd().member(static_cast<size_t>(etcd_leader))->Signal(SIGKILL);
  // Well past a TTL: the same node still leads in the same epoch.
  std::this_thread::sleep_for(std::chrono::milliseconds(kTtlMs + 1500));
  EXPECT_EQ(cluster_->Leader(), leader_);
  EXPECT_EQ(cluster_->Epoch(leader_), epoch);
  auto status = cluster_->node(leader_).StatusJson();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["leadership"]["step_downs"], 0) << status->dump();
  const uint64_t acked_before = writer.acked();
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= acked_before + 50; }, 200));
  // Now the primary dies: with two etcd members left, a standby takes over.
  cluster_->node(leader_).Kill9();
  const int next = cluster_->WaitLeader(leader_, kTtlMs + 6000);
  ASSERT_GE(next, 0);
  const uint64_t acked_after = writer.acked();
  ASSERT_TRUE(WaitUntil([&] { return writer.acked() >= acked_after + 50; }, 300));
  writer.Stop();
}

TEST_F(FailoverTest, EtcdRestartCausesNoFailover) {
  StartCluster({});
  const uint64_t epoch = cluster_->Epoch(leader_);
  std::string error;
  ASSERT_TRUE(cluster_->etcd().Restart(0, &error)) << error;
  std::this_thread::sleep_for(std::chrono::milliseconds(kTtlMs + 1000));
  EXPECT_EQ(cluster_->Leader(), leader_);
  EXPECT_EQ(cluster_->Epoch(leader_), epoch);
  auto client = ClientOf(cluster_->node(leader_).address(), "c");
  EXPECT_TRUE(client->MountSegment(Segment{"", "seg", 0, 1ull << 30, "h:1"}).ok());
}

// Issue 5 with etcd: every node killed, all restarted on their data dirs. They recover their
// state from snapshot + WAL, nobody is "caught up" with a live leader, so after the grace period
// the most advanced recovered node is elected; nothing acknowledged (fsync always) is lost.
TEST_F(FailoverTest, ColdStartOfTheWholeClusterElectsTheMostAdvancedNode) {
  StartCluster({"--wal-fsync", "always"});
  const int early = (leader_ + 1) % 3;  // a standby that dies first and misses the last writes
  const int other = (leader_ + 2) % 3;
  auto client = ClientOf(cluster_->node(leader_).address(), "c", false, 5000);
  std::vector<std::string> acked;
  for (int i = 0; i < 40; ++i) {
    const std::string key = "a" + std::to_string(i);
    ASSERT_TRUE(client->PutStart(key, 64).ok());
    ASSERT_TRUE(client->PutEnd(key).ok());
    acked.push_back(key);
  }
  std::string detail;
  ASSERT_TRUE(cluster_->WaitConverged(5000, &detail)) << detail;
  cluster_->node(early).Kill9();
  for (int i = 0; i < 40; ++i) {
    const std::string key = "b" + std::to_string(i);
    ASSERT_TRUE(client->PutStart(key, 64).ok());
    ASSERT_TRUE(client->PutEnd(key).ok());
    acked.push_back(key);
  }
  ASSERT_TRUE(WaitUntil([&] {
    auto l = cluster_->node(leader_).StatusJson();
    auto o = cluster_->node(other).StatusJson();
    return l && o && (*l)["applied_seq"] == (*o)["applied_seq"];
  }));
  cluster_->node(leader_).Kill9();
  cluster_->node(other).Kill9();
  std::string error;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster_->node(i).Start(&error, /*keep_data=*/true)) << error;
  }
  // Claiming the member ids waits for the killed leases (<= TTL), then the grace period (5 s).
  const int next = cluster_->WaitLeader(-1, 20000);
  ASSERT_GE(next, 0) << cluster_->node(0).LogTail();
  EXPECT_NE(next, early) << "the node that missed the last writes was elected";
  ExpectAllPresent(next, acked);
  EXPECT_TRUE(cluster_->WaitConverged(15000, &detail)) << detail;
}

class FailoverBadInputTest : public ::testing::Test {
 protected:
  TempDir dir_{"tandem-failover-bad"};
};

TEST_F(FailoverBadInputTest, UnreachableEtcdFailsClearly) {
  const int dead_port = PickFreePort();
  CommandResult r = RunCommand(
      TANDEM_MASTER_BIN,
      {"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", dir_.path() + "/d",
       "--etcd-endpoints", "127.0.0.1:" + std::to_string(dead_port), "--cluster-id", "c"},
      std::chrono::milliseconds(20000));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("etcd"), std::string::npos) << r.out << r.err;
}

TEST_F(FailoverBadInputTest, BadClusterIdAndEndpointsAreRejected) {
  CommandResult r =
      RunCommand(TANDEM_MASTER_BIN, {"--data-dir", dir_.path() + "/d", "--etcd-endpoints",
                                     "127.0.0.1:2379", "--cluster-id", "bad/id"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cluster-id"), std::string::npos) << r.err;
  r = RunCommand(TANDEM_MASTER_BIN,
                 {"--data-dir", dir_.path() + "/d", "--etcd-endpoints", "nonsense"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("etcd-endpoints"), std::string::npos) << r.err;
  r = RunCommand(TANDEM_MASTER_BIN, {"--data-dir", dir_.path() + "/d", "--etcd-endpoints",
                                     "127.0.0.1:2379", "--role", "primary"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--role"), std::string::npos) << r.err;
}

TEST_F(FailoverBadInputTest, DuplicateNodeIdIsRefused) {
  EtcdCluster etcd(1);
  std::string error;
  ASSERT_TRUE(etcd.Start(&error)) << error;
  std::vector<std::string> args = {"--cluster-id", "dup", "--etcd-endpoints", etcd.Endpoints()};
  ReplNode first(TANDEM_MASTER_BIN, dir_.path(), "same", args);
  ASSERT_TRUE(first.Start(&error)) << error;
  std::vector<std::string> second_args = {"--listen",    "127.0.0.1:0", "--http",
                                          "127.0.0.1:0", "--data-dir",  dir_.path() + "/second",
                                          "--node-id",   "same"};
  second_args.insert(second_args.end(), args.begin(), args.end());
  CommandResult r = RunCommand(TANDEM_MASTER_BIN, second_args, std::chrono::milliseconds(30000));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("already in use"), std::string::npos) << r.out << r.err;
  EXPECT_TRUE(first.Running());
}

}  // namespace
}  // namespace tandem::testing
