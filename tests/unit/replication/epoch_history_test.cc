#include "replication/epoch_history.h"

#include <gtest/gtest.h>

namespace tandem::replication {
namespace {

// epoch 2: seqs 1-100, epoch 5: 101-250, epoch 9: 251-
void ThreeEpochs(EpochHistory& h) {
  EXPECT_TRUE(h.Begin(2, 1).ok());
  EXPECT_TRUE(h.Begin(5, 101).ok());
  EXPECT_TRUE(h.Begin(9, 251).ok());
}

TEST(EpochHistoryTest, EpochOfFindsTheTermThatWroteASeq) {
  EpochHistory h;
  ThreeEpochs(h);
  EXPECT_EQ(h.EpochOf(0), 0u);
  EXPECT_EQ(h.EpochOf(1), 2u);
  EXPECT_EQ(h.EpochOf(100), 2u);
  EXPECT_EQ(h.EpochOf(101), 5u);
  EXPECT_EQ(h.EpochOf(250), 5u);
  EXPECT_EQ(h.EpochOf(251), 9u);
  EXPECT_EQ(h.EpochOf(1000000), 9u);
  EXPECT_EQ(h.newest_epoch(), 9u);
}

TEST(EpochHistoryTest, StandbyOnOurHistoryIsAPrefix) {
  EpochHistory h;
  ThreeEpochs(h);
  EXPECT_TRUE(h.IsPrefix(2, 100, 300));
  EXPECT_TRUE(h.IsPrefix(5, 101, 300));
  EXPECT_TRUE(h.IsPrefix(9, 300, 300));  // exactly our end
}

TEST(EpochHistoryTest, StandbyWithEntriesOfAnotherTermDiverged) {
  EpochHistory h;
  ThreeEpochs(h);
  // It kept writing in epoch 2 past seq 100, where epoch 5 took over here.
  EXPECT_FALSE(h.IsPrefix(2, 120, 300));
  // An epoch we never had.
  EXPECT_FALSE(h.IsPrefix(7, 200, 300));
  // Beyond our end: it has entries we never had.
  EXPECT_FALSE(h.IsPrefix(9, 301, 300));
  // A non-empty log without an epoch cannot be matched.
  EXPECT_FALSE(h.IsPrefix(0, 10, 300));
}

TEST(EpochHistoryTest, EmptyStandbyIsAlwaysAPrefix) {
  EpochHistory h;
  ThreeEpochs(h);
  EXPECT_TRUE(h.IsPrefix(0, 0, 300));
  EpochHistory empty;
  EXPECT_TRUE(empty.IsPrefix(0, 0, 0));
  EXPECT_FALSE(empty.IsPrefix(1, 1, 10));  // we know nothing: cannot prove a prefix
}

TEST(EpochHistoryTest, BeginRejectsGoingBackAndIgnoresRepeats) {
  EpochHistory h;
  ThreeEpochs(h);
  EXPECT_TRUE(h.Begin(9, 400).ok());  // same epoch: a follower calls this per entry
  EXPECT_EQ(h.epochs().size(), 3u);
  EXPECT_EQ(h.Begin(4, 500).code(), ErrorCode::kInvalidState);
  EXPECT_EQ(h.Begin(10, 200).code(), ErrorCode::kInvalidState);
  EXPECT_EQ(h.newest_epoch(), 9u);
}

TEST(EpochHistoryTest, TermThatWroteNothingIsReplaced) {
  EpochHistory h;
  ThreeEpochs(h);
  ASSERT_TRUE(h.Begin(10, 300).ok());
  ASSERT_TRUE(h.Begin(11, 300).ok());  // epoch 10 ended before writing
  EXPECT_EQ(h.EpochOf(300), 11u);
  EXPECT_EQ(h.epochs().back(), (EpochHistory::Epoch{11, 300}));
  EXPECT_EQ(h.epochs().size(), 4u);
}

TEST(EpochHistoryTest, AfterAnImageOnlyTheImageOnwardIsKnown) {
  EpochHistory h;
  ThreeEpochs(h);
  h.ResetToImage(5, 200);
  EXPECT_EQ(h.EpochOf(199), 0u);
  EXPECT_EQ(h.EpochOf(200), 5u);
  EXPECT_FALSE(h.IsPrefix(5, 150, 300));  // unknown: a full sync, never a wrong "yes"
  EXPECT_TRUE(h.IsPrefix(5, 200, 300));
  ASSERT_TRUE(h.Begin(9, 251).ok());
  EXPECT_TRUE(h.IsPrefix(9, 260, 300));
  h.ResetToImage(0, 0);
  EXPECT_TRUE(h.epochs().empty());
}

}  // namespace
}  // namespace tandem::replication
