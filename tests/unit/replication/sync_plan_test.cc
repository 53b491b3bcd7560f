#include "replication/sync_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::replication {
namespace {

using ::testing::HasSubstr;

tandem::v1::SyncHello Hello(std::string cluster, std::string id) {
  tandem::v1::SyncHello hello;
  hello.set_cluster_id(std::move(cluster));
  hello.set_standby_id(std::move(id));
  return hello;
}

TEST(CheckHelloTest, AcceptsAStandbyOfOurClusterWhileServing) {
  EXPECT_EQ(CheckHello(Hello("c1", "s2"), "c1", "n1", true, ""), "");
}

TEST(CheckHelloTest, RefusalsSayWhy) {
  EXPECT_THAT(CheckHello(Hello("other", "s2"), "c1", "n1", true, ""),
              HasSubstr("cluster id mismatch"));
  EXPECT_THAT(CheckHello(Hello("c1", "n1"), "c1", "n1", true, ""), HasSubstr("own id"));
  const std::string not_primary = CheckHello(Hello("c1", "s2"), "c1", "n1", false, "n3@h:7001");
  EXPECT_THAT(not_primary, HasSubstr("not a primary"));
  EXPECT_THAT(not_primary, HasSubstr("n3@h:7001"));
}

class PlanSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(history_.Begin(1, 1).ok());
    ASSERT_TRUE(history_.Begin(4, 1001).ok());
  }
  EpochHistory history_;  // epoch 1: 1-1000, epoch 4: 1001-
};

TEST_F(PlanSyncTest, InsideTheWindowResumesIncrementally) {
  SyncPlan plan = PlanSync(4, 1500, 2000, 900, 2000, history_);
  EXPECT_FALSE(plan.full_sync);
  EXPECT_THAT(plan.reason, HasSubstr("resumes"));
  EXPECT_FALSE(PlanSync(1, 899, 2000, 900, 2000, history_).full_sync);  // edge: 900 is next
}

TEST_F(PlanSyncTest, UpToDateNeedsNothingEvenWithAnEmptyWindow) {
  EXPECT_FALSE(PlanSync(4, 2000, 2000, 0, 0, history_).full_sync);
}

TEST_F(PlanSyncTest, OutOfTheWindowNeedsAFullSync) {
  SyncPlan plan = PlanSync(1, 5, 2000, 900, 2000, history_);
  EXPECT_TRUE(plan.full_sync);
  EXPECT_THAT(plan.reason, HasSubstr("seq 6 fell out of the oplog window"));
  EXPECT_THAT(plan.reason, HasSubstr("[900, 2000]"));
}

TEST_F(PlanSyncTest, NewStandbyIsIncrementalOnlyWhileSeqOneIsInTheWindow) {
  EXPECT_FALSE(PlanSync(0, 0, 2000, 1, 2000, history_).full_sync);
  SyncPlan plan = PlanSync(0, 0, 2000, 900, 2000, history_);
  EXPECT_TRUE(plan.full_sync);
  EXPECT_THAT(plan.reason, HasSubstr("new standby"));
}

TEST_F(PlanSyncTest, DivergedStandbyNeedsAFullSyncEvenInsideTheWindow) {
  SyncPlan plan = PlanSync(1, 1200, 2000, 900, 2000, history_);
  EXPECT_TRUE(plan.full_sync);
  EXPECT_THAT(plan.reason, HasSubstr("diverged"));
  EXPECT_THAT(plan.reason, HasSubstr("epoch 1, ours in epoch 4"));
  SyncPlan ahead = PlanSync(4, 2100, 2000, 900, 2000, history_);
  EXPECT_TRUE(ahead.full_sync);
  EXPECT_THAT(ahead.reason, HasSubstr("beyond our last seq 2000"));
}

// ---- StoredImageJoinsLog: may a full sync stream a snapshot at seq S plus the log after it ----

TEST_F(PlanSyncTest, StoredImageServesWhenTheWindowHoldsEverythingAfterIt) {
  EXPECT_EQ(StoredImageJoinsLog(4, 1500, 2000, 900, 2000, history_), "");
  EXPECT_EQ(StoredImageJoinsLog(4, 1500, 2000, 1501, 2000, history_), "");  // edge: S+1 first
  EXPECT_EQ(StoredImageJoinsLog(1, 950, 2000, 900, 2000, history_), "");    // an older epoch
  // At our last seq nothing has to follow, even with an empty window.
  EXPECT_EQ(StoredImageJoinsLog(4, 2000, 2000, 0, 0, history_), "");
  EXPECT_EQ(StoredImageJoinsLog(4, 2000, 2000, 1900, 2000, history_), "");
}

TEST_F(PlanSyncTest, StoredImageOlderThanTheWindowCannotServe) {
  EXPECT_THAT(StoredImageJoinsLog(4, 1500, 2000, 1502, 2000, history_),
              HasSubstr("not all in the window"));
  EXPECT_THAT(StoredImageJoinsLog(4, 1500, 2000, 0, 0, history_), HasSubstr("window is empty"));
  // The window must reach our last seq too.
  EXPECT_THAT(StoredImageJoinsLog(4, 1500, 2000, 900, 1999, history_),
              HasSubstr("not all in the window"));
}

TEST_F(PlanSyncTest, StoredImageOfAnotherHistoryCannotServe) {
  // Past our last seq (a deposed leader's), or written in another epoch than ours at that seq.
  EXPECT_THAT(StoredImageJoinsLog(4, 2100, 2000, 900, 2000, history_),
              HasSubstr("past our last seq 2000"));
  EXPECT_THAT(StoredImageJoinsLog(3, 1500, 2000, 900, 2000, history_),
              HasSubstr("written in epoch 3, ours in epoch 4"));
  EpochHistory after_image;
  after_image.ResetToImage(4, 1400);  // we only know seq 1400 on
  EXPECT_THAT(StoredImageJoinsLog(4, 1300, 2000, 900, 2000, after_image),
              HasSubstr("does not reach"));
  EXPECT_EQ(StoredImageJoinsLog(4, 1400, 2000, 900, 2000, after_image), "");
  EXPECT_THAT(StoredImageJoinsLog(0, 0, 2000, 1, 2000, history_), HasSubstr("seq 0"));
}

}  // namespace
}  // namespace tandem::replication
