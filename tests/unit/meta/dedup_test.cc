// The dedup window: a request id applies at most once; the window is replicated by Apply, kept by
// replay and images, bounded, and independent of the order concurrent applies record it.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "meta/dedup_window.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

using tandem::v1::ObjectChunk;
using tandem::v1::StateHeader;

PutStartArgs PutWithId(std::string_view key, uint64_t size, std::string_view id) {
  PutStartArgs args = Put(key, size);
  args.request_id = id;
  return args;
}

class DedupTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.MountSegment(Seg("seg-a", 1 << 20), "", 0).ok()); }

  RecordingSink sink_;
  MetaStore store_{Options(), &sink_};
};

TEST_F(DedupTest, EveryWriteAppliesItsRequestIdOnce) {
  auto first = store_.PutStart(PutWithId("k", 100, "r1"), 1);
  ASSERT_TRUE(first.ok());
  const size_t entries = sink_.size();
  EXPECT_EQ(sink_.last().request_id(), "r1");
  // A retry of the same PutStart: the same replicas, no new entry (not OBJECT_ALREADY_EXISTS).
  auto again = store_.PutStart(PutWithId("k", 100, "r1"), 2);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(again->at(0).offset, first->at(0).offset);
  EXPECT_EQ(sink_.size(), entries);
  // Without an id the same call is a new request.
  EXPECT_EQ(store_.PutStart(Put("k", 100), 3).status().code(), ErrorCode::kObjectAlreadyExists);

  ASSERT_TRUE(store_.PutEnd("k", "c1", 4, "r2").ok());
  EXPECT_TRUE(store_.PutEnd("k", "c1", 5, "r2").ok());  // not INVALID_STATE
  ASSERT_TRUE(store_.Remove("k", 6, "r3").ok());
  EXPECT_TRUE(store_.Remove("k", 7, "r3").ok());  // not OBJECT_NOT_FOUND
  // PutStart retried after its object is gone: success, no replicas, nothing re-created.
  auto gone = store_.PutStart(PutWithId("k", 100, "r1"), 8);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty());
  EXPECT_FALSE(store_.ExistKey("k"));

  ASSERT_TRUE(store_.MountSegment(Seg("seg-b", 1000), "", 9, "r4").ok());
  EXPECT_TRUE(store_.MountSegment(Seg("seg-b", 1000), "", 10, "r4").ok());
  ASSERT_TRUE(store_.UnmountSegment("seg-b", "", 11, "r5").ok());
  EXPECT_TRUE(store_.UnmountSegment("seg-b", "", 12, "r5").ok());

  ASSERT_TRUE(store_.PutStart(PutWithId("p", 10, "r6"), 13).ok());
  ASSERT_TRUE(store_.PutRevoke("p", "c1", 14, "r7").ok());
  EXPECT_TRUE(store_.PutRevoke("p", "c1", 15, "r7").ok());

  ASSERT_TRUE(store_.PutStart(PutWithId("q", 10, "r8"), 16).ok());
  ASSERT_TRUE(store_.PutEnd("q", "c1", 17).ok());
  EXPECT_EQ(store_.RemoveAll(18, "r9").removed, 1u);
  ASSERT_TRUE(store_.PutStart(PutWithId("q2", 10, "r10"), 19).ok());
  ASSERT_TRUE(store_.PutEnd("q2", "c1", 20).ok());
  RemoveAllResult repeat = store_.RemoveAll(21, "r9");
  EXPECT_TRUE(repeat.duplicate);
  EXPECT_EQ(repeat.removed, 0u);
  EXPECT_TRUE(store_.ExistKey("q2"));  // the retry did not remove what came after

  // An id reused for another op is refused.
  EXPECT_EQ(store_.PutEnd("q2", "c1", 22, "r1").code(), ErrorCode::kInvalidParams);

  auto r1 = store_.FindRequest("r1");
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->op_type, tandem::v1::PUT_START);
  EXPECT_EQ(store_.GetStats().dedup_entries, 10u);
  EXPECT_EQ(store_.GetStats().dedup_hits, 8u);
}

TEST_F(DedupTest, ReplayAndImagesCarryTheWindow) {
  for (int i = 0; i < 40; ++i) {
    const std::string key = "key-" + std::to_string(i);
    ASSERT_TRUE(store_.PutStart(PutWithId(key, 10, "put-" + std::to_string(i)), 1).ok());
    if (i % 2 == 0) {
      ASSERT_TRUE(store_.PutEnd(key, "c1", 2, "end-" + std::to_string(i)).ok());
    }
  }
  // A standby replaying the log holds the same window, and answers a retry the same way.
  RecordingSink standby_sink;
  auto standby = Replay(sink_.entries(), Options(), &standby_sink);
  EXPECT_EQ(standby->DedupDigest(), store_.DedupDigest());
  EXPECT_EQ(standby->GetStats().dedup_entries, 60u);
  EXPECT_EQ(standby->FindRequest("end-4")->seq, store_.FindRequest("end-4")->seq);
  // Applying an entry twice records it once.
  for (const auto& entry : sink_.entries()) ASSERT_TRUE(standby->Apply(entry).ok());
  EXPECT_EQ(standby->DedupDigest(), store_.DedupDigest());

  // An image (small chunks: objects and request ids share them) loads into an equal window.
  auto image = store_.CaptureImage();
  EXPECT_EQ(image->header().request_count(), 60u);
  std::vector<ObjectChunk> chunks;
  image->ForEachChunk(7, [&](const ObjectChunk& chunk) {
    EXPECT_LE(chunk.objects_size() + chunk.requests_size(), 7);
    chunks.push_back(chunk);
    return true;
  });
  auto load = [&](MetaStore& target, const StateHeader& header) {
    size_t next = 0;
    return target.LoadImage(
        header,
        [&](ObjectChunk* out) {
          if (next == chunks.size()) return false;
          *out = chunks[next++];
          return true;
        },
        1000);
  };
  RecordingSink copy_sink;
  MetaStore copy(Options(), &copy_sink);
  ASSERT_TRUE(load(copy, image->header()).ok());
  EXPECT_EQ(copy.DedupDigest(), store_.DedupDigest());
  EXPECT_EQ(copy.StateDigest(), store_.StateDigest());
  EXPECT_TRUE(copy.FindRequest("put-39").has_value());

  // A tampered window is refused whole.
  StateHeader bad = image->header();
  bad.set_dedup_digest(bad.dedup_digest() + 1);
  EXPECT_EQ(load(copy, bad).code(), ErrorCode::kInternal);
  EXPECT_EQ(copy.GetStats().dedup_entries, 0u);
  EXPECT_FALSE(copy.FindRequest("put-39").has_value());
}

TEST(DedupWindowTest, KeepsTheHighestSeqsPerShardWhateverTheOrder) {
  constexpr uint64_t kCapacity = 640;  // 10 per shard
  constexpr int kRecords = 5000;
  std::vector<uint64_t> seqs(kRecords);
  for (int i = 0; i < kRecords; ++i) seqs[i] = i + 1;
  DedupWindow in_order(kCapacity);
  for (uint64_t seq : seqs) in_order.Record("id-" + std::to_string(seq), {seq, tandem::v1::REMOVE});
  EXPECT_LE(in_order.size(), kCapacity);
  EXPECT_GE(in_order.size(), kCapacity * 9 / 10);  // every shard got far more than its share
  EXPECT_TRUE(in_order.Find("id-5000").has_value());
  EXPECT_FALSE(in_order.Find("id-1").has_value());

  std::shuffle(seqs.begin(), seqs.end(), std::mt19937(7));
  DedupWindow shuffled(kCapacity);
  for (uint64_t seq : seqs) shuffled.Record("id-" + std::to_string(seq), {seq, tandem::v1::REMOVE});
  EXPECT_EQ(shuffled.Digest(), in_order.Digest());
  EXPECT_EQ(shuffled.size(), in_order.size());

  DedupWindow off(0);
  off.Record("x", {1, tandem::v1::REMOVE});
  EXPECT_FALSE(off.Find("x").has_value());
}

TEST(DedupWindowTest, BoundedStoreEvictsTheOldest) {
  RecordingSink sink;
  Options options;
  options.dedup_window = 64;  // one per shard
  MetaStore store(options, &sink);
  ASSERT_TRUE(store.MountSegment(Seg("seg-a", 1 << 20), "", 0).ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(
        store.PutStart(PutWithId("k" + std::to_string(i), 10, "r" + std::to_string(i)), 1).ok());
  }
  EXPECT_LE(store.GetStats().dedup_entries, 64u);
  EXPECT_TRUE(store.FindRequest("r999").has_value());
  EXPECT_FALSE(store.FindRequest("r0").has_value());
}

TEST(DedupWindowTest, ConcurrentRetriesApplyOnce) {
  RecordingSink sink;
  MetaStore store(Options(), &sink);
  ASSERT_TRUE(store.MountSegment(Seg("seg-a", 1 << 24), "", 0).ok());
  constexpr int kKeys = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kKeys; ++i) {
        const std::string key = "k" + std::to_string(i);
        if (!store.PutStart(PutWithId(key, 10, "put-" + key), 1).ok()) ++failures;
        if (!store.PutEnd(key, "c1", 2, "end-" + key).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(sink.size(), 1u + 2 * kKeys);  // the mount, then one PutStart and one PutEnd per key
}

}  // namespace
}  // namespace tandem::meta::testing
