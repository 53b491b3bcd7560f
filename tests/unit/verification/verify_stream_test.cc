// Sampled verification end to end, in one process: a primary and a standby over real gRPC on
// 127.0.0.1 (tests/unit/replication/harness.h), the standby's StandbyVerifier, divergence
// injected on the standby through the store's repair methods (the test-only fault hook of the
// master uses the same path).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "replication/clock.h"
#include "replication/harness.h"
#include "verification/verifier.h"

namespace tandem::verification {
namespace {

using replication::testing::Converged;
using replication::testing::kCluster;
using replication::testing::PrimaryNode;
using replication::testing::RunWorkload;
using replication::testing::StandbyNode;
using replication::testing::WaitFor;

struct Fixture {
  explicit Fixture(VerifierOptions options = {}) {
    standby.StartFollower(primary.address);
    options.cluster_id = kCluster;
    options.node_id = standby.node_id;
    options.interval_s = 0;
    verifier = std::make_unique<StandbyVerifier>(
        options, &standby.store, [this] { return primary_address; },
        [this](const std::string& why) { standby.follower->RequestFullSync(why); },
        replication::WallClockMs);
    primary_address = primary.address;
  }
  ~Fixture() {
    verifier.reset();
    standby.StopFollower();
  }
  bool Converge() {
    return WaitFor([&] { return Converged(primary, standby); });
  }

  PrimaryNode primary;
  StandbyNode standby;
  std::string primary_address;
  std::unique_ptr<StandbyVerifier> verifier;
};

// Divergence kinds, on the standby only.
void ChangeReplica(meta::MetaStore& store, const std::string& key) {
  uint64_t sum = 0;
  auto rec = store.GetObjectRecord(key, &sum);
  ASSERT_TRUE(rec.has_value());
  rec->mutable_replicas(0)->set_offset((1ull << 30) - 2 * rec->value_size());
  ASSERT_TRUE(store.RepairUpsert(*rec, sum, replication::WallClockMs()).ok());
}
void DropKey(meta::MetaStore& store, const std::string& key) {
  ASSERT_TRUE(store.RepairDelete(key, store.KeyChecksumOf(key)).ok());
}
void AddKey(meta::MetaStore& store, const std::string& key) {
  tandem::v1::ObjectRecord rec;
  rec.set_key(key);
  rec.set_value_size(512);
  rec.set_complete(true);
  auto* r = rec.add_replicas();
  r->set_segment_handle(1);
  r->set_offset((1ull << 30) - 100 * 1024);
  r->set_size(512);
  ASSERT_TRUE(store.RepairUpsert(rec, std::nullopt, replication::WallClockMs()).ok());
}

std::vector<std::string> SomeKeys(const meta::MetaStore& store, size_t n) {
  std::vector<std::string> keys;
  store.ForEachObject([&](const meta::ObjectInfo& o) {
    if (keys.size() < n && o.state == meta::ReplicaState::kComplete) keys.push_back(o.key);
  });
  return keys;
}

TEST(VerifyStream, CleanStandbyIsOk) {
  Fixture f;
  RunWorkload(f.primary.store, 500, 1);
  ASSERT_TRUE(f.Converge());
  PassResult r = f.verifier->RunPass(true);
  EXPECT_EQ(r.status, PassStatus::kOk) << r.message;
  EXPECT_EQ(r.shards, 1024u);
  EXPECT_EQ(r.keys_checked, f.primary.store.GetStats().object_count);
  EXPECT_EQ(r.mismatches, 0u);
}

TEST(VerifyStream, EachDivergenceKindIsFoundRepairedAndCounted) {
  Fixture f;
  RunWorkload(f.primary.store, 500, 2);
  ASSERT_TRUE(f.Converge());
  auto keys = SomeKeys(f.standby.store, 2);
  ASSERT_EQ(keys.size(), 2u);
  ChangeReplica(f.standby.store, keys[0]);
  DropKey(f.standby.store, keys[1]);
  AddKey(f.standby.store, "only-on-standby");
  ASSERT_NE(f.standby.store.StateDigest(), f.primary.store.StateDigest());
  PassResult r = f.verifier->RunPass(true);
  EXPECT_EQ(r.status, PassStatus::kRepaired) << r.message;
  EXPECT_EQ(r.mismatches, 3u);
  EXPECT_EQ(r.repairs, 3u);
  EXPECT_EQ(f.standby.store.StateDigest(), f.primary.store.StateDigest());
  VerifierStats s = f.verifier->Stats();
  EXPECT_EQ(s.repairs, 3u);
  EXPECT_EQ(s.mismatches, 3u);
  EXPECT_EQ(s.rounds, 1u);
  // The standby keeps replicating normally afterwards.
  RunWorkload(f.primary.store, 100, 3);
  ASSERT_TRUE(f.Converge());
  EXPECT_EQ(f.verifier->RunPass(true).status, PassStatus::kOk);
}

TEST(VerifyStream, MoreThanMaxRepairsForcesAFullSync) {
  VerifierOptions o;
  o.max_repairs = 3;
  Fixture f(o);
  RunWorkload(f.primary.store, 500, 4);
  ASSERT_TRUE(f.Converge());
  for (const std::string& k : SomeKeys(f.standby.store, 8)) DropKey(f.standby.store, k);
  const uint64_t full_syncs = f.standby.follower->Status().full_syncs;
  PassResult r = f.verifier->RunPass(true);
  EXPECT_EQ(r.status, PassStatus::kFullSync);
  EXPECT_EQ(f.verifier->Stats().full_syncs, 1u);
  // The follower reconnects presenting an empty log: an image, or (the primary's window still
  // starts at seq 1) the whole log replayed onto an emptied store; either way it ends equal.
  ASSERT_TRUE(f.Converge());
  (void)full_syncs;
  EXPECT_EQ(f.verifier->RunPass(true).status, PassStatus::kOk);
}

TEST(VerifyStream, DigestEntryPointsTheSampledPassAtTheDivergentShard) {
  VerifierOptions o;
  o.sample_ratio = 0.001;  // one shard per round: without the digest it would likely miss
  Fixture f(o);
  RunWorkload(f.primary.store, 500, 5);
  ASSERT_TRUE(f.Converge());
  auto keys = SomeKeys(f.standby.store, 1);
  ChangeReplica(f.standby.store, keys[0]);
  ASSERT_TRUE(f.primary.store.AppendDigest(replication::WallClockMs()).ok());
  ASSERT_TRUE(
      WaitFor([&] { return f.standby.store.applied_seq() == f.primary.store.applied_seq(); }));
  EXPECT_EQ(f.standby.store.GetDigestCheckStats().mismatched_shards, 1u);
  PassResult r = f.verifier->RunPass(false);
  EXPECT_EQ(r.status, PassStatus::kRepaired) << r.message;
  EXPECT_EQ(r.repairs, 1u);
  EXPECT_EQ(f.standby.store.StateDigest(), f.primary.store.StateDigest());
  // Another DIGEST entry now matches everywhere.
  ASSERT_TRUE(f.primary.store.AppendDigest(replication::WallClockMs()).ok());
  ASSERT_TRUE(f.Converge());
  EXPECT_TRUE(f.standby.store.TakeDigestMismatches().empty());
}

TEST(VerifyStream, NoFalseMismatchUnderConcurrentWrites) {
  VerifierOptions o;
  o.sample_ratio = 0.25;
  Fixture f(o);
  RunWorkload(f.primary.store, 200, 6);
  ASSERT_TRUE(f.Converge());
  std::atomic<bool> stop{false};
  // Heavy but followable: an unpaced writer on a loaded 2-core box outruns the standby, and
  // then passes are (rightly) skipped as "behind" instead of comparing anything.
  std::thread writer([&] {
    for (uint32_t seed = 100; seed < 100000 && !stop.load(); ++seed) {
      RunWorkload(f.primary.store, 50, seed);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  uint64_t checked = 0;
  for (int pass = 0; pass < 12; ++pass) {
    PassResult r = f.verifier->RunPass(pass % 3 == 0);
    EXPECT_EQ(r.mismatches, 0u) << "pass " << pass << ": " << r.message;
    EXPECT_NE(r.status, PassStatus::kError) << r.message;
    EXPECT_NE(r.status, PassStatus::kFullSync) << r.message;
    checked += r.keys_checked;
    if (pass % 4 == 0) {
      ASSERT_TRUE(f.primary.store.AppendDigest(replication::WallClockMs()).ok());
    }
  }
  stop = true;
  writer.join();
  ASSERT_TRUE(f.Converge());
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(f.verifier->Stats().repairs, 0u);
  EXPECT_EQ(f.standby.store.GetDigestCheckStats().mismatched_shards, 0u);
}

// A standby too far behind that cannot catch up (its follower is stopped) gets the full sync.
TEST(VerifyStream, StuckStandbyFarBehindIsFullSynced) {
  PrimaryNode primary;
  StandbyNode standby;
  standby.StartFollower(primary.address);
  RunWorkload(primary.store, 100, 7);
  ASSERT_TRUE(WaitFor([&] { return Converged(primary, standby); }));
  standby.StopFollower();
  RunWorkload(primary.store, 1500, 8);
  ASSERT_GT(primary.store.applied_seq() - standby.store.applied_seq(), 1000u);
  std::string asked;
  VerifierOptions o;
  o.cluster_id = kCluster;
  o.node_id = standby.node_id;
  o.interval_s = 0;
  o.catch_up_timeout_ms = 200;
  StandbyVerifier v(
      o, &standby.store, [&] { return primary.address; },
      [&](const std::string& why) { asked = why; }, replication::WallClockMs);
  PassResult r = v.RunPass(false);
  EXPECT_EQ(r.status, PassStatus::kFullSync) << r.message;
  EXPECT_NE(r.message.find("entries behind"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("did not reach"), std::string::npos) << r.message;
  EXPECT_NE(asked.find("did not reach"), std::string::npos) << asked;
  EXPECT_EQ(v.Stats().full_syncs, 1u);
}

// Far behind but catching up (the follower resumes while the verifier waits): no full sync.
// With one attempt the pass is skipped as kBehind; with more, the retry compares normally.
TEST(VerifyStream, StandbyThatCatchesUpIsNotFullSynced) {
  for (uint32_t attempts : {1u, 3u}) {
    SCOPED_TRACE("catch_up_attempts " + std::to_string(attempts));
    PrimaryNode primary;
    StandbyNode standby;
    standby.StartFollower(primary.address);
    RunWorkload(primary.store, 100, 9);
    ASSERT_TRUE(WaitFor([&] { return Converged(primary, standby); }));
    standby.StopFollower();
    RunWorkload(primary.store, 1500, 10);
    bool asked = false;
    VerifierOptions o;
    o.cluster_id = kCluster;
    o.node_id = standby.node_id;
    o.interval_s = 0;
    o.catch_up_timeout_ms = 10000;
    o.catch_up_attempts = attempts;
    StandbyVerifier v(
        o, &standby.store, [&] { return primary.address; },
        [&](const std::string&) { asked = true; }, replication::WallClockMs);
    std::thread resume([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      standby.StartFollower(primary.address);
    });
    PassResult r = v.RunPass(true);
    resume.join();
    EXPECT_FALSE(asked);
    EXPECT_EQ(v.Stats().full_syncs, 0u);
    if (attempts == 1) {
      EXPECT_EQ(r.status, PassStatus::kBehind) << r.message;
      EXPECT_EQ(r.keys_checked, 0u);
      EXPECT_EQ(v.Stats().behind, 1u);
    } else {
      EXPECT_EQ(r.status, PassStatus::kOk) << r.message;
      EXPECT_EQ(r.keys_checked, primary.store.GetStats().object_count);
    }
    ASSERT_TRUE(WaitFor([&] { return Converged(primary, standby); }));
    standby.StopFollower();
  }
}

TEST(VerifyStream, VerifyingAgainstANonPrimaryIsAClearError) {
  Fixture f;
  PrimaryNode not_serving(1, {}, "p2");
  not_serving.primary.SetServing(false, 1, "elsewhere:1");
  f.primary_address = not_serving.address;
  PassResult r = f.verifier->RunPass(false);
  EXPECT_EQ(r.status, PassStatus::kError);
  EXPECT_NE(r.message.find("not a primary"), std::string::npos) << r.message;
  EXPECT_EQ(f.verifier->Stats().errors, 1u);
}

TEST(VerifyStream, ClusterMismatchIsRefused) {
  Fixture f;
  VerifierOptions o;
  o.cluster_id = "other";
  o.node_id = "s9";
  StandbyVerifier v(
      o, &f.standby.store, [&] { return f.primary.address; }, nullptr, nullptr);
  PassResult r = v.RunPass(false);
  EXPECT_EQ(r.status, PassStatus::kError);
  EXPECT_NE(r.message.find("cluster id mismatch"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace tandem::verification
