// Full sync: new standbys behind a small window, restarts beyond it, diverged standbys, and a
// full sync racing with writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "harness.h"

namespace tandem::replication::testing {
namespace {

using ::testing::HasSubstr;

constexpr oplog::LogBufferOptions kTinyWindow{.max_bytes = 1 << 30, .max_entries = 16};

TEST(FullSyncTest, NewStandbyBehindTheWindowGetsAnImageThenTheLog) {
  PrimaryNode primary(1, kTinyWindow);
  RunWorkload(primary.store, 400, 21);  // far more objects than one image chunk (64)
  ASSERT_GT(primary.log.first_seq(), 1u);
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  FollowerStatus status = standby.follower->Status();
  EXPECT_EQ(status.full_syncs, 1u);
  EXPECT_EQ(status.state, FollowerState::kStreaming);
  StandbyStatus seen = primary.primary.Standbys()[0];
  EXPECT_EQ(seen.full_syncs, 1u);
  EXPECT_THAT(seen.last_sync_reason, HasSubstr("new standby"));

  // After the image it streams like any other standby (in steps the tiny window can hold:
  // a burst larger than the window would, correctly, cost another full sync).
  for (uint32_t round = 0; round < 20; ++round) {
    RunWorkload(primary.store, 4, 200 + round);
    ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  }
  EXPECT_EQ(standby.follower->Status().full_syncs, 1u);
  // Its window restarted after the image and is contiguous with its store.
  EXPECT_EQ(standby.log.last_seq(), standby.store.applied_seq());
}

TEST(FullSyncTest, StandbyRestartedBeyondTheWindowFullSyncsAgain) {
  PrimaryNode primary(1, kTinyWindow);
  RunWorkload(primary.store, 100, 23);
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  standby.StopFollower();
  const uint64_t stopped_at = standby.store.applied_seq();
  RunWorkload(primary.store, 200, 24);
  ASSERT_GT(primary.log.first_seq(), stopped_at + 1);

  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_EQ(standby.follower->Status().full_syncs, 1u);
  StandbyStatus seen = primary.primary.Standbys()[0];
  EXPECT_EQ(seen.full_syncs, 2u);
  EXPECT_THAT(seen.last_sync_reason,
              HasSubstr("seq " + std::to_string(stopped_at + 1) + " fell out of the oplog window"));
}

TEST(FullSyncTest, DivergedStandbyIsReplacedByThePrimarysState) {
  PrimaryNode primary(/*epoch=*/7);
  RunWorkload(primary.store, 300, 25);
  StandbyNode standby;
  // Entries of epoch 3, which this primary never had, at seqs the primary wrote in epoch 7.
  GiveOwnState(standby, /*epoch=*/3, 30);
  const uint64_t own_seq = standby.store.applied_seq();
  ASSERT_LT(standby.store.applied_seq(), primary.store.applied_seq());
  ASSERT_NE(standby.store.StateDigest(), primary.store.StateDigest());

  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_EQ(standby.follower->Status().full_syncs, 1u);
  EXPECT_THAT(primary.primary.Standbys()[0].last_sync_reason,
              HasSubstr("diverged: its seq " + std::to_string(own_seq) +
                        " was written in epoch 3, ours in epoch 7"));
  EXPECT_EQ(standby.store.applied_epoch(), 7u);
  EXPECT_EQ(standby.history.EpochOf(standby.store.applied_seq()), 7u);
}

TEST(FullSyncTest, StandbyAheadOfThePrimaryIsReplacedToo) {
  PrimaryNode primary(/*epoch=*/7);
  RunWorkload(primary.store, 20, 26);
  StandbyNode standby;
  GiveOwnState(standby, /*epoch=*/3, 200);  // more entries than the primary has
  ASSERT_GT(standby.store.applied_seq(), primary.store.applied_seq());
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_THAT(primary.primary.Standbys()[0].last_sync_reason, HasSubstr("beyond our last seq"));
}

TEST(FullSyncTest, FullSyncWhileWritesContinueConverges) {
  PrimaryNode primary(1, kTinyWindow);
  RunWorkload(primary.store, 300, 27);
  StandbyNode standby;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint32_t round = 0; !stop.load() && round < 50; ++round) {
      RunWorkload(primary.store, 20, 100 + round);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  standby.StartFollower(primary.address);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  writer.join();
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_GE(standby.follower->Status().full_syncs, 1u);
  EXPECT_EQ(standby.follower->Status().refused_entries, 0u);
}

}  // namespace
}  // namespace tandem::replication::testing
