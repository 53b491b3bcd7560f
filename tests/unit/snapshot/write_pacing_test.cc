// Paced snapshot writes: the pacer's arithmetic, a paced file's bytes, the per-block hook, and a
// paced snapshot that loads back into the same state.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "snapshot/file_io.h"
#include "snapshot/local_dir_store.h"
#include "snapshot/reader.h"
#include "snapshot/write_pacer.h"
#include "snapshot/writer.h"
#include "test_util.h"

namespace tandem::snapshot::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr char kCluster[] = "cluster-a";
constexpr uint64_t kMiB = 1u << 20;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(WritePacerTest, OffNeverWaits) {
  WritePacer off(0);
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.Delay(1ull << 40, nanoseconds(0)), nanoseconds(0));
}

TEST(WritePacerTest, WaitsUntilTheBytesAreDueAtTheRate) {
  WritePacer pacer(kMiB);  // 1 MiB/s
  EXPECT_TRUE(pacer.enabled());
  EXPECT_EQ(pacer.Delay(2 * kMiB, milliseconds(500)), milliseconds(1500));
  EXPECT_EQ(pacer.Delay(kMiB / 2, nanoseconds(0)), milliseconds(500));
  EXPECT_EQ(pacer.Delay(0, nanoseconds(0)), nanoseconds(0));
}

TEST(WritePacerTest, AWriterBehindScheduleIsNotSlowedFurther) {
  WritePacer pacer(kMiB);
  EXPECT_EQ(pacer.Delay(2 * kMiB, seconds(3)), nanoseconds(0));
  EXPECT_EQ(pacer.Delay(2 * kMiB, seconds(2)), nanoseconds(0));
}

TEST(WritePacerTest, HugeCountsDoNotOverflow) {
  WritePacer slow(1);  // 1 byte/s: 2^62 bytes are due far past what nanoseconds can hold
  EXPECT_EQ(slow.Delay(1ull << 62, nanoseconds(0)), nanoseconds(INT64_MAX));
  WritePacer fast(1ull << 40);  // 1 TiB/s
  EXPECT_EQ(fast.Delay(1ull << 40, nanoseconds(0)), seconds(1));
}

TEST(PacedFileTest, PacedAndUnpacedFilesHoldTheSameBytes) {
  TempDir dir;
  std::string data;
  for (int i = 0; data.size() < 5 * kMiB + 12345; ++i) data += "record-" + std::to_string(i) + ";";
  for (uint64_t rate : {uint64_t{0}, uint64_t{1} << 40}) {
    SCOPED_TRACE("rate " + std::to_string(rate));
    const std::string path = dir.Sub("f-" + std::to_string(rate));
    WritableFile file;
    ASSERT_TRUE(file.Open(path).ok());
    file.Pace(rate, 300'000);  // pieces that do not divide the buffer or the data evenly
    // Appends of every size: small ones, one bigger than the write buffer, and a tail.
    size_t at = 0;
    for (size_t n : {size_t{10}, size_t{4096}, size_t{5} * kMiB - 5000}) {
      ASSERT_TRUE(file.Append(std::string_view(data).substr(at, n)).ok());
      at += n;
    }
    ASSERT_TRUE(file.Append(std::string_view(data).substr(at)).ok());
    ASSERT_TRUE(file.Sync().ok());
    ASSERT_TRUE(file.Close().ok());
    EXPECT_EQ(file.bytes(), data.size());
    EXPECT_TRUE(ReadAll(path) == data);
  }
}

TEST(PacedFileTest, APacedFileTakesAtLeastItsBytesOverTheRate) {
  // A lower bound only (sleeping cannot end early); nothing here depends on the machine's speed.
  TempDir dir;
  WritableFile file;
  ASSERT_TRUE(file.Open(dir.Sub("paced")).ok());
  file.Pace(8 * kMiB, kMiB);
  const std::string mib(kMiB, 'x');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file.Append(mib).ok());
  ASSERT_TRUE(file.Sync().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(370));  // 3/8 s
  ASSERT_TRUE(file.Close().ok());
}

constexpr size_t kPiece = 64 * 1024;

// Appends `count` pieces of kPiece bytes, then syncs them.
void AppendPieces(WritableFile& file, int count) {
  const std::string piece(kPiece, 'x');
  for (int i = 0; i < count; ++i) ASSERT_TRUE(file.Append(piece).ok());
  ASSERT_TRUE(file.Sync().ok());
}

TEST(PacedFileTest, AStoppingNodeWritesTheRestUnpaced) {
  TempDir dir;
  std::atomic<bool> stop{false};
  WritableFile file;
  ASSERT_TRUE(file.Open(dir.Sub("paced")).ok());
  file.Pace(kPiece, kPiece, &stop);  // 64 KiB/s: 1 MiB would take 16 s
  AppendPieces(file, 2);             // two pieces, each due a second after the one before
  EXPECT_GT(file.paced_seconds(), 0.5);
  const double before = file.paced_seconds();
  stop = true;
  AppendPieces(file, 14);
  EXPECT_EQ(file.paced_seconds(), before);  // no more waiting once the node stops
  ASSERT_TRUE(file.Close().ok());
  EXPECT_EQ(file.bytes(), 16 * kPiece);
}

TEST(PacedFileTest, AnIdleNodeWritesUnpaced) {
  TempDir dir;
  WritableFile file;
  ASSERT_TRUE(file.Open(dir.Sub("idle")).ok());
  int asked = 0;
  file.Pace(kPiece, kPiece, nullptr, [&asked] {
    ++asked;
    return true;
  });  // 64 KiB/s: 1 MiB would take 16 s
  AppendPieces(file, 16);
  EXPECT_EQ(file.paced_seconds(), 0.0);
  EXPECT_EQ(asked, 16);  // once per synced piece
  ASSERT_TRUE(file.Close().ok());
  EXPECT_EQ(file.bytes(), 16 * kPiece);
}

TEST(PacedFileTest, PacingResumesAfterIdlePiecesWithoutCountingThem) {
  TempDir dir;
  WritableFile file;
  ASSERT_TRUE(file.Open(dir.Sub("resume")).ok());
  int asked = 0;
  // 128 KiB/s and 64 KiB pieces: each paced piece is due 0.5 s after the one before.
  file.Pace(2 * kPiece, kPiece, nullptr, [&asked] { return ++asked <= 8; });
  AppendPieces(file, 10);
  // Eight idle pieces, then two paced ones (~1 s). Had the idle bytes counted against the
  // average from the first write, the two would have waited ~5 s in all.
  EXPECT_GT(file.paced_seconds(), 0.25);
  EXPECT_LT(file.paced_seconds(), 2.5);
  ASSERT_TRUE(file.Close().ok());
  EXPECT_EQ(file.bytes(), 10 * kPiece);
}

class PacedSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MountSegments(source_);
    PutObjects(source_, 0, 1000);
  }
  TempDir dir_;
  SealingSink sink_;
  meta::MetaStore source_{meta::Options(), &sink_};
};

TEST_F(PacedSnapshotTest, TheHookRunsOncePerBlock) {
  int calls = 0;
  SnapshotMeta meta{kCluster, 1, 0};
  meta.between_blocks = [&calls] { ++calls; };
  WriteOptions options;
  options.objects_per_block = 100;
  StatusOr<WrittenSnapshot> written =
      WriteSnapshotFile(*source_.CaptureImage(), meta, dir_.path(), options);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_GE(written->blocks, 10u);  // 1000 objects, 100 a block (the dedup window may add one)
  EXPECT_EQ(static_cast<uint64_t>(calls), written->blocks);
}

TEST_F(PacedSnapshotTest, APacedSnapshotLoadsIntoTheSameState) {
  WriteOptions options;
  options.max_bytes_per_s = 1ull << 40;
  options.paced_sync_bytes = 4096;  // many pieces for a small file
  LocalDirStore store(dir_.Sub("snaps"), 3, options);
  StatusOr<SnapshotInfo> info = store.Write(*source_.CaptureImage(), {kCluster, 1, 0});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  StatusOr<std::unique_ptr<SnapshotReader>> reader =
      SnapshotReader::Open(store.PathOf(info->id), kCluster);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SealingSink other;
  meta::MetaStore loaded(meta::Options(), &other);
  ASSERT_TRUE(reader.value()->LoadInto(&loaded, 5000).ok());
  EXPECT_EQ(loaded.applied_seq(), source_.applied_seq());
  EXPECT_EQ(loaded.StateDigest(), source_.StateDigest());
}

TEST_F(PacedSnapshotTest, APacedWriteWaitsAndAnUnpacedOneDoesNot) {
  WriteOptions options;
  options.max_bytes_per_s = 4 * kMiB;
  options.paced_sync_bytes = 4096;
  const std::unique_ptr<meta::StateImage> image = source_.CaptureImage();
  StatusOr<WrittenSnapshot> paced =
      WriteSnapshotFile(*image, {kCluster, 1, 0}, dir_.Sub(""), options);
  ASSERT_TRUE(paced.ok()) << paced.status().ToString();
  EXPECT_GT(paced->paced_seconds, 0.0);
  // A full sync's rebase: same options, no waiting.
  SnapshotMeta rebase{kCluster, 1, 0};
  rebase.unpaced = true;
  std::filesystem::remove(paced->path);
  StatusOr<WrittenSnapshot> unpaced = WriteSnapshotFile(*image, rebase, dir_.Sub(""), options);
  ASSERT_TRUE(unpaced.ok()) << unpaced.status().ToString();
  EXPECT_EQ(unpaced->paced_seconds, 0.0);
  EXPECT_EQ(unpaced->bytes, paced->bytes);
}

}  // namespace
}  // namespace tandem::snapshot::testing
