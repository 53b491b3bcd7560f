// Cold start: newest valid snapshot + WAL tail reproduces the state, leases come back fresh,
// damaged snapshots and WAL files are skipped or cut, never half-applied.
#include "snapshot/recovery.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "oplog/wal_reader.h"
#include "oplog/wal_writer.h"
#include "snapshot/local_dir_store.h"
#include "test_util.h"

namespace tandem::snapshot::testing {
namespace {

constexpr char kCluster[] = "cluster-r";

// A leader-like node: a store whose every entry also goes to a WAL, and a snapshot store.
class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    oplog::WalOptions options;
    options.dir = WalDir();
    options.cluster_id = kCluster;
    options.segment_bytes = 16 << 10;  // several segments
    auto wal = oplog::WalWriter::Open(options, 1);
    ASSERT_TRUE(wal.ok()) << wal.status().ToString();
    wal_ = std::move(wal).value();
    MountSegments(source_);
  }

  std::string WalDir() const { return dir_.Sub("wal"); }

  // Ships what the store logged since the last call into the WAL (as a WAL tailer would).
  void LogToWal() {
    auto entries = sink_.Since(wal_->appended_seq());
    ASSERT_TRUE(wal_->AppendBatch(entries).ok());
  }

  SnapshotInfo TakeSnapshot() {
    StatusOr<SnapshotInfo> info = snapshots_.Write(*source_.CaptureImage(), {kCluster, 1, 0});
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info.value() : SnapshotInfo{};
  }

  // Closes the WAL (a clean stop flushes it) and recovers into `target`.
  RecoveryReport Recover(meta::MetaStore& target, uint64_t now_ms = 1'000'000) {
    wal_.reset();
    StatusOr<RecoveryReport> report = RecoverState(&target, snapshots_, WalDir(), kCluster, now_ms);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? report.value() : RecoveryReport{};
  }

  TempDir dir_;
  SealingSink sink_;
  meta::MetaStore source_{meta::Options(), &sink_};
  LocalDirStore snapshots_{dir_.Sub("snaps"), 3, WriteOptions{64}};
  std::unique_ptr<oplog::WalWriter> wal_;
  SealingSink target_sink_;
  meta::MetaStore target_{meta::Options(), &target_sink_};
};

TEST_F(RecoveryTest, SnapshotPlusWalTailReproducesTheState) {
  PutObjects(source_, 0, 500);
  LogToWal();
  SnapshotInfo snap = TakeSnapshot();
  PutObjects(source_, 500, 300);
  ASSERT_TRUE(source_.Remove("key-2", 20).ok());
  LogToWal();
  RecoveryReport report = Recover(target_);
  EXPECT_EQ(report.snapshot_id, snap.id);
  EXPECT_EQ(report.snapshot_seq, snap.seq);
  EXPECT_EQ(report.wal_records_replayed, source_.applied_seq() - snap.seq);
  EXPECT_EQ(report.last_seq, source_.applied_seq());
  EXPECT_EQ(report.last_epoch, 1u);
  EXPECT_TRUE(report.wal_stop_reason.empty()) << report.wal_stop_reason;
  EXPECT_EQ(target_.StateDigest(), source_.StateDigest());
}

TEST_F(RecoveryTest, WalAloneReproducesTheStateWithoutSnapshots) {
  PutObjects(source_, 0, 300);
  LogToWal();
  RecoveryReport report = Recover(target_);
  EXPECT_TRUE(report.snapshot_id.empty());
  EXPECT_EQ(report.wal_records_replayed, source_.applied_seq());
  EXPECT_EQ(target_.StateDigest(), source_.StateDigest());
}

TEST_F(RecoveryTest, LeasesAreFreshAfterRecovery) {
  PutObjects(source_, 0, 30);                             // key-1: COMPLETE, from the snapshot
  ASSERT_TRUE(source_.GetReplicaList("key-1", 10).ok());  // lease expired long before now_ms
  LogToWal();
  TakeSnapshot();
  PutObjects(source_, 30, 30);  // key-31: COMPLETE, from the WAL tail
  LogToWal();
  const uint64_t now = 1'000'000;
  Recover(target_, now);
  for (const char* key : {"key-1", "key-31"}) {
    EXPECT_EQ(target_.Remove(key, now + 1).code(), ErrorCode::kObjectHasLease) << key;
  }
  meta::RemoveAllResult all = target_.RemoveAll(now + 1);
  EXPECT_EQ(all.removed, 0u);
  EXPECT_TRUE(target_.ExistKey("key-1"));
  EXPECT_TRUE(target_.ExistKey("key-31"));
  // And they do expire one lease TTL later, as on any leader.
  EXPECT_TRUE(target_.Remove("key-1", now + meta::Options().lease_ttl_ms + 1).ok());
}

TEST_F(RecoveryTest, CorruptNewestSnapshotFallsBackToTheOlderOneAndALongerTail) {
  PutObjects(source_, 0, 200);
  LogToWal();
  SnapshotInfo older = TakeSnapshot();
  PutObjects(source_, 200, 200);
  LogToWal();
  SnapshotInfo newest = TakeSnapshot();
  PutObjects(source_, 400, 50);
  LogToWal();
  // Damage the newest one in a block: only a full load notices.
  const std::string path = snapshots_.PathOf(newest.id);
  FlipByte(path, FileSize(path) / 2);

  RecoveryReport report = Recover(target_);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].id, newest.id);
  EXPECT_NE(report.skipped[0].reason.find("checksum mismatch"), std::string::npos)
      << report.skipped[0].reason;
  EXPECT_EQ(report.snapshot_id, older.id);
  EXPECT_EQ(report.wal_records_replayed, source_.applied_seq() - older.seq);
  EXPECT_EQ(target_.StateDigest(), source_.StateDigest());
}

TEST_F(RecoveryTest, ForeignSnapshotIsSkipped) {
  PutObjects(source_, 0, 100);
  LogToWal();
  ASSERT_TRUE(snapshots_.Write(*source_.CaptureImage(), {"someone-else", 1, 0}).ok());
  RecoveryReport report = Recover(target_);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].reason.find("foreign snapshot"), std::string::npos);
  EXPECT_TRUE(report.snapshot_id.empty());
  EXPECT_EQ(target_.StateDigest(), source_.StateDigest());  // all from the WAL
}

TEST_F(RecoveryTest, TornWalTailStopsAtTheLastWholeRecordAndAppendsContinue) {
  PutObjects(source_, 0, 100);
  LogToWal();
  const uint64_t whole = source_.applied_seq();
  PutObjects(source_, 100, 1);  // PUT_START + PUT_END: the last record gets torn
  LogToWal();
  wal_.reset();
  auto segments = oplog::wal::ListSegments(WalDir());
  ASSERT_TRUE(segments.ok());
  const std::string last = segments->back().path;
  Truncate(last, FileSize(last) - 5);

  RecoveryReport report = Recover(target_);
  EXPECT_EQ(report.last_seq, whole + 1);
  EXPECT_TRUE(report.wal_stop_reason.empty()) << report.wal_stop_reason;
  ASSERT_EQ(report.wal_notes.size(), 1u);
  EXPECT_NE(report.wal_notes[0].find("cut a torn last record"), std::string::npos);
  EXPECT_EQ(target_.GetStats().processing_count, 35u);  // key-100 too: its PUT_END was torn

  // The node continues where recovery left it; a second recovery sees old + new entries.
  oplog::WalOptions options{WalDir(), kCluster};
  auto wal = oplog::WalWriter::Open(options, report.last_seq + 1);
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  target_sink_.StartAt(report.last_seq + 1);
  ASSERT_TRUE(target_.PutEnd("key-100", "writer", 20).ok());
  ASSERT_TRUE(wal.value()->AppendBatch(target_sink_.Since(0)).ok());
  wal.value().reset();
  SealingSink sink;
  meta::MetaStore again(meta::Options(), &sink);
  StatusOr<RecoveryReport> second = RecoverState(&again, snapshots_, WalDir(), kCluster, 0);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->wal_notes.empty());
  EXPECT_EQ(again.StateDigest(), target_.StateDigest());
}

TEST_F(RecoveryTest, MidWalCorruptionStopsBeforeItAndSetsTheRestAside) {
  PutObjects(source_, 0, 600);  // many 16 KiB segments
  LogToWal();
  wal_.reset();
  auto segments = oplog::wal::ListSegments(WalDir());
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 3u);
  const oplog::wal::SegmentFile& middle = segments.value()[1];
  FlipByte(middle.path, middle.bytes / 2);

  RecoveryReport report = Recover(target_);
  EXPECT_NE(report.wal_stop_reason.find("corrupt in the middle"), std::string::npos)
      << report.wal_stop_reason;
  EXPECT_GE(report.last_seq, middle.first_seq);
  EXPECT_LT(report.last_seq, source_.applied_seq());
  // Exactly the log prefix: equal to a store that applied the entries up to last_seq.
  SealingSink sink;
  meta::MetaStore prefix(meta::Options(), &sink);
  for (const auto& e : sink_.Since(0)) {
    if (e.sequence_id() <= report.last_seq) {
      ASSERT_TRUE(prefix.Apply(e).ok());
    }
  }
  EXPECT_EQ(target_.StateDigest(), prefix.StateDigest());
  // The unusable rest was moved aside, so the WAL now ends at last_seq and a writer can go on.
  auto after = oplog::wal::ListSegments(WalDir());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 2u);
  EXPECT_TRUE(oplog::WalWriter::Open({WalDir(), kCluster}, report.last_seq + 1).ok());
}

TEST_F(RecoveryTest, GapBetweenSnapshotAndWalStopsAtTheSnapshot) {
  PutObjects(source_, 0, 200);
  LogToWal();
  SnapshotInfo older = TakeSnapshot();
  PutObjects(source_, 200, 300);
  LogToWal();
  SnapshotInfo newest = TakeSnapshot();
  PutObjects(source_, 500, 10);
  LogToWal();
  ASSERT_TRUE(wal_->Sync().ok());
  StatusOr<int> removed = wal_->RemoveCoveredBy(newest.seq);  // past the older snapshot
  ASSERT_TRUE(removed.ok());
  ASSERT_GT(removed.value(), 0);
  ASSERT_TRUE(snapshots_.Remove(newest.id).ok());

  RecoveryReport report = Recover(target_);
  EXPECT_EQ(report.snapshot_id, older.id);
  EXPECT_NE(report.wal_stop_reason.find("gap"), std::string::npos) << report.wal_stop_reason;
  EXPECT_EQ(report.last_seq, older.seq);
  EXPECT_TRUE(oplog::WalWriter::Open({WalDir(), kCluster}, report.last_seq + 1).ok());
}

TEST_F(RecoveryTest, SnapshotNewerThanTheWalEndIsTheRecoveredState) {
  PutObjects(source_, 0, 100);
  LogToWal();
  ASSERT_TRUE(wal_->Sync().ok());
  wal_.reset();  // the WAL stops here (e.g. its tail was lost); the snapshot goes further
  PutObjects(source_, 100, 100);
  SnapshotInfo snap = TakeSnapshot();
  RecoveryReport first = Recover(target_);
  EXPECT_EQ(first.snapshot_seq, snap.seq);
  EXPECT_EQ(first.wal_records_replayed, 0u);
  EXPECT_TRUE(first.wal_stop_reason.empty());
  EXPECT_EQ(target_.StateDigest(), source_.StateDigest());

  // The node goes on logging after the snapshot; the next recovery uses both.
  auto wal = oplog::WalWriter::Open({WalDir(), kCluster}, first.last_seq + 1);
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  target_sink_.StartAt(first.last_seq + 1);
  PutObjects(target_, 200, 20);
  ASSERT_TRUE(wal.value()->AppendBatch(target_sink_.Since(0)).ok());
  wal.value().reset();
  SealingSink sink;
  meta::MetaStore again(meta::Options(), &sink);
  StatusOr<RecoveryReport> second = RecoverState(&again, snapshots_, WalDir(), kCluster, 0);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->wal_records_replayed, target_.applied_seq() - snap.seq);
  EXPECT_EQ(again.StateDigest(), target_.StateDigest());
}

TEST_F(RecoveryTest, RefusesAStoreThatIsNotFresh) {
  EXPECT_EQ(RecoverState(&source_, snapshots_, WalDir(), kCluster, 0).status().code(),
            ErrorCode::kInvalidParams);
}

}  // namespace
}  // namespace tandem::snapshot::testing
