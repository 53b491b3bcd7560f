#include "replication/ack_waiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>

namespace tandem::replication {
namespace {

// A waiter's outcome, recorded by its done callback.
struct Outcome {
  std::optional<Status> status;
  AckWaiter::Done Callback() {
    return [this](Status s) { status = std::move(s); };
  }
  bool done() const { return status.has_value(); }
};

class AckWaiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<AckWaiter> Make(AckWaiterOptions options) {
    return std::make_unique<AckWaiter>(options, [this] { return now_.load(); });
  }
  std::atomic<uint64_t> now_{1000};
};

TEST_F(AckWaiterTest, OneAckReleasesEveryWaiterAtOrBelowIt) {
  auto waiter = Make({});
  Outcome a, b, c;
  waiter->WaitForAcks(10, a.Callback());
  waiter->WaitForAcks(12, b.Callback());
  waiter->WaitForAcks(15, c.Callback());
  waiter->OnAck("s1", 12);
  ASSERT_TRUE(a.done() && b.done());
  EXPECT_TRUE(a.status->ok());
  EXPECT_TRUE(b.status->ok());
  EXPECT_FALSE(c.done());
  EXPECT_EQ(waiter->Stats().pending, 1u);
  waiter->OnAck("s1", 20);
  ASSERT_TRUE(c.done());
  EXPECT_TRUE(c.status->ok());
  Outcome late;
  waiter->WaitForAcks(18, late.Callback());  // already acknowledged: completes at once
  EXPECT_TRUE(late.done());
  EXPECT_EQ(waiter->Stats().waits, 4u);
}

TEST_F(AckWaiterTest, MinSyncAcksTwoNeedsTwoDistinctStandbys) {
  auto waiter = Make({.min_sync_acks = 2});
  Outcome w;
  waiter->WaitForAcks(10, w.Callback());
  waiter->OnAck("s1", 50);
  waiter->OnAck("s1", 60);  // the same standby again does not count twice
  EXPECT_FALSE(w.done());
  waiter->OnAck("s2", 9);
  EXPECT_FALSE(w.done());
  waiter->OnAck("s2", 10);
  ASSERT_TRUE(w.done());
  EXPECT_TRUE(w.status->ok());
  EXPECT_EQ(waiter->Stats().quorum_seq, 10u);  // the 2nd highest of {60, 10}
}

TEST_F(AckWaiterTest, TimeoutFailsWithReplicationTimeout) {
  auto waiter = Make({.replication_timeout_ms = 1000});
  Outcome early, later;
  waiter->WaitForAcks(10, early.Callback());
  now_ += 500;
  waiter->WaitForAcks(11, later.Callback());
  now_ += 499;
  waiter->Tick();
  EXPECT_FALSE(early.done());
  now_ += 1;
  waiter->Tick();
  ASSERT_TRUE(early.done());
  EXPECT_EQ(early.status->code(), ErrorCode::kReplicationTimeout);
  EXPECT_FALSE(later.done());
  waiter->OnAck("s1", 11);  // the other one is still released by an ack
  ASSERT_TRUE(later.done());
  EXPECT_TRUE(later.status->ok());
  EXPECT_EQ(waiter->Stats().timeouts, 1u);
  EXPECT_FALSE(waiter->degraded());
}

TEST_F(AckWaiterTest, DegradeModeCompletesOkAndStopsWaitingUntilCaughtUp) {
  Outcome a, b, async, sync_again;  // outlive the waiter, which fails pending ones on exit
  auto waiter = Make({.replication_timeout_ms = 100, .sync_fallback = SyncFallback::kDegrade});
  waiter->WaitForAcks(10, a.Callback());
  waiter->WaitForAcks(11, b.Callback());
  now_ += 100;
  waiter->Tick();
  ASSERT_TRUE(a.done() && b.done());
  EXPECT_TRUE(a.status->ok());
  EXPECT_TRUE(b.status->ok());  // everyone pending stops waiting, not only the expired one
  EXPECT_TRUE(waiter->degraded());
  EXPECT_EQ(waiter->Stats().degraded, 1u);

  waiter->WaitForAcks(20, async.Callback());  // degraded: no waiting at all
  ASSERT_TRUE(async.done());
  EXPECT_TRUE(async.status->ok());

  waiter->OnAck("s1", 15);  // not yet caught up with seq 20
  EXPECT_TRUE(waiter->degraded());
  waiter->OnAck("s1", 20);
  EXPECT_FALSE(waiter->degraded());
  waiter->WaitForAcks(21, sync_again.Callback());
  EXPECT_FALSE(sync_again.done());
  EXPECT_EQ(waiter->Stats().degraded, 1u);
}

TEST_F(AckWaiterTest, ShutdownFailsPendingAndLaterWaits) {
  auto waiter = Make({});
  Outcome pending, after;
  waiter->WaitForAcks(10, pending.Callback());
  waiter->Shutdown();
  ASSERT_TRUE(pending.done());
  EXPECT_EQ(pending.status->code(), ErrorCode::kUnavailable);
  waiter->WaitForAcks(11, after.Callback());
  ASSERT_TRUE(after.done());
  EXPECT_EQ(after.status->code(), ErrorCode::kUnavailable);
}

TEST_F(AckWaiterTest, FailAllUsesTheGivenStatus) {
  auto waiter = Make({});
  Outcome w;
  waiter->WaitForAcks(10, w.Callback());
  waiter->FailAll(Status(ErrorCode::kNotLeader, "stepped down"));
  ASSERT_TRUE(w.done());
  EXPECT_EQ(w.status->code(), ErrorCode::kNotLeader);
}

TEST(AckWaiterTimerTest, TimerThreadExpiresWaitersOnTheRealClock) {
  AckWaiter waiter({.replication_timeout_ms = 50}, SteadyClockMs);
  waiter.StartTimer();
  std::atomic<int> code{-1};
  const uint64_t start = SteadyClockMs();
  waiter.WaitForAcks(1, [&](Status s) { code = static_cast<int>(s.code()); });
  while (code.load() < 0 && SteadyClockMs() - start < 5000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(code.load(), static_cast<int>(ErrorCode::kReplicationTimeout));
  EXPECT_GE(SteadyClockMs() - start, 50u);
  waiter.Shutdown();  // joins the timer promptly
}

}  // namespace
}  // namespace tandem::replication
