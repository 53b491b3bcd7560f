// Durability in-process: a node's parts (LogBuffer, Sequencer, MetaStore) wired to a Durability
// on a scratch data dir. Recovery after a "crash" (the objects are destroyed without Stop),
// snapshots and WAL cleanup, the always-mode write gate, a full sync (Clear) rebasing the WAL,
// directory errors and metrics.
#include "server/durability.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "oplog/entry_codec.h"
#include "oplog/sequencer.h"
#include "oplog/wal_reader.h"
#include "test_util.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;

MasterConfig DurableConfig(const std::string& data_dir, const std::string& fsync = "interval") {
  MasterConfig config;
  config.data_dir = data_dir;
  config.node_id = "dur-test";
  config.cluster_id = "dur";
  config.wal_fsync = fsync;
  config.wal_fsync_interval_ms = 5;
  config.snapshot_interval_s = 0;
  config.snapshot_retention = 3;
  return config;
}

// One node's state machine and log, with its Durability. Destroying it without Stop() is a
// crash as far as the store is concerned (the WAL writer flushes what it queued, like the OS
// would keep written pages: the tests of torn writes live in wal_test and recovery_test).
class Node {
 public:
  // `min_needed`: the standbys' MinNeededSeq as the node wires it (empty: no standbys);
  // `activity`: the count of work done for clients (empty: snapshots are always paced).
  explicit Node(MasterConfig config, WriteGate* inner = nullptr,
                oplog::LogBufferOptions log_options = {}, std::function<uint64_t()> min_needed = {},
                std::function<uint64_t()> activity = {})
      : config_(std::move(config)),
        log_(log_options),
        sequencer_(&log_, 1, 1),
        store_(meta::Options{}, &sequencer_),
        durability_(config_, Durability::Deps{.store = &store_,
                                              .log = &log_,
                                              .inner_gate = inner,
                                              .clock = &clock_,
                                              .current_epoch = [] { return uint64_t{1}; },
                                              .min_needed_seq = std::move(min_needed),
                                              .activity = std::move(activity)}) {}

  Status Recover() {
    Status s = durability_.Recover();
    if (s.ok() && durability_.report().last_seq > 0) {
      sequencer_.Resume(durability_.report().last_epoch, durability_.report().last_seq + 1);
    }
    return s;
  }

  void Mount(const std::string& name, uint64_t size = 1ull << 30) {
    ASSERT_TRUE(store_.MountSegment({"", name, 0, size, name + ":1"}, "", clock_.NowMs()).ok());
  }
  void Put(const std::string& key, uint64_t size = 4096) {
    meta::PutStartArgs args;
    args.key = key;
    args.value_size = size;
    args.replica_num = 1;
    ASSERT_TRUE(store_.PutStart(args, clock_.NowMs()).ok()) << key;
    ASSERT_TRUE(store_.PutEnd(key, "", clock_.NowMs()).ok()) << key;
  }

  meta::MetaStore& store() { return store_; }
  oplog::LogBuffer& log() { return log_; }
  oplog::Sequencer& sequencer() { return sequencer_; }
  Durability& durability() { return durability_; }
  testing::ManualClock& clock() { return clock_; }

 private:
  MasterConfig config_;
  testing::ManualClock clock_;
  oplog::LogBuffer log_;
  oplog::Sequencer sequencer_;
  meta::MetaStore store_;
  Durability durability_;
};

class DurabilityTest : public ::testing::Test {
 protected:
  std::string DataDir() const { return dir_.path() + "/data"; }
  testing::ScratchDir dir_;
};

TEST_F(DurabilityTest, EmptyDataDirRecoversEmptyAndCreatesDirectories) {
  Node node(DurableConfig(DataDir()));
  ASSERT_TRUE(node.Recover().ok());
  EXPECT_EQ(node.durability().report().last_seq, 0u);
  EXPECT_TRUE(fs::is_directory(DataDir() + "/wal"));
  EXPECT_TRUE(fs::is_directory(DataDir() + "/snapshots"));
  const DurabilityStatus status = node.durability().GetStatus();
  EXPECT_TRUE(status.enabled);
  EXPECT_FALSE(status.recovering);
  EXPECT_EQ(status.wal_fsync, "interval");
}

TEST_F(DurabilityTest, WalAloneRestoresTheStateAfterACrash) {
  uint64_t digest = 0;
  uint64_t seq = 0;
  {
    Node node(DurableConfig(DataDir()));
    ASSERT_TRUE(node.Recover().ok());
    node.Mount("pool");
    for (int i = 0; i < 200; ++i) node.Put("key-" + std::to_string(i));
    ASSERT_TRUE(node.store().Remove("key-7", node.clock().NowMs()).ok());
    digest = node.store().StateDigest();
    seq = node.store().applied_seq();
    EXPECT_EQ(node.durability().GetStatus().wal_appended_seq, seq);
  }  // no Stop: the node "dies"
  Node again(DurableConfig(DataDir()));
  ASSERT_TRUE(again.Recover().ok());
  EXPECT_EQ(again.store().applied_seq(), seq);
  EXPECT_EQ(again.store().StateDigest(), digest);
  EXPECT_EQ(again.durability().report().wal_records_replayed, seq);
  // The log continues at seq + 1, in the WAL too.
  again.Put("after-restart");
  EXPECT_EQ(again.store().applied_seq(), seq + 2);
  EXPECT_EQ(again.durability().GetStatus().wal_appended_seq, seq + 2);
  again.durability().Stop();
  Node third(DurableConfig(DataDir()));
  ASSERT_TRUE(third.Recover().ok());
  EXPECT_EQ(third.store().applied_seq(), seq + 2);
  EXPECT_EQ(third.store().StateDigest(), again.store().StateDigest());
}

TEST_F(DurabilityTest, SnapshotPlusWalTailAndCoveredSegmentsAreDeleted) {
  MasterConfig config = DurableConfig(DataDir());
  config.wal_segment_bytes = 4096;  // many segments
  uint64_t digest = 0;
  uint64_t seq = 0;
  {
    Node node(config);
    ASSERT_TRUE(node.Recover().ok());
    node.Mount("pool");
    for (int i = 0; i < 300; ++i) node.Put("a-" + std::to_string(i));
    StatusOr<SnapshotResult> first = node.durability().SnapshotNow();
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ(first->seq, node.store().applied_seq());
    EXPECT_EQ(first->objects, 300u);
    for (int i = 0; i < 300; ++i) node.Put("b-" + std::to_string(i));
    // Segment files appear when the flusher writes them (interval mode: within a few ms).
    for (int i = 0;
         i < 200 && node.durability().GetStatus().wal_durable_seq < node.store().applied_seq();
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const uint64_t segments_before = node.durability().GetStatus().wal_segments;
    StatusOr<SnapshotResult> second = node.durability().SnapshotNow();
    ASSERT_TRUE(second.ok());
    // Segments wholly covered by the *first* snapshot are gone; those after it stay.
    const DurabilityStatus status = node.durability().GetStatus();
    EXPECT_LT(status.wal_segments, segments_before);
    EXPECT_EQ(status.snapshots_taken, 2u);
    EXPECT_EQ(status.last_snapshot_seq, second->seq);
    EXPECT_GT(status.last_snapshot_bytes, 0u);
    for (int i = 0; i < 50; ++i) node.Put("c-" + std::to_string(i));
    digest = node.store().StateDigest();
    seq = node.store().applied_seq();
    node.durability().Stop();
  }
  Node again(config);
  ASSERT_TRUE(again.Recover().ok());
  EXPECT_EQ(again.store().applied_seq(), seq);
  EXPECT_EQ(again.store().StateDigest(), digest);
  EXPECT_FALSE(again.durability().report().snapshot_id.empty());
  EXPECT_EQ(again.durability().report().wal_records_replayed, 100u);  // 50 puts = 100 entries

  // Damage the newest snapshot: the previous one plus the WAL still give the same state.
  again.durability().Stop();
  const std::string newest = DataDir() + "/snapshots/" + again.durability().report().snapshot_id;
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(newest) / 2));
    file.put('\x5a');
  }
  Node third(config);
  ASSERT_TRUE(third.Recover().ok());
  EXPECT_EQ(third.durability().report().skipped.size(), 1u);
  EXPECT_EQ(third.store().applied_seq(), seq);
  EXPECT_EQ(third.store().StateDigest(), digest);
}

TEST(SnapshotTruncationPointTest, AfterTheSnapshotUnlessAStandbyNeedsMore) {
  // No standby: everything the snapshot covers goes.
  EXPECT_EQ(SnapshotTruncationPoint(100, UINT64_MAX, 150), 101u);
  // A connected standby that acked 80 needs 81 on: kept.
  EXPECT_EQ(SnapshotTruncationPoint(100, 81, 150), 81u);
  // A standby ahead of the snapshot does not move the point past it.
  EXPECT_EQ(SnapshotTruncationPoint(100, 140, 150), 101u);
  // The newest entry always stays: the window never empties.
  EXPECT_EQ(SnapshotTruncationPoint(150, UINT64_MAX, 150), 150u);
  EXPECT_EQ(SnapshotTruncationPoint(150, 151, 150), 150u);
  // An empty window: nothing to truncate.
  EXPECT_EQ(SnapshotTruncationPoint(100, UINT64_MAX, 0), 0u);
  EXPECT_EQ(SnapshotTruncationPoint(UINT64_MAX, UINT64_MAX, 7), 7u);
}

TEST_F(DurabilityTest, SnapshotTruncatesTheWindowButNotWhatAStandbyNeeds) {
  std::atomic<uint64_t> needed{UINT64_MAX};
  Node node(DurableConfig(DataDir()), nullptr, {}, [&] { return needed.load(); });
  ASSERT_TRUE(node.Recover().ok());
  node.Mount("pool");
  for (int i = 0; i < 50; ++i) node.Put("a-" + std::to_string(i));  // seqs 1..101
  ASSERT_EQ(node.log().first_seq(), 1u);

  // A connected standby acked 40: the snapshot at 101 truncates only before 41.
  needed = 41;
  StatusOr<SnapshotResult> first = node.durability().SnapshotNow();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->seq, 101u);
  EXPECT_EQ(node.log().first_seq(), 41u);
  EXPECT_EQ(node.log().last_seq(), 101u);
  DurabilityStatus status = node.durability().GetStatus();
  EXPECT_EQ(status.oplog_truncated_before, 41u);
  EXPECT_EQ(status.oplog_truncated_entries, 40u);
  EXPECT_EQ(status.oplog_first_seq, 41u);

  // A full sync in flight holds from 60 on (LogBuffer hold): it wins over "no standby".
  for (int i = 0; i < 10; ++i) node.Put("b-" + std::to_string(i));  // 102..121
  needed = UINT64_MAX;
  const uint64_t hold = node.log().Hold(60);
  ASSERT_TRUE(node.durability().SnapshotNow().ok());
  EXPECT_EQ(node.log().first_seq(), 60u);
  node.log().Release(hold);

  // Nobody needs anything: the window keeps only what the snapshot does not cover -- and at
  // least the newest entry, so it never empties.
  for (int i = 0; i < 5; ++i) node.Put("c-" + std::to_string(i));  // 122..131
  StatusOr<SnapshotResult> last = node.durability().SnapshotNow();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->seq, 131u);
  EXPECT_EQ(node.log().first_seq(), 131u);
  EXPECT_EQ(node.log().size_entries(), 1u);
  // The log continues without a gap.
  node.Put("d");
  EXPECT_EQ(node.log().last_seq(), 133u);
  EXPECT_EQ(node.durability().GetStatus().oplog_truncated_entries, 40u + 19u + 71u);
}

TEST_F(DurabilityTest, RecoveryRefillsTheWindowFromTheWalTail) {
  MasterConfig config = DurableConfig(DataDir());
  uint64_t snapshot_seq = 0;
  uint64_t seq = 0;
  {
    Node node(config);
    ASSERT_TRUE(node.Recover().ok());
    node.Mount("pool");
    for (int i = 0; i < 100; ++i) node.Put("a-" + std::to_string(i));
    StatusOr<SnapshotResult> snap = node.durability().SnapshotNow();
    ASSERT_TRUE(snap.ok());
    snapshot_seq = snap->seq;
    for (int i = 0; i < 30; ++i) node.Put("b-" + std::to_string(i));
    seq = node.store().applied_seq();
    node.durability().Stop();
  }
  {
    Node again(config);
    ASSERT_TRUE(again.Recover().ok());
    EXPECT_EQ(again.store().applied_seq(), seq);
    // The WAL tail after the snapshot is the window again, ending at the recovered seq.
    EXPECT_EQ(again.log().first_seq(), snapshot_seq + 1);
    EXPECT_EQ(again.log().last_seq(), seq);
    EXPECT_EQ(again.durability().GetStatus().oplog_refilled_entries, 60u);
    auto entries = again.log().EntriesSince(snapshot_seq, 1000);
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->size(), 60u);
    EXPECT_TRUE(oplog::Verify(entries->front()));
    // The sequencer continues right after it (LogBuffer::Append would refuse a gap).
    again.Put("c");
    EXPECT_EQ(again.log().last_seq(), seq + 2);
    EXPECT_EQ(again.store().applied_seq(), seq + 2);
    again.durability().Stop();
  }
  // Bounded like any append: a small window keeps the newest part of the tail.
  Node bounded(config, nullptr, oplog::LogBufferOptions{.max_bytes = 1 << 30, .max_entries = 16});
  ASSERT_TRUE(bounded.Recover().ok());
  EXPECT_EQ(bounded.log().size_entries(), 16u);
  EXPECT_EQ(bounded.log().last_seq(), seq + 2);
  EXPECT_EQ(bounded.durability().GetStatus().oplog_refilled_entries, 62u);
}

TEST_F(DurabilityTest, AlwaysModeAcknowledgesOnlyDurableWrites) {
  Node node(DurableConfig(DataDir(), "always"));
  ASSERT_TRUE(node.Recover().ok());
  node.durability().Start();
  node.Mount("pool");
  node.Put("k");
  const uint64_t seq = node.sequencer().last_seq();
  std::promise<Status> done;
  node.durability().gate()->AwaitCommit(seq, [&](Status s) { done.set_value(s); });
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(future.get().ok());
  EXPECT_GE(node.durability().GetStatus().wal_durable_seq, seq);

  // Many concurrent waiters are released by group commits.
  std::atomic<int> acked{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        node.Put("w" + std::to_string(t) + "-" + std::to_string(i));
        std::promise<Status> p;
        node.durability().gate()->AwaitCommit(node.sequencer().last_seq(),
                                              [&](Status s) { p.set_value(s); });
        if (p.get_future().get().ok()) ++acked;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(acked.load(), 200);
  node.durability().Stop();
  // After Stop a waiter is failed, not held forever.
  std::promise<Status> late;
  node.durability().gate()->AwaitCommit(node.sequencer().last_seq() + 100,
                                        [&](Status s) { late.set_value(s); });
  auto late_future = late.get_future();
  ASSERT_EQ(late_future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

// The inner (replication) gate decides first; its error wins and the WAL is not waited for.
class FailingGate : public WriteGate {
 public:
  Status Admit(Access) override { return Status::Ok(); }
  void AwaitCommit(uint64_t, std::function<void(Status)> done) override {
    done(Status(ErrorCode::kReplicationTimeout, "no standby"));
  }
};

TEST_F(DurabilityTest, InnerGateErrorWins) {
  FailingGate inner;
  Node node(DurableConfig(DataDir(), "always"), &inner);
  ASSERT_TRUE(node.Recover().ok());
  node.durability().Start();
  Status got;
  node.durability().gate()->AwaitCommit(1, [&](Status s) { got = s; });
  EXPECT_EQ(got.code(), ErrorCode::kReplicationTimeout);
}

TEST_F(DurabilityTest, FullSyncRebasesSnapshotAndWal) {
  // A standby-like node: its store is replaced by an image (LoadImage), then the follower clears
  // the log and continues with the entries after the image.
  Node source(DurableConfig(dir_.path() + "/source"));
  ASSERT_TRUE(source.Recover().ok());
  source.Mount("pool");
  for (int i = 0; i < 100; ++i) source.Put("s-" + std::to_string(i));

  MasterConfig config = DurableConfig(DataDir());
  {
    Node node(config);
    ASSERT_TRUE(node.Recover().ok());
    node.Mount("old-pool");  // a state that the full sync replaces
    for (int i = 0; i < 20; ++i) node.Put("old-" + std::to_string(i));
    ASSERT_TRUE(node.durability().SnapshotNow().ok());

    std::unique_ptr<meta::StateImage> image = source.store().CaptureImage();
    std::vector<tandem::v1::ObjectChunk> chunks;
    image->ForEachChunk(64, [&](const tandem::v1::ObjectChunk& chunk) {
      chunks.push_back(chunk);
      return true;
    });
    size_t next = 0;
    ASSERT_TRUE(node.store()
                    .LoadImage(
                        image->header(),
                        [&](tandem::v1::ObjectChunk* chunk) {
                          if (next == chunks.size()) return false;
                          *chunk = chunks[next++];
                          return true;
                        },
                        node.clock().NowMs())
                    .ok());
    node.log().Clear();  // -> OnClear: snapshot at the image's seq, WAL restarts after it
    EXPECT_EQ(node.durability().GetStatus().last_snapshot_seq, image->header().applied_seq());
    // The entries after the image, as a follower applies them (Apply, then the log).
    for (int i = 0; i < 10; ++i) source.Put("t-" + std::to_string(i));
    auto entries = source.log().EntriesSince(image->header().applied_seq(), 1000);
    ASSERT_TRUE(entries.ok());
    for (const auto& entry : entries.value()) {
      ASSERT_TRUE(node.store().Apply(entry).ok());
      ASSERT_TRUE(node.log().Append(entry).ok());
    }
    EXPECT_EQ(node.store().StateDigest(), source.store().StateDigest());
    node.durability().Stop();
  }
  Node again(config);
  ASSERT_TRUE(again.Recover().ok());
  EXPECT_EQ(again.store().applied_seq(), source.store().applied_seq());
  EXPECT_EQ(again.store().StateDigest(), source.store().StateDigest());
  EXPECT_EQ(again.durability().report().wal_records_replayed, 20u);
}

TEST_F(DurabilityTest, PeriodicAndRequestedSnapshots) {
  MasterConfig config = DurableConfig(DataDir());
  config.snapshot_interval_s = 1;
  Node node(config);
  ASSERT_TRUE(node.Recover().ok());
  node.durability().Start();
  node.Mount("pool");
  node.Put("x");
  // Periodic: within ~1 s.
  for (int i = 0; i < 60 && node.durability().GetStatus().snapshots_taken == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(node.durability().GetStatus().snapshots_taken, 1u);
  // Requested: answered from the snapshot thread.
  node.Put("y");
  std::promise<StatusOr<SnapshotResult>> result;
  node.durability().RequestSnapshot(
      [&](StatusOr<SnapshotResult> r) { result.set_value(std::move(r)); });
  auto future = result.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  StatusOr<SnapshotResult> got = future.get();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seq, node.store().applied_seq());
  EXPECT_EQ(got->objects, 2u);
  node.durability().Stop();
  // After Stop a request fails at once.
  Status stopped;
  node.durability().RequestSnapshot([&](StatusOr<SnapshotResult> r) { stopped = r.status(); });
  EXPECT_EQ(stopped.code(), ErrorCode::kUnavailable);
}

// --snapshot-write-mib-per-s holds while clients are served; a node nobody uses writes at once.
TEST_F(DurabilityTest, SnapshotsArePacedOnlyWhileTheNodeIsBusy) {
  MasterConfig config = DurableConfig(DataDir());
  // ~3 MB below: 1 MiB pieces due 0.5 s apart. Nice 10, not idle-class: on a busy test machine
  // an idle-class writer can fall so far behind the pace that it never has to wait.
  config.snapshot_write_mib_per_s = 2;
  config.snapshot_priority = "low";
  std::atomic<bool> busy{false};
  std::atomic<uint64_t> served{0};
  Node node(config, nullptr, {}, {}, [&] { return busy ? ++served : served.load(); });
  ASSERT_TRUE(node.Recover().ok());
  node.durability().Start();
  node.Mount("pool", 1ull << 40);
  for (int i = 0; i < 80000; ++i) node.Put("key-" + std::to_string(i));
  auto snapshot = [&node]() -> StatusOr<SnapshotResult> {
    std::promise<StatusOr<SnapshotResult>> result;
    node.durability().RequestSnapshot(
        [&](StatusOr<SnapshotResult> r) { result.set_value(std::move(r)); });
    auto future = result.get_future();
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      return Status(ErrorCode::kInternal, "no answer in 60 s");
    }
    return future.get();
  };
  StatusOr<SnapshotResult> idle = snapshot();
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  EXPECT_GT(idle->bytes, 2u << 20);
  EXPECT_EQ(idle->paced_seconds, 0.0);
  node.Put("one-more");  // a new seq, so the next snapshot is a new file
  busy = true;
  StatusOr<SnapshotResult> paced = snapshot();
  ASSERT_TRUE(paced.ok()) << paced.status().ToString();
  EXPECT_GT(paced->paced_seconds, 0.0);
  node.durability().Stop();
}

TEST_F(DurabilityTest, UnusableDirectoriesAreClearErrors) {
  const std::string file = dir_.path() + "/a-file";
  std::ofstream(file) << "x";
  MasterConfig config = DurableConfig(DataDir());
  config.snapshot_dir = file + "/snapshots";
  Node node(config);
  Status s = node.Recover();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--snapshot-dir"), std::string::npos) << s.ToString();

  MasterConfig wal_config = DurableConfig(DataDir());
  wal_config.wal_dir = file;
  Node other(wal_config);
  s = other.Recover();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--wal-dir"), std::string::npos) << s.ToString();
}

TEST_F(DurabilityTest, ForeignClusterFilesAreNotLoaded) {
  {
    Node node(DurableConfig(DataDir()));
    ASSERT_TRUE(node.Recover().ok());
    node.Mount("pool");
    node.Put("k");
    ASSERT_TRUE(node.durability().SnapshotNow().ok());
    node.durability().Stop();
  }
  MasterConfig other = DurableConfig(DataDir());
  other.cluster_id = "another";
  Node node(other);
  ASSERT_TRUE(node.Recover().ok());
  EXPECT_EQ(node.store().applied_seq(), 0u);
  EXPECT_EQ(node.durability().report().skipped.size(), 1u);
}

TEST_F(DurabilityTest, MetricsAreRegistered) {
  Node node(DurableConfig(DataDir()));
  ASSERT_TRUE(node.Recover().ok());
  metrics::Registry registry;
  node.durability().RegisterMetrics(&registry);
  node.Mount("pool");
  ASSERT_TRUE(node.durability().SnapshotNow().ok());
  const std::string text = registry.Render();
  for (const char* name :
       {"tandem_snapshot_age_seconds", "tandem_snapshot_last_bytes",
        "tandem_snapshot_last_duration_seconds", "tandem_snapshot_last_seq",
        "tandem_snapshots_taken_total 1", "tandem_snapshots_failed_total 0", "tandem_wal_bytes",
        "tandem_wal_durable_seq", "tandem_recovery_seconds", "tandem_recovered_seq 0"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << "\n" << text;
  }
}

}  // namespace
}  // namespace tandem::server
