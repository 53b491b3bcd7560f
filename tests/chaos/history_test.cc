// The chaos checks over made-up histories: each check passes a clean history and catches the
// violation it exists for.
#include "history.h"

#include <gtest/gtest.h>

namespace tandem::chaos {
namespace {

Op Put(const std::string& key, uint64_t invoke, uint64_t complete, const std::string& node = "n1",
       uint64_t epoch = 10, Outcome outcome = Outcome::kAcked) {
  Op op;
  op.kind = OpKind::kPut;
  op.key = key;
  op.invoke_ms = invoke;
  op.complete_ms = complete;
  op.outcome = outcome;
  if (outcome == Outcome::kAcked) {
    op.served_by = node;
    op.epoch = epoch;
  }
  return op;
}
Op Remove(const std::string& key, uint64_t invoke, uint64_t complete,
          const std::string& node = "n1", uint64_t epoch = 10) {
  Op op = Put(key, invoke, complete, node, epoch);
  op.kind = OpKind::kRemove;
  return op;
}
Op Read(const std::string& key, bool found, uint64_t invoke, const std::string& node = "n1",
        uint64_t epoch = 10) {
  Op op = Put(key, invoke, invoke + 1, node, epoch);
  op.kind = OpKind::kRead;
  op.found = found;
  return op;
}

// n1 leads in epoch 10 until 1000 (its kill at 900), n2 from 1500 in epoch 20.
CheckInput Base() {
  CheckInput in;
  in.terms = {{10, "n1", 0, 1000}, {20, "n2", 1500, 0}};
  in.fault_start_ms = 900;
  in.fault_end_ms = 1600;
  in.end_ms = 2000;
  in.ops = {Put("a", 100, 110),
            Put("b", 200, 210),
            Remove("b", 300, 310),
            Put("c", 1600, 1700, "n2", 20),
            Read("a", true, 1800, "n2", 20),
            Read("b", false, 1800, "n2", 20),
            Read("ghost-1", false, 1800, "n2", 20)};
  in.present_at_end = {"a", "c"};
  return in;
}

TEST(ChaosCheck, CleanHistoryHasNoViolations) {
  CheckReport r = Check(Base());
  EXPECT_TRUE(r.violations.empty()) << r.violations.front();
  EXPECT_EQ(r.acked_writes, 4u);
  EXPECT_EQ(r.reads, 3u);
  EXPECT_EQ(r.lost_acked, 0u);
  EXPECT_EQ(r.rto_ms, 1700u - 900u);  // fault start to the first ack after it
}

TEST(ChaosCheck, LostAcknowledgedWriteIsAViolationInSyncMode) {
  CheckInput in = Base();
  in.present_at_end.erase("a");
  CheckReport r = Check(in);
  EXPECT_EQ(r.lost_acked, 1u);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("lost acknowledged put 'a'"), std::string::npos);
}

TEST(ChaosCheck, AsyncModeAllowsOnlyTheLastMomentsBeforeTheFault) {
  CheckInput in = Base();
  in.sync_mode = false;
  in.ops.push_back(Put("late", 880, 890));  // 10 ms before the fault
  CheckReport r = Check(in);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.lost_acked, 1u);
  EXPECT_EQ(r.loss_window_ms, 10);
  in.present_at_end.erase("a");  // acked 790 ms before the fault: allowed with a 1 s window...
  EXPECT_TRUE(Check(in).violations.empty());
  in.async_loss_window_ms = 100;  // ...not with 100 ms
  EXPECT_EQ(Check(in).violations.size(), 1u);
}

TEST(ChaosCheck, AcknowledgedRemoveMustStayRemoved) {
  CheckInput in = Base();
  in.present_at_end.insert("b");
  CheckReport r = Check(in);
  EXPECT_EQ(r.lost_acked, 1u);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("removed key is back"), std::string::npos);
}

TEST(ChaosCheck, UnknownOutcomesMayBeLostWithoutAViolation) {
  CheckInput in = Base();
  in.ops.push_back(Put("maybe", 895, 2000, "", 0, Outcome::kUnknown));
  CheckReport r = Check(in);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.lost_unacked, 1u);
  EXPECT_EQ(r.unknown_writes, 1u);
}

TEST(ChaosCheck, TwoNodesAcknowledgingInOneEpochIsAViolation) {
  CheckInput in = Base();
  in.ops.push_back(Put("x", 400, 410, "n3", 10));
  in.present_at_end.insert("x");
  CheckReport r = Check(in);
  ASSERT_GE(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("epoch 10 acknowledged by two nodes"), std::string::npos);
}

TEST(ChaosCheck, AnEpochEtcdGaveToAnotherNodeIsAViolation) {
  CheckInput in = Base();
  in.ops = {Put("x", 400, 410, "n3", 20)};
  in.present_at_end = {"x"};
  CheckReport r = Check(in);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("etcd gave epoch 20 to n2"), std::string::npos);
}

TEST(ChaosCheck, AckAfterANewerTermBeganIsAViolation) {
  CheckInput in = Base();
  in.ops.push_back(Put("split", 1550, 1560, "n1", 10));  // n2's term was seen at 1500
  in.present_at_end.insert("split");
  CheckReport r = Check(in);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("after a newer term began"), std::string::npos);
}

TEST(ChaosCheck, AckAfterTheLeaseRanOutIsAViolationAckRightAfterTheKeyWentIsCounted) {
  CheckInput in = Base();
  in.terms = {{10, "n1", 0, 1000}, {20, "n2", 5000, 0}};
  in.lease_ttl_ms = 3000;
  in.ops = {Put("late", 4100, 4110, "n1", 10)};  // key gone at 1000, TTL over at 4000
  in.present_at_end = {"late"};
  CheckReport r = Check(in);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.violations[0].find("after its lease ran out"), std::string::npos);
  // Right after the key vanished (etcd revoked a lease its holder had just renewed): counted.
  in.ops = {Put("revoked", 1005, 1010, "n1", 10)};
  in.present_at_end = {"revoked"};
  r = Check(in);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.acks_after_key_gone, 1u);
  // Invoked before the end was seen: nothing to say.
  in.ops.back().invoke_ms = 990;
  r = Check(in);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.acks_after_key_gone, 0u);
}

TEST(ChaosCheck, AcksInEpochsThePollerMissedAreCountedNotFlagged) {
  CheckInput in = Base();
  in.ops.push_back(Put("y", 2000, 2010, "n3", 30));
  in.present_at_end.insert("y");
  CheckReport r = Check(in);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.unverified_acks, 1u);
}

TEST(ChaosCheck, AckWithoutNodeAndEpochIsAViolation) {
  CheckInput in = Base();
  in.ops.push_back(Put("anon", 2000, 2010, "", 0));
  in.present_at_end.insert("anon");
  EXPECT_EQ(Check(in).violations.size(), 1u);
}

TEST(ChaosCheck, PhantomAndStaleReadsAreViolations) {
  CheckInput in = Base();
  in.ops.push_back(Read("ghost-7", true, 1900, "n2", 20));
  EXPECT_NE(Check(in).violations.at(0).find("phantom"), std::string::npos);

  in = Base();
  in.ops.push_back(Read("b", true, 320, "n1", 10));  // after n1 acked the remove at 310
  EXPECT_NE(Check(in).violations.at(0).find("removed key read as present"), std::string::npos);

  in = Base();
  in.ops.push_back(Read("b", true, 305, "n1", 10));  // concurrent with the remove: fine
  EXPECT_TRUE(Check(in).violations.empty());

  in = Base();
  in.ops.push_back(Read("a", false, 500, "n1", 10));  // n1 acked "a" at 110
  EXPECT_NE(Check(in).violations.at(0).find("read as absent"), std::string::npos);
}

TEST(ChaosCheck, UnavailabilityIsTheLongestGapWithoutAnAck) {
  CheckInput in = Base();
  in.end_ms = 3000;
  in.ops.push_back(Put("d", 1710, 1720, "n2", 20));
  in.ops.push_back(Put("e", 2900, 2950, "n2", 20));
  in.present_at_end.insert({"d", "e"});
  EXPECT_EQ(Check(in).rto_ms, 2950u - 1720u);
  in.ops = {};
  EXPECT_EQ(Check(in).rto_ms, 3000u - 900u);  // nothing acked after the fault at all
}

}  // namespace
}  // namespace tandem::chaos
