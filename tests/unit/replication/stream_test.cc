// Primary and follower over real gRPC: incremental streaming, resume, refusals, bad hellos,
// sync-mode acks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "harness.h"
#include "oplog/entry_codec.h"
#include "replication/ack_waiter.h"
#include "tandem/v1/replication.grpc.pb.h"

namespace tandem::replication::testing {
namespace {

using ::testing::HasSubstr;

FollowerStatus StatusOf(const StandbyNode& standby) { return standby.follower->Status(); }

TEST(ReplicationStreamTest, NewStandbyStreamsAndConverges) {
  PrimaryNode primary;
  RunWorkload(primary.store, 300, 1);
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  // More writes while streaming.
  RunWorkload(primary.store, 500, 2);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));

  FollowerStatus status = StatusOf(standby);
  EXPECT_EQ(status.state, FollowerState::kStreaming);
  EXPECT_EQ(status.full_syncs, 0u);  // seq 1 was still in the window
  EXPECT_EQ(status.refused_entries, 0u);
  EXPECT_EQ(status.primary_id, "p1");
  EXPECT_EQ(status.applied_seq, primary.store.applied_seq());
  EXPECT_EQ(status.lag_entries, 0u);
  EXPECT_EQ(status.lag_ms, 0u);
  // The standby recorded the log it applied: it could serve it after a promotion.
  EXPECT_EQ(standby.log.last_seq(), primary.log.last_seq());
  EXPECT_EQ(standby.history.EpochOf(standby.store.applied_seq()), 1u);

  ASSERT_TRUE(WaitFor([&] {
    auto standbys = primary.primary.Standbys();
    return standbys.size() == 1 && standbys[0].acked_seq == primary.store.applied_seq();
  }));
  StandbyStatus seen = primary.primary.Standbys()[0];
  EXPECT_EQ(seen.standby_id, "s1");
  EXPECT_EQ(seen.address, "s1.test:7000");
  EXPECT_EQ(seen.state, StandbyState::kStreaming);
  EXPECT_EQ(seen.lag_entries, 0u);
  EXPECT_EQ(seen.lag_ms, 0u);
  EXPECT_GT(seen.last_ack_ms, 0u);
}

TEST(ReplicationStreamTest, RestartedFollowerResumesIncrementally) {
  PrimaryNode primary;
  StandbyNode standby;
  RunWorkload(primary.store, 200, 3);
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  standby.StopFollower();
  const uint64_t stopped_at = standby.store.applied_seq();

  RunWorkload(primary.store, 300, 4);
  ASSERT_TRUE(WaitFor([&] {
    auto s = primary.primary.Standbys();
    return s.size() == 1 && s[0].state == StandbyState::kDisconnected;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  StandbyStatus away = primary.primary.Standbys()[0];
  EXPECT_EQ(away.lag_entries, primary.store.applied_seq() - stopped_at);
  EXPECT_GE(away.lag_ms, 30u);  // the oldest entry it lacks was written before the sleep

  standby.StartFollower(primary.address);  // a new follower object, same store
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_EQ(StatusOf(standby).full_syncs, 0u);
  StandbyStatus back = primary.primary.Standbys()[0];
  EXPECT_EQ(back.full_syncs, 0u);
  EXPECT_THAT(back.last_sync_reason, HasSubstr("resumes after seq " + std::to_string(stopped_at)));
}

TEST(ReplicationStreamTest, CorruptedEntryIsRefusedReRequestedAndNeverApplied) {
  PrimaryNode primary;
  RunWorkload(primary.store, 100, 5);
  // Corrupt the key of one PUT_START, once: if it were applied, an object under the corrupted
  // key would exist on the standby.
  std::atomic<uint64_t> corrupted_seq{0};
  std::string corrupted_key;
  primary.primary.SetEntryFaultForTest([&](tandem::v1::OpLogEntry& entry) {
    uint64_t none = 0;
    if (entry.op_type() != tandem::v1::PUT_START || entry.sequence_id() < 50) return;
    if (!corrupted_seq.compare_exchange_strong(none, entry.sequence_id())) return;
    (*entry.mutable_object_key())[0] ^= 0x20;  // 'k' -> 'K'
    corrupted_key = entry.object_key();
  });
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));

  ASSERT_NE(corrupted_seq.load(), 0u);
  FollowerStatus status = StatusOf(standby);
  EXPECT_EQ(status.refused_entries, 1u);
  EXPECT_GE(status.reconnects, 1u);
  EXPECT_EQ(status.full_syncs, 0u);  // a re-request, not a full sync
  EXPECT_THAT(status.last_error, HasSubstr("seq " + std::to_string(corrupted_seq.load())));
  EXPECT_THAT(status.last_error, HasSubstr("checksum mismatch"));
  EXPECT_FALSE(standby.store.ExistKey(corrupted_key));
  EXPECT_EQ(standby.store.StateDigest(), primary.store.StateDigest());
}

TEST(ReplicationStreamTest, EntriesFromAFutureEpochAreRefused) {
  PrimaryNode primary(/*epoch=*/3);
  RunWorkload(primary.store, 50, 6);
  // Every copy of seq 20 claims epoch 4 (resealed, so the checksum is fine): the primary is at
  // epoch 3, so the entry cannot be genuine. It is refused each time, never applied.
  primary.primary.SetEntryFaultForTest([](tandem::v1::OpLogEntry& entry) {
    if (entry.sequence_id() != 20) return;
    entry.set_epoch(4);
    oplog::Seal(entry);
  });
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).refused_entries >= 2; }));
  EXPECT_LE(standby.store.applied_seq(), 19u);
  EXPECT_THAT(StatusOf(standby).last_error, HasSubstr("newer than the primary's epoch 3"));
  primary.primary.SetEntryFaultForTest(nullptr);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
}

void ExpectRefusedAndUntouched(PrimaryNode& primary, StandbyNode& standby,
                               const FollowerOptions& options, const std::string& message) {
  // State of its own, in an epoch the primaries of these tests (5) never had.
  GiveOwnState(standby, /*epoch=*/2, 20);
  const uint64_t seq = standby.store.applied_seq();
  const uint64_t digest = standby.store.StateDigest();
  standby.StartFollower(options);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).state == FollowerState::kError; }));
  EXPECT_THAT(StatusOf(standby).last_error, HasSubstr(message));
  // It keeps retrying (slowly) and keeps failing the same way, without touching the store.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  FollowerStatus status = StatusOf(standby);
  EXPECT_EQ(status.state, FollowerState::kError);
  EXPECT_GE(status.reconnects, 1u);
  EXPECT_EQ(standby.store.applied_seq(), seq);
  EXPECT_EQ(standby.store.StateDigest(), digest);
  EXPECT_TRUE(primary.primary.Standbys().empty());
}

TEST(ReplicationStreamTest, WrongClusterIdIsRefused) {
  PrimaryNode primary(5);
  RunWorkload(primary.store, 50, 8);
  StandbyNode standby;
  FollowerOptions options = standby.Options(primary.address);
  options.cluster_id = "another-cluster";
  ExpectRefusedAndUntouched(primary, standby, options, "cluster id mismatch");
}

TEST(ReplicationStreamTest, StandbyNamedLikeThePrimaryIsRefused) {
  PrimaryNode primary(5);
  RunWorkload(primary.store, 50, 9);
  StandbyNode standby("p1");
  ExpectRefusedAndUntouched(primary, standby, standby.Options(primary.address), "own id");
}

TEST(ReplicationStreamTest, NonServingPrimaryIsRefusedUntilItServes) {
  PrimaryNode primary(5);
  RunWorkload(primary.store, 50, 10);
  primary.primary.SetServing(false, 0, "p9 at 10.0.0.9:7001");
  StandbyNode standby;
  GiveOwnState(standby, /*epoch=*/2, 20);
  const uint64_t digest = standby.store.StateDigest();
  standby.StartFollower(standby.Options(primary.address));
  // Not an error but a moment of a failover (etcd names a leader just before it serves): the
  // follower keeps retrying with its normal back-off, without touching its state.
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).reconnects >= 2; }));
  EXPECT_EQ(StatusOf(standby).state, FollowerState::kDisconnected);
  EXPECT_THAT(StatusOf(standby).last_error,
              HasSubstr("not a primary: node 'p1' is not serving; leader is p9 at 10.0.0.9:7001"));
  EXPECT_EQ(standby.store.StateDigest(), digest);
  // It becomes valid (after a failover): the follower retries and syncs. Its own state was
  // never part of this history, so it gets a full sync.
  primary.primary.SetServing(true, 5);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }));
  EXPECT_EQ(StatusOf(standby).state, FollowerState::kStreaming);
  EXPECT_EQ(StatusOf(standby).full_syncs, 1u);
}

TEST(ReplicationStreamTest, DeposedPrimaryRefusesAStandbyOfANewerEpoch) {
  // The standby applied entries of epoch 7 (it followed a newer leader); a primary still at
  // epoch 5 must not sync it back to its own history.
  PrimaryNode primary(5);
  RunWorkload(primary.store, 50, 21);
  StandbyNode standby;
  GiveOwnState(standby, /*epoch=*/7, 20);
  const uint64_t digest = standby.store.StateDigest();
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).state == FollowerState::kError; }));
  EXPECT_THAT(StatusOf(standby).last_error, HasSubstr("stale primary"));
  EXPECT_EQ(standby.store.StateDigest(), digest);
}

TEST(ReplicationStreamTest, FollowerRefusesAPrimaryBelowTheEtcdEpoch) {
  // etcd says epoch 9 leads; a primary still serving epoch 5 is refused before any entry.
  PrimaryNode primary(5);
  RunWorkload(primary.store, 50, 22);
  StandbyNode standby;
  FollowerOptions options = standby.Options(primary.address);
  options.min_primary_epoch = 9;
  standby.StartFollower(options);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).state == FollowerState::kError; }));
  EXPECT_THAT(StatusOf(standby).last_error, HasSubstr("stale primary"));
  EXPECT_EQ(standby.store.applied_seq(), 0u);
  // Lowering is not possible; a new leader at epoch >= 9 is followed (same address here, so
  // raise the primary's epoch as a failover would).
  primary.primary.SetServing(true, 9);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }, 8000));
}

TEST(ReplicationStreamTest, FollowerNoticesADeadPrimaryAndStopsPromptly) {
  auto primary = std::make_unique<PrimaryNode>();
  RunWorkload(primary->store, 50, 11);
  StandbyNode standby;
  standby.StartFollower(primary->address);
  ASSERT_TRUE(WaitFor([&] { return Settled(*primary, standby); }));
  primary.reset();
  ASSERT_TRUE(WaitFor([&] {
    FollowerState s = StatusOf(standby).state;
    return s == FollowerState::kDisconnected || s == FollowerState::kConnecting;
  }));
  const uint64_t start = SteadyClockMs();
  standby.StopFollower();
  EXPECT_LT(SteadyClockMs() - start, 1000u);
}

TEST(ReplicationStreamTest, FollowerMovesToANewPrimaryAddress) {
  PrimaryNode primary;
  RunWorkload(primary.store, 50, 14);
  StandbyNode standby;
  standby.StartFollower("127.0.0.1:1");  // nothing listens there
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).reconnects >= 2; }));
  EXPECT_EQ(StatusOf(standby).state, FollowerState::kDisconnected);
  standby.follower->SetPrimaryAddress(primary.address);  // e.g. after a failover
  ASSERT_TRUE(WaitFor([&] { return Settled(primary, standby); }, 3000));
  EXPECT_EQ(StatusOf(standby).primary_address, primary.address);
}

// A "primary" that accepts the hello and then never sends anything (hung, SIGSTOPped).
class SilentPrimary final : public tandem::v1::Replication::CallbackService {
  class Reactor final
      : public grpc::ServerBidiReactor<tandem::v1::SyncRequest, tandem::v1::SyncResponse> {
   public:
    Reactor() { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) return;  // finished in OnCancel
      if (!accepted_) {
        accepted_ = true;
        out_.mutable_accepted()->set_primary_id("silent");
        out_.mutable_accepted()->set_epoch(1);
        out_.mutable_accepted()->set_mode(tandem::v1::INCREMENTAL);
        StartWrite(&out_);
      }
      StartRead(&in_);
    }
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    tandem::v1::SyncRequest in_;
    tandem::v1::SyncResponse out_;
    bool accepted_ = false;
  };

 public:
  grpc::ServerBidiReactor<tandem::v1::SyncRequest, tandem::v1::SyncResponse>* Sync(
      grpc::CallbackServerContext*) override {
    return new Reactor();
  }
};

TEST(ReplicationStreamTest, SilentPrimaryIsDetectedByTheWatchdog) {
  SilentPrimary silent;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&silent);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  StandbyNode standby;
  FollowerOptions options = standby.Options("127.0.0.1:" + std::to_string(port));
  options.primary_timeout_ms = 300;
  const uint64_t start = SteadyClockMs();
  standby.StartFollower(options);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).reconnects >= 1; }, 5000));
  EXPECT_GE(SteadyClockMs() - start, 300u);
  EXPECT_THAT(StatusOf(standby).last_error, HasSubstr("no message from the primary"));
  EXPECT_EQ(standby.store.applied_seq(), 0u);
  standby.StopFollower();
  server->Shutdown(std::chrono::system_clock::now());
}

TEST(ReplicationStreamTest, TheStandbysAckReleasesTheNextBatchBeforeTheBatchTimeout) {
  // Neither the batch timeout nor a heartbeat comes within the waits below: only the ack clock
  // (an acked standby gets the next entry at once) can deliver each write in time.
  PrimaryNode primary(1, {}, "p1", [](PrimaryOptions& o) {
    o.batch_timeout_ms = 20000;
    o.heartbeat_ms = 10000;
  });
  StandbyNode standby;
  FollowerOptions options = standby.Options(primary.address);
  options.primary_timeout_ms = 30000;
  standby.StartFollower(options);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).state == FollowerState::kStreaming; }));
  for (int i = 0; i < 5; ++i) {
    RunWorkload(primary.store, 1, 40 + i);
    const uint64_t target = primary.store.applied_seq();
    ASSERT_TRUE(WaitFor([&] { return standby.store.applied_seq() >= target; }, 3000))
        << "write " << i << ": standby at " << standby.store.applied_seq() << ", primary at "
        << target;
  }
  standby.StopFollower();
}

TEST(ReplicationStreamTest, SyncModeWaitCompletesOnTheStandbysAck) {
  PrimaryNode primary;
  AckWaiter waiter({.min_sync_acks = 1, .replication_timeout_ms = 3000}, SteadyClockMs);
  waiter.StartTimer();
  primary.primary.SetAckListener(
      [&](const std::string& id, uint64_t seq) { waiter.OnAck(id, seq); });
  StandbyNode standby;
  standby.StartFollower(primary.address);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(standby).state == FollowerState::kStreaming; }));

  RunWorkload(primary.store, 20, 12);
  std::atomic<int> code{-1};
  waiter.WaitForAcks(primary.store.applied_seq(),
                     [&](Status s) { code = static_cast<int>(s.code()); });
  ASSERT_TRUE(WaitFor([&] { return code.load() >= 0; }));
  EXPECT_EQ(code.load(), static_cast<int>(ErrorCode::kOk));
  EXPECT_GE(standby.store.applied_seq(), primary.store.applied_seq());

  // Without a standby the write times out.
  standby.StopFollower();
  AckWaiter strict({.replication_timeout_ms = 200}, SteadyClockMs);
  strict.StartTimer();
  primary.primary.SetAckListener(
      [&](const std::string& id, uint64_t seq) { strict.OnAck(id, seq); });
  RunWorkload(primary.store, 5, 13);
  code = -1;
  strict.WaitForAcks(primary.store.applied_seq(),
                     [&](Status s) { code = static_cast<int>(s.code()); });
  ASSERT_TRUE(WaitFor([&] { return code.load() >= 0; }));
  EXPECT_EQ(code.load(), static_cast<int>(ErrorCode::kReplicationTimeout));
  primary.primary.SetAckListener(nullptr);
}

}  // namespace
}  // namespace tandem::replication::testing
