// Full sync from a stored snapshot (issue 5): a standby out of the window gets the primary's
// newest snapshot plus the log after it when the window still holds that log, and a live image
// otherwise (snapshot older than the window, damaged, none). The snapshots are real files in a
// LocalDirStore, offered through the node's SnapshotImageSource; the standby side is unchanged.
// Also: MinNeededSeq, what the node's OpLog truncation after a snapshot spares.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "harness.h"
#include "scratch_dir.h"
#include "server/snapshot_image_source.h"
#include "snapshot/local_dir_store.h"

namespace tandem::replication::testing {
namespace {

using ::testing::HasSubstr;

// Large enough that a snapshot taken a few writes ago is still joined by the window, small
// enough that a burst of writes pushes it out.
constexpr oplog::LogBufferOptions kWindow{.max_bytes = 1 << 30, .max_entries = 300};

using tandem::testing::ScratchDir;

class SnapshotSyncTest : public ::testing::Test {
 protected:
  SnapshotSyncTest()
      : primary_(1, kWindow),
        snapshots_(dir_.path() + "/snapshots", 3, snapshot::WriteOptions{.objects_per_block = 50}),
        source_(&snapshots_, kCluster) {
    primary_.primary.SetImageSource(&source_);
  }

  // A snapshot of the primary's current state, as the node's Durability writes one.
  snapshot::SnapshotInfo TakeSnapshot() {
    std::unique_ptr<meta::StateImage> image = primary_.store.CaptureImage();
    auto written =
        snapshots_.Write(*image, {.cluster_id = kCluster, .epoch = 1, .created_ms = 1000});
    EXPECT_TRUE(written.ok()) << written.status().ToString();
    return written.ok() ? written.value() : snapshot::SnapshotInfo{};
  }

  void FlipByteInTheMiddle(const snapshot::SnapshotInfo& info) {
    const std::string path = snapshots_.PathOf(info.id);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(std::filesystem::file_size(path) / 2);
    f.seekg(middle);
    const char byte = static_cast<char>(f.get());
    f.seekp(middle);
    f.put(static_cast<char>(byte ^ 0x5a));
  }

  StandbyStatus Seen(const std::string& id = "s1") {
    for (const StandbyStatus& s : primary_.primary.Standbys()) {
      if (s.standby_id == id) return s;
    }
    return {};
  }

  ScratchDir dir_;
  PrimaryNode primary_;
  snapshot::LocalDirStore snapshots_;
  server::SnapshotImageSource source_;
};

TEST_F(SnapshotSyncTest, NewStandbyOutOfTheWindowGetsTheSnapshotThenTheLog) {
  RunWorkload(primary_.store, 500, 31);
  const snapshot::SnapshotInfo snap = TakeSnapshot();
  RunWorkload(primary_.store, 40, 32);  // the log after the snapshot, all in the window
  ASSERT_GT(primary_.log.first_seq(), 1u);
  ASSERT_LE(primary_.log.first_seq(), snap.seq + 1);
  ASSERT_GT(primary_.store.applied_seq(), snap.seq);

  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  EXPECT_EQ(standby.store.StateDigest(), primary_.store.StateDigest());
  EXPECT_EQ(standby.store.GetStats().object_count, primary_.store.GetStats().object_count);
  const StandbyStatus seen = Seen();
  EXPECT_EQ(seen.full_syncs, 1u);
  EXPECT_EQ(seen.full_syncs_from_snapshot, 1u);
  EXPECT_EQ(seen.last_image, "snapshot " + snap.id + " at seq " + std::to_string(snap.seq));
  EXPECT_EQ(standby.follower->Status().full_syncs, 1u);
  // The standby's window restarted after the snapshot's seq and holds the log after it.
  EXPECT_EQ(standby.log.first_seq(), snap.seq + 1);
  EXPECT_EQ(standby.log.last_seq(), standby.store.applied_seq());

  // And it streams on like any other standby.
  RunWorkload(primary_.store, 30, 33);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  EXPECT_EQ(Seen().full_syncs, 1u);
}

TEST_F(SnapshotSyncTest, SnapshotAtTheLastSeqServesWithNothingAfterIt) {
  RunWorkload(primary_.store, 500, 34);
  const snapshot::SnapshotInfo snap = TakeSnapshot();
  ASSERT_EQ(snap.seq, primary_.store.applied_seq());
  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  EXPECT_EQ(Seen().full_syncs_from_snapshot, 1u);
  RunWorkload(primary_.store, 10, 35);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
}

TEST_F(SnapshotSyncTest, SnapshotOlderThanTheWindowFallsBackToALiveImage) {
  RunWorkload(primary_.store, 100, 36);
  const snapshot::SnapshotInfo snap = TakeSnapshot();
  RunWorkload(primary_.store, 500, 37);  // the entries after the snapshot leave the window
  ASSERT_GT(primary_.log.first_seq(), snap.seq + 1);

  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  const StandbyStatus seen = Seen();
  EXPECT_EQ(seen.full_syncs, 1u);
  EXPECT_EQ(seen.full_syncs_from_snapshot, 0u);
  EXPECT_THAT(seen.last_image, HasSubstr("live image at seq"));
}

TEST_F(SnapshotSyncTest, DamagedSnapshotFallsBackToALiveImage) {
  RunWorkload(primary_.store, 500, 38);
  const snapshot::SnapshotInfo snap = TakeSnapshot();
  RunWorkload(primary_.store, 20, 39);
  FlipByteInTheMiddle(snap);

  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  EXPECT_EQ(standby.store.StateDigest(), primary_.store.StateDigest());
  const StandbyStatus seen = Seen();
  EXPECT_EQ(seen.full_syncs, 1u);
  EXPECT_EQ(seen.full_syncs_from_snapshot, 0u);
  EXPECT_THAT(seen.last_image, HasSubstr("live image"));
}

TEST_F(SnapshotSyncTest, DamagedNewestSnapshotFallsBackToTheOlderOneInTheWindow) {
  RunWorkload(primary_.store, 400, 40);
  const snapshot::SnapshotInfo older = TakeSnapshot();
  RunWorkload(primary_.store, 20, 41);
  const snapshot::SnapshotInfo newest = TakeSnapshot();
  RunWorkload(primary_.store, 20, 42);
  ASSERT_LE(primary_.log.first_seq(), older.seq + 1);
  FlipByteInTheMiddle(newest);

  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  const StandbyStatus seen = Seen();
  EXPECT_EQ(seen.full_syncs_from_snapshot, 1u);
  EXPECT_EQ(seen.last_image, "snapshot " + older.id + " at seq " + std::to_string(older.seq));
}

// A stored image that breaks part-way (the file changed after it was checked): the stream is
// abandoned, the standby drops the partial image and asks again, and gets a good one.
class BreaksOnceSource : public ImageSource {
 public:
  explicit BreaksOnceSource(ImageSource* inner) : inner_(inner) {}
  std::unique_ptr<StoredImage> OpenNewest(uint64_t min_seq, uint64_t max_seq) override {
    std::unique_ptr<StoredImage> image = inner_->OpenNewest(min_seq, max_seq);
    if (image == nullptr || broke_.exchange(true)) return image;
    return std::make_unique<Broken>(std::move(image));
  }

 private:
  class Broken : public StoredImage {
   public:
    explicit Broken(std::unique_ptr<StoredImage> inner) : inner_(std::move(inner)) {}
    const std::string& id() const override { return inner_->id(); }
    const tandem::v1::StateHeader& header() const override { return inner_->header(); }
    Status ForEachChunk(const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) override {
      int sent = 0;
      Status s = inner_->ForEachChunk([&](const tandem::v1::ObjectChunk& chunk) {
        if (sent++ == 2) return false;
        return emit(chunk);
      });
      if (!s.ok()) return s;
      return Status(ErrorCode::kInternal, "block 2 checksum mismatch (test)");
    }

   private:
    std::unique_ptr<StoredImage> inner_;
  };

  ImageSource* const inner_;
  std::atomic<bool> broke_{false};
};

TEST_F(SnapshotSyncTest, SnapshotBreakingMidStreamIsNeverHalfLoaded) {
  BreaksOnceSource breaks(&source_);
  primary_.primary.SetImageSource(&breaks);
  RunWorkload(primary_.store, 500, 43);
  TakeSnapshot();
  RunWorkload(primary_.store, 20, 44);

  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  const StandbyStatus seen = Seen();
  EXPECT_EQ(seen.full_syncs, 2u);
  EXPECT_EQ(seen.full_syncs_from_snapshot, 2u);
  EXPECT_EQ(standby.follower->Status().full_syncs, 1u);  // only the whole image was loaded
  EXPECT_EQ(standby.store.StateDigest(), primary_.store.StateDigest());
}

TEST_F(SnapshotSyncTest, MinNeededSeqFollowsConnectedStandbysOnly) {
  EXPECT_EQ(primary_.primary.MinNeededSeq(), UINT64_MAX);
  RunWorkload(primary_.store, 50, 45);
  StandbyNode standby;
  standby.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, standby); }));
  EXPECT_EQ(primary_.primary.MinNeededSeq(), primary_.store.applied_seq() + 1);

  StandbyNode second("s2");
  second.StartFollower(primary_.address);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, second); }));
  standby.StopFollower();  // disconnected: spared no more
  const uint64_t stopped_at = standby.store.applied_seq();
  ASSERT_TRUE(WaitFor([&] { return Seen("s1").state == StandbyState::kDisconnected; }));
  RunWorkload(primary_.store, 20, 46);
  ASSERT_TRUE(WaitFor([&] { return Settled(primary_, second); }));
  EXPECT_EQ(primary_.primary.MinNeededSeq(), primary_.store.applied_seq() + 1);
  EXPECT_GT(primary_.primary.MinNeededSeq(), stopped_at + 1);
  second.StopFollower();
  ASSERT_TRUE(WaitFor([&] { return primary_.primary.MinNeededSeq() == UINT64_MAX; }));
}

}  // namespace
}  // namespace tandem::replication::testing
