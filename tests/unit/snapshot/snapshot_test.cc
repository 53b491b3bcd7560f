// Snapshot files: round trip, every kind of damage refused whole, foreign and truncated files,
// retention, and a snapshot taken while writes keep coming.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "snapshot/local_dir_store.h"
#include "snapshot/reader.h"
#include "test_util.h"

namespace tandem::snapshot::testing {
namespace {

constexpr char kCluster[] = "cluster-a";
constexpr int kObjects = 3000;
constexpr size_t kPerBlock = 200;  // 15 blocks

uint32_t U32At(const std::string& path, uint64_t offset) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  unsigned char b[4] = {};
  f.read(reinterpret_cast<char*>(b), 4);
  return b[0] | b[1] << 8 | b[2] << 16 | static_cast<uint32_t>(b[3]) << 24;
}

// Offsets of every block frame in a snapshot file.
std::vector<uint64_t> BlockOffsets(const std::string& path) {
  std::vector<uint64_t> out;
  uint64_t at = kPreambleBytes + U32At(path, 12) + 8;
  const uint64_t end = FileSize(path) - kFooterBytes;
  while (at < end) {
    out.push_back(at);
    at += kBlockFrameBytes + U32At(path, at);
  }
  return out;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MountSegments(source_);
    PutObjects(source_, 0, kObjects);
    ASSERT_TRUE(source_.Remove("key-1", 20).ok());  // a freed hole in the allocator
    StatusOr<SnapshotInfo> info = store_.Write(*source_.CaptureImage(), Meta());
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    path_ = store_.PathOf(info->id);
  }

  static SnapshotMeta Meta() { return {kCluster, 3, 1234}; }

  // Opens and loads `path` into `target`; the first error, or OK.
  static Status Load(const std::string& path, meta::MetaStore& target,
                     std::string_view cluster = kCluster) {
    StatusOr<std::unique_ptr<SnapshotReader>> reader = SnapshotReader::Open(path, cluster);
    if (!reader.ok()) return reader.status();
    return reader.value()->LoadInto(&target, 5000);
  }

  // A copy of the good snapshot with one byte flipped must be refused with `reason`, leaving a
  // fresh store empty and emptying a store that held the good state.
  void ExpectFlipRefused(uint64_t offset, const std::string& reason) {
    SCOPED_TRACE("flip at offset " + std::to_string(offset));
    std::string bad = dir_.Sub("bad.snap");
    std::filesystem::copy_file(path_, bad, std::filesystem::copy_options::overwrite_existing);
    FlipByte(bad, offset);
    meta::MetaStore fresh(meta::Options(), &sink_);
    Status s = Load(bad, fresh);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(reason), std::string::npos) << s.message();
    EXPECT_TRUE(IsEmpty(fresh));
    meta::MetaStore loaded(meta::Options(), &sink_);
    ASSERT_TRUE(Load(path_, loaded).ok());
    EXPECT_FALSE(Load(bad, loaded).ok());
    if (SnapshotReader::Open(bad, kCluster).ok()) {
      EXPECT_TRUE(IsEmpty(loaded));
    }
  }

  TempDir dir_;
  SealingSink sink_;
  meta::MetaStore source_{meta::Options(), &sink_};
  LocalDirStore store_{dir_.Sub("snaps"), 3, WriteOptions{kPerBlock}};
  std::string path_;
};

TEST_F(SnapshotTest, RoundTripKeepsStateSeqAndEpoch) {
  meta::MetaStore restored(meta::Options(), &sink_);
  ASSERT_TRUE(Load(path_, restored).ok());
  EXPECT_EQ(restored.StateDigest(), source_.StateDigest());
  EXPECT_EQ(restored.applied_seq(), source_.applied_seq());
  EXPECT_EQ(restored.applied_epoch(), source_.applied_epoch());
  meta::Stats a = restored.GetStats(), b = source_.GetStats();
  EXPECT_EQ(a.object_count, b.object_count);
  EXPECT_EQ(a.processing_count, b.processing_count);
  EXPECT_EQ(a.bytes_used, b.bytes_used);
  EXPECT_GT(b.processing_count, 0u);

  StatusOr<std::unique_ptr<SnapshotReader>> reader = SnapshotReader::Open(path_, kCluster);
  ASSERT_TRUE(reader.ok());
  const SnapshotHeader& h = reader.value()->header();
  EXPECT_EQ(h.cluster_id, kCluster);
  EXPECT_EQ(h.epoch, 3u);
  EXPECT_EQ(h.seq, source_.applied_seq());
  EXPECT_EQ(h.object_count, uint64_t{kObjects - 1});
  EXPECT_EQ(h.segment_count, 3u);
  EXPECT_EQ(h.created_ms, 1234u);
  EXPECT_TRUE(reader.value()->Verify().ok());
  EXPECT_EQ(BlockOffsets(path_).size(), (kObjects - 1 + kPerBlock - 1) / kPerBlock);
}

TEST_F(SnapshotTest, EmptyStateRoundTrips) {
  SealingSink sink;
  meta::MetaStore empty(meta::Options(), &sink);
  StatusOr<SnapshotInfo> info = store_.Write(*empty.CaptureImage(), Meta());
  ASSERT_TRUE(info.ok());
  meta::MetaStore restored(meta::Options(), &sink);
  ASSERT_TRUE(Load(store_.PathOf(info->id), restored).ok());
  EXPECT_TRUE(IsEmpty(restored));
}

TEST_F(SnapshotTest, FlippedHeaderBytesAreRefused) {
  const uint64_t blocks_begin = BlockOffsets(path_).front();
  ExpectFlipRefused(0, "bad magic");
  ExpectFlipRefused(8, "format version");
  ExpectFlipRefused(kPreambleBytes + 8, "header checksum mismatch");  // the seq field
  ExpectFlipRefused(blocks_begin - 40, "header checksum mismatch");   // inside StateHeader
  ExpectFlipRefused(blocks_begin - 3, "header checksum mismatch");    // the checksum itself
}

TEST_F(SnapshotTest, FlippedBlockBytesAreRefusedNamingTheBlock) {
  const std::vector<uint64_t> blocks = BlockOffsets(path_);
  ASSERT_GE(blocks.size(), 10u);
  ExpectFlipRefused(blocks[2], "block 2");                          // payload length
  ExpectFlipRefused(blocks[2] + 4, "block 2 checksum mismatch");    // object count
  ExpectFlipRefused(blocks[2] + 9, "block 2 checksum mismatch");    // checksum
  ExpectFlipRefused(blocks[7] + 500, "block 7 checksum mismatch");  // payload
  const uint64_t last = blocks.size() - 1;
  ExpectFlipRefused(FileSize(path_) - kFooterBytes - 2,
                    "block " + std::to_string(last) + " checksum mismatch");
}

TEST_F(SnapshotTest, FlippedFooterBytesAreRefusedAfterEveryBlockLoaded) {
  const uint64_t footer = FileSize(path_) - kFooterBytes;
  ExpectFlipRefused(footer, "footer counts");                  // block count
  ExpectFlipRefused(footer + 8, "footer counts");              // object count
  ExpectFlipRefused(footer + 16, "footer checksum mismatch");  // file checksum
  ExpectFlipRefused(footer + 28, "footer magic missing");
}

TEST_F(SnapshotTest, TruncatedFileIsRefused) {
  const std::vector<uint64_t> blocks = BlockOffsets(path_);
  for (uint64_t size : {uint64_t{10}, blocks[0] - 5, blocks[4] + 100, FileSize(path_) - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(size));
    std::string bad = dir_.Sub("short.snap");
    std::filesystem::copy_file(path_, bad, std::filesystem::copy_options::overwrite_existing);
    Truncate(bad, size);
    meta::MetaStore fresh(meta::Options(), &sink_);
    EXPECT_FALSE(Load(bad, fresh).ok());
    EXPECT_TRUE(IsEmpty(fresh));
  }
}

TEST_F(SnapshotTest, ForeignClusterIsRefused) {
  meta::MetaStore fresh(meta::Options(), &sink_);
  Status s = Load(path_, fresh, "cluster-b");
  EXPECT_NE(s.message().find("foreign snapshot: cluster id 'cluster-a', expected 'cluster-b'"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(IsEmpty(fresh));
}

TEST_F(SnapshotTest, RetentionKeepsTheNewestValidOnes) {
  for (int round = 1; round <= 4; ++round) {
    PutObjects(source_, kObjects + round * 10, 10);
    ASSERT_TRUE(store_.Write(*source_.CaptureImage(), Meta()).ok());
  }
  StatusOr<std::vector<SnapshotInfo>> list = store_.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ(list->front().seq, source_.applied_seq());
  EXPECT_GT(list.value()[0].seq, list.value()[1].seq);
  EXPECT_GT(list.value()[1].seq, list.value()[2].seq);
}

TEST_F(SnapshotTest, InvalidSnapshotsDoNotCountForRetention) {
  LocalDirStore one(dir_.Sub("one"), /*retention=*/1, WriteOptions{kPerBlock});
  ASSERT_TRUE(one.Write(*source_.CaptureImage(), Meta()).ok());  // s1
  PutObjects(source_, kObjects, 5);
  StatusOr<SnapshotInfo> s2 = one.Write(*source_.CaptureImage(), Meta());
  ASSERT_TRUE(s2.ok());
  ASSERT_EQ(one.List()->size(), 1u);  // s1 gone: s2 is the one valid snapshot kept
  Truncate(one.PathOf(s2->id), FileSize(one.PathOf(s2->id)) - 7);  // s2 now invalid

  // A write with an older seq (e.g. a restored node): the newer invalid s2 is kept, uncounted.
  SealingSink sink;
  meta::MetaStore older(meta::Options(), &sink);
  MountSegments(older);
  ASSERT_TRUE(one.Write(*older.CaptureImage(), Meta()).ok());
  EXPECT_EQ(one.List()->size(), 2u);
  PutObjects(source_, kObjects + 5, 5);
  ASSERT_TRUE(one.Write(*source_.CaptureImage(), Meta()).ok());  // s3, newest and valid
  ASSERT_EQ(one.List()->size(), 1u);
  EXPECT_EQ(one.List()->front().seq, source_.applied_seq());
}

TEST_F(SnapshotTest, WriteOfAnOlderEpochIsFenced) {
  PutObjects(source_, kObjects, 5);
  StatusOr<SnapshotInfo> late = store_.Write(*source_.CaptureImage(), {kCluster, 2, 0});
  EXPECT_EQ(late.status().code(), ErrorCode::kFenced);  // the store holds epoch 3
  StatusOr<SnapshotInfo> ok = store_.Write(*source_.CaptureImage(), {kCluster, 4, 0});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->epoch, 4u);
  EXPECT_EQ(ok->objects, uint64_t{kObjects + 4});
  EXPECT_GT(ok->bytes, 0u);
}

TEST_F(SnapshotTest, StaleTempFilesAreRemovedByTheNextWrite) {
  std::string stale = store_.dir() + "/" + TempFileName(7);
  std::ofstream(stale) << "half a snapshot";
  ASSERT_TRUE(store_.Write(*source_.CaptureImage(), Meta()).ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
}

// One thread keeps writing to a leader-like store while another snapshots it: the snapshot must
// be exactly the state at its seq, i.e. equal to a store that applied the log up to that seq.
TEST(SnapshotWhileWritingTest, SnapshotEqualsTheLogPrefixAtItsSeq) {
  TempDir dir;
  oplog::LogBuffer buffer({});
  oplog::Sequencer sequencer(&buffer, 1, 1);
  meta::MetaStore leader(meta::Options(), &sequencer);
  MountSegments(leader);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 200000 && !stop.load(); ++i) {
      std::string key = "w-" + std::to_string(i);
      meta::PutStartArgs args;
      args.key = key;
      args.value_size = 64 + i % 500;
      args.client_id = "c";
      if (!leader.PutStart(args, 100 + i).ok()) continue;
      if (i % 4 != 0) (void)leader.PutEnd(key, "c", 100 + i);
      if (i % 9 == 0) (void)leader.PutRevoke(key, "c", 100 + i);
    }
  });
  for (int i = 0; i < 2000 && buffer.last_seq() < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  LocalDirStore store(dir.Sub("snaps"), 3, WriteOptions{256});
  StatusOr<SnapshotInfo> info = store.Write(*leader.CaptureImage(), {kCluster, 1, 0});
  const uint64_t after_snapshot = buffer.last_seq();
  stop = true;
  writer.join();
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->seq, 0u);
  EXPECT_GT(leader.applied_seq(), 0u);

  SealingSink sink;
  meta::MetaStore from_snapshot(meta::Options(), &sink);
  StatusOr<std::unique_ptr<SnapshotReader>> reader = store.Open(info->id, kCluster);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader.value()->LoadInto(&from_snapshot, 0).ok());

  meta::MetaStore from_log(meta::Options(), &sink);
  StatusOr<std::vector<tandem::v1::OpLogEntry>> entries = buffer.EntriesSince(0, info->seq);
  ASSERT_TRUE(entries.ok());
  for (const tandem::v1::OpLogEntry& e : entries.value()) ASSERT_TRUE(from_log.Apply(e).ok());
  EXPECT_EQ(from_log.applied_seq(), info->seq);
  EXPECT_EQ(from_snapshot.applied_seq(), info->seq);
  EXPECT_EQ(from_snapshot.StateDigest(), from_log.StateDigest());
  RecordProperty("writes_during_snapshot", std::to_string(after_snapshot - info->seq));
}

}  // namespace
}  // namespace tandem::snapshot::testing
