// The local write-ahead log: append and read back, fsync policies and group commit, rotation,
// truncation after a snapshot, torn tails cut cleanly and corruption in the middle reported.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "oplog/entry_codec.h"
#include "oplog/wal_reader.h"
#include "oplog/wal_writer.h"

namespace tandem::oplog {
namespace {

using tandem::v1::OpLogEntry;
using namespace std::chrono_literals;

constexpr char kCluster[] = "cluster-w";

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/tandem-wal-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

OpLogEntry Entry(uint64_t seq) {
  OpLogEntry e;
  e.set_sequence_id(seq);
  e.set_epoch(1 + seq / 1000);
  e.set_timestamp_ms(1000 + seq);
  e.set_op_type(tandem::v1::PUT_END);
  e.set_object_key("object-" + std::to_string(seq));
  Seal(e);
  return e;
}

std::vector<OpLogEntry> Entries(uint64_t first, uint64_t last) {
  std::vector<OpLogEntry> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(Entry(s));
  return out;
}

struct ReadResult {
  std::vector<uint64_t> seqs;
  Status status;
  uint64_t last_seq = 0;
  std::vector<std::string> notes;
};

ReadResult ReadAll(const std::string& dir, uint64_t from = 1, bool repair = true) {
  ReadResult r;
  auto reader = WalReader::Open({dir, kCluster, from, repair});
  EXPECT_TRUE(reader.ok());
  if (!reader.ok()) return r;
  OpLogEntry e;
  while (reader.value()->Next(&e)) {
    EXPECT_EQ(e.SerializeAsString(), Entry(e.sequence_id()).SerializeAsString());
    r.seqs.push_back(e.sequence_id());
  }
  r.status = reader.value()->status();
  r.last_seq = reader.value()->last_seq();
  r.notes = reader.value()->notes();
  return r;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

WalOptions Options(const std::string& dir, WalFsync fsync = WalFsync::kInterval,
                   uint64_t segment_bytes = 64ull << 20) {
  WalOptions o;
  o.dir = dir;
  o.cluster_id = kCluster;
  o.fsync = fsync;
  o.segment_bytes = segment_bytes;
  return o;
}

std::unique_ptr<WalWriter> OpenWriter(const WalOptions& options, uint64_t next_seq) {
  auto w = WalWriter::Open(options, next_seq);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(w).value() : nullptr;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x01));
}

std::vector<wal::SegmentFile> Segments(const std::string& dir) {
  auto s = wal::ListSegments(dir);
  EXPECT_TRUE(s.ok());
  return s.ok() ? s.value() : std::vector<wal::SegmentFile>{};
}

TEST(WalTest, AppendedEntriesReadBackInOrder) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    for (uint64_t s = 1; s <= 500; ++s) ASSERT_TRUE(w->Append(Entry(s)).ok());
    ASSERT_TRUE(w->AppendBatch(Entries(501, 1000)).ok());
    EXPECT_EQ(w->appended_seq(), 1000u);
  }
  ReadResult all = ReadAll(dir.path());
  EXPECT_TRUE(all.status.ok());
  EXPECT_EQ(all.seqs, Range(1, 1000));
  EXPECT_TRUE(all.notes.empty());
  EXPECT_EQ(ReadAll(dir.path(), 600).seqs, Range(600, 1000));
  EXPECT_TRUE(ReadAll(dir.path(), 1001).seqs.empty());
  EXPECT_EQ(Segments(dir.path()).front().first_seq, 1u);
}

TEST(WalTest, RefusesGapsAndEntriesFailingTheirChecksum) {
  TempDir dir;
  auto w = OpenWriter(Options(dir.path()), 10);
  EXPECT_EQ(w->Append(Entry(11)).code(), ErrorCode::kInternal);  // expects 10
  ASSERT_TRUE(w->Append(Entry(10)).ok());
  OpLogEntry tampered = Entry(11);
  tampered.set_object_key("other");
  EXPECT_EQ(w->Append(tampered).code(), ErrorCode::kInternal);
  std::vector<OpLogEntry> holey = {Entry(11), Entry(13)};
  EXPECT_EQ(w->AppendBatch(holey).code(), ErrorCode::kInternal);
  EXPECT_EQ(w->appended_seq(), 10u);
}

TEST(WalTest, AlwaysReturnsAfterTheFsyncAndGroupsConcurrentWriters) {
  TempDir dir;
  auto w = OpenWriter(Options(dir.path(), WalFsync::kAlways), 1);
  ASSERT_TRUE(w->Append(Entry(1)).ok());
  EXPECT_EQ(w->durable_seq(), 1u);
  // Writers sequence under a lock (as the Sequencer does) and wait for the fsync outside it.
  std::mutex order;
  uint64_t next = 2;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        uint64_t seq;
        {
          std::lock_guard<std::mutex> lock(order);
          seq = next++;
          ASSERT_TRUE(w->Enqueue(std::vector<OpLogEntry>{Entry(seq)}).ok());
        }
        ASSERT_TRUE(w->WaitDurable(seq, 10s).ok());
        EXPECT_GE(w->durable_seq(), seq);
      }
    });
  }
  for (auto& t : threads) t.join();
  WalStats stats = w->stats();
  EXPECT_EQ(stats.durable_seq, 201u);
  EXPECT_LE(stats.fsyncs, 201u);
  RecordProperty("fsyncs_for_201_appends", std::to_string(stats.fsyncs));
}

TEST(WalTest, IntervalSyncsWithinTheIntervalAndSyncForces) {
  TempDir dir;
  WalOptions options = Options(dir.path(), WalFsync::kInterval);
  options.fsync_interval_ms = 20;
  auto w = OpenWriter(options, 1);
  for (uint64_t s = 1; s <= 300; ++s) ASSERT_TRUE(w->Append(Entry(s)).ok());
  ASSERT_TRUE(w->WaitDurable(300, 5s).ok());
  EXPECT_LT(w->stats().fsyncs, 300u);  // grouped, not one per append
  ASSERT_TRUE(w->Append(Entry(301)).ok());
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(w->durable_seq(), 301u);
  EXPECT_EQ(w->WaitDurable(400, 30ms).code(), ErrorCode::kUnavailable);  // never appended
}

// Interval mode hands records to the OS at once and only delays the fsync: a process killed
// right after an append (kill -9 of every node) loses nothing a reader could not see.
TEST(WalTest, IntervalWritesRecordsPromptlyAndDelaysOnlyTheFsync) {
  TempDir dir;
  WalOptions options = Options(dir.path(), WalFsync::kInterval);
  options.fsync_interval_ms = 60000;
  auto w = OpenWriter(options, 1);
  ASSERT_TRUE(w->Append(Entry(1)).ok());
  ASSERT_TRUE(w->WaitDurable(1, 5s).ok());  // after a quiet spell: fsynced at once
  ASSERT_TRUE(w->AppendBatch(Entries(2, 50)).ok());
  bool visible = false;
  for (int i = 0; i < 200 && !visible; ++i) {  // bounded: 2 s
    visible = ReadAll(dir.path(), 1, /*repair=*/false).seqs == Range(1, 50);
    if (!visible) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(visible) << "records 2..50 were not written within 2 s";
  EXPECT_EQ(w->durable_seq(), 1u);  // not fsynced: the next fsync is an interval away
  EXPECT_EQ(w->stats().fsyncs, 1u);
}

TEST(WalTest, NeverWritesWithoutFsyncUntilSyncIsCalled) {
  TempDir dir;
  auto w = OpenWriter(Options(dir.path(), WalFsync::kNever), 1);
  ASSERT_TRUE(w->AppendBatch(Entries(1, 100)).ok());
  ASSERT_TRUE(w->WaitDurable(100, 5s).ok());  // handed to the OS
  EXPECT_EQ(w->stats().fsyncs, 0u);
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(1, 100));  // readable without a close
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(w->stats().fsyncs, 1u);
}

TEST(WalTest, RotatesSegmentsAtTheSizeNamedByTheirFirstSeq) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path(), WalFsync::kNever, 4096), 1);
    for (uint64_t s = 1; s <= 1000; s += 50) ASSERT_TRUE(w->AppendBatch(Entries(s, s + 49)).ok());
  }
  std::vector<wal::SegmentFile> segs = Segments(dir.path());
  ASSERT_GT(segs.size(), 5u);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_LE(segs[i].bytes, 4096u) << segs[i].path;
    if (i > 0) {
      EXPECT_GT(segs[i].first_seq, segs[i - 1].first_seq);
    }
  }
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(1, 1000));
  EXPECT_EQ(ReadAll(dir.path(), 777).seqs, Range(777, 1000));
}

TEST(WalTest, RemoveCoveredByDeletesOnlyWhollyCoveredSegments) {
  TempDir dir;
  auto w = OpenWriter(Options(dir.path(), WalFsync::kNever, 4096), 1);
  ASSERT_TRUE(w->AppendBatch(Entries(1, 1000)).ok());
  ASSERT_TRUE(w->Sync().ok());
  std::vector<wal::SegmentFile> before = Segments(dir.path());
  const uint64_t cut = before[3].first_seq + 2;  // inside segment 3
  StatusOr<int> removed = w->RemoveCoveredBy(cut);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 3);
  EXPECT_EQ(Segments(dir.path()).front().first_seq, before[3].first_seq);
  EXPECT_EQ(ReadAll(dir.path(), cut + 1).seqs, Range(cut + 1, 1000));
  // Even a seq past everything keeps the segment being written.
  ASSERT_TRUE(w->RemoveCoveredBy(5000).ok());
  ASSERT_EQ(Segments(dir.path()).size(), 1u);
  ASSERT_TRUE(w->Append(Entry(1001)).ok());
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(ReadAll(dir.path(), 1001).seqs, Range(1001, 1001));
}

TEST(WalTest, SegmentsFromBeforeARestartAreRemovedOnceCovered) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 100)).ok());
  }
  auto w = OpenWriter(Options(dir.path()), 101);
  EXPECT_EQ(w->RemoveCoveredBy(99).value(), 0);
  EXPECT_EQ(w->RemoveCoveredBy(100).value(), 1);
  EXPECT_TRUE(Segments(dir.path()).empty());
}

TEST(WalTest, TornLastRecordIsCutCleanlyAndAppendsContinue) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 50)).ok());
  }
  const std::string path = Segments(dir.path()).back().path;
  const uint64_t whole = std::filesystem::file_size(path);
  {
    auto w = OpenWriter(Options(dir.path()), 51);  // a second segment, torn mid-record
    ASSERT_TRUE(w->AppendBatch(Entries(51, 60)).ok());
  }
  const std::string torn = Segments(dir.path()).back().path;
  const uint64_t size = std::filesystem::file_size(torn);
  std::filesystem::resize_file(torn, size - 7);

  ReadResult r = ReadAll(dir.path());
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.seqs, Range(1, 59));
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("cut a torn last record"), std::string::npos) << r.notes[0];
  EXPECT_LT(std::filesystem::file_size(torn), size - 7);  // cut back to the record boundary
  EXPECT_EQ(std::filesystem::file_size(path), whole);
  EXPECT_TRUE(ReadAll(dir.path()).notes.empty());  // already clean

  auto w = OpenWriter(Options(dir.path()), 60);
  ASSERT_TRUE(w->AppendBatch(Entries(60, 80)).ok());
  w.reset();
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(1, 80));
}

// 2 MiB of random bytes after the last record: cut as a torn tail. The scan for valid records
// after the damage must not hash megabytes at every offset (this test would then take minutes).
TEST(WalTest, RandomGarbageAfterTheLastRecordIsCut) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 100)).ok());
  }
  const std::string path = Segments(dir.path()).back().path;
  const uint64_t whole = std::filesystem::file_size(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    std::mt19937_64 rng(42);
    for (int i = 0; i < (2 << 20) / 8; ++i) {
      uint64_t word = rng();
      out.write(reinterpret_cast<const char*>(&word), sizeof(word));
    }
  }
  ReadResult r = ReadAll(dir.path());
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.seqs, Range(1, 100));
  EXPECT_EQ(std::filesystem::file_size(path), whole);
}

TEST(WalTest, TornSegmentHeaderIsRemoved) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 5)).ok());
  }
  std::ofstream(dir.path() + "/" + wal::SegmentFileName(6)) << "TNDMW";
  ReadResult r = ReadAll(dir.path());
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.seqs, Range(1, 5));
  EXPECT_EQ(Segments(dir.path()).size(), 1u);
}

TEST(WalTest, FlippedByteMidLogStopsBeforeItWithAClearError) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 200)).ok());
  }
  const std::string path = Segments(dir.path()).front().path;
  FlipByte(path, std::filesystem::file_size(path) / 2);
  ReadResult r = ReadAll(dir.path());
  EXPECT_EQ(r.status.code(), ErrorCode::kInternal);
  EXPECT_NE(r.status.message().find("valid records follow"), std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find("replay stops at seq " + std::to_string(r.last_seq)),
            std::string::npos);
  EXPECT_GT(r.last_seq, 50u);
  EXPECT_LT(r.last_seq, 150u);
  EXPECT_EQ(r.seqs, Range(1, r.last_seq));
  // Nothing was repaired: damage in the middle is reported, not cut.
  EXPECT_TRUE(r.notes.empty());
}

TEST(WalTest, DiscardAfterCutsAndSetsTheRestAsideSoAWriterCanContinue) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path(), WalFsync::kNever, 4096), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 500)).ok());
  }
  std::vector<std::string> notes;
  ASSERT_TRUE(DiscardWalAfter(dir.path(), 222, &notes).ok());
  EXPECT_FALSE(notes.empty());
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(1, 222));
  auto w = OpenWriter(Options(dir.path()), 223);
  ASSERT_TRUE(w->AppendBatch(Entries(223, 230)).ok());
  w.reset();
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(1, 230));
  size_t aside = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    aside += f.path().string().ends_with(".discarded");
  }
  EXPECT_GT(aside, 1u);
}

TEST(WalTest, ForeignSegmentsAreRefused) {
  TempDir dir;
  {
    WalOptions options = Options(dir.path());
    options.cluster_id = "other-cluster";
    auto w = OpenWriter(options, 1);
    ASSERT_TRUE(w->Append(Entry(1)).ok());
  }
  ReadResult r = ReadAll(dir.path());
  EXPECT_TRUE(r.seqs.empty());
  EXPECT_NE(r.status.message().find("foreign segment"), std::string::npos) << r.status.message();
}

TEST(WalTest, OpenRefusesSegmentsAtOrBeyondNextSeq) {
  TempDir dir;
  {
    auto w = OpenWriter(Options(dir.path()), 1);
    ASSERT_TRUE(w->AppendBatch(Entries(1, 10)).ok());
  }
  EXPECT_EQ(WalWriter::Open(Options(dir.path()), 1).status().code(), ErrorCode::kInvalidState);
  EXPECT_TRUE(WalWriter::Open(Options(dir.path()), 11).ok());
}

TEST(WalTest, ResetStartsOverAtANewSeq) {
  TempDir dir;
  auto w = OpenWriter(Options(dir.path()), 1);
  ASSERT_TRUE(w->AppendBatch(Entries(1, 10)).ok());
  ASSERT_TRUE(w->Reset(5000).ok());
  EXPECT_EQ(w->appended_seq(), 4999u);
  ASSERT_TRUE(w->AppendBatch(Entries(5000, 5010)).ok());
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(ReadAll(dir.path()).seqs, Range(5000, 5010));
}

TEST(WalTest, FsyncPolicyNamesRoundTrip) {
  for (WalFsync p : {WalFsync::kAlways, WalFsync::kInterval, WalFsync::kNever}) {
    EXPECT_EQ(ParseWalFsync(WalFsyncName(p)), p);
  }
  EXPECT_FALSE(ParseWalFsync("sometimes").has_value());
}

}  // namespace
}  // namespace tandem::oplog
