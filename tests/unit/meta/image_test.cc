// State images: CaptureImage / LoadImage round trips, and every bad image is refused whole.
#include <gtest/gtest.h>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

using tandem::v1::ObjectChunk;
using tandem::v1::StateHeader;

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(source_.MountSegment(Seg("a", 10'000, 0x1000), "node-a", 0).ok());
    ASSERT_TRUE(source_.MountSegment(Seg("b", 10'000, 0x9000), "", 0).ok());
    ASSERT_TRUE(source_.MountSegment(Seg("gone", 100), "", 0).ok());
    ASSERT_TRUE(source_.UnmountSegment("gone", "", 0).ok());  // next handle stays above it
    for (int i = 0; i < 50; ++i) {
      std::string key = "key-" + std::to_string(i);
      PutStartArgs args = Put(key, 10 + i, 1 + i % 2);
      args.soft_pin = i % 7 == 0;
      ASSERT_TRUE(source_.PutStart(args, 100 + i).ok());
      if (i % 3 != 0) {
        ASSERT_TRUE(source_.PutEnd(key, "c1", 200).ok());
      }
    }
    image_ = source_.CaptureImage();
    image_->ForEachChunk(7, [&](const ObjectChunk& chunk) {
      chunks_.push_back(chunk);
      return true;
    });
  }

  Status Load(MetaStore& store, const StateHeader& header, std::vector<ObjectChunk> chunks,
              uint64_t now_ms = 1000) {
    size_t next = 0;
    return store.LoadImage(
        header,
        [&](ObjectChunk* out) {
          if (next == chunks.size()) return false;
          *out = chunks[next++];
          return true;
        },
        now_ms);
  }

  // Loads a tampered image into a store that held the real one: refused, and the store is empty.
  void ExpectRefused(const StateHeader& header, const std::vector<ObjectChunk>& chunks) {
    RecordingSink sink;
    MetaStore store(Options(), &sink);
    ASSERT_TRUE(Load(store, image_->header(), chunks_).ok());
    Status s = Load(store, header, chunks);
    EXPECT_EQ(s.code(), ErrorCode::kInternal);
    EXPECT_EQ(store.applied_seq(), 0u);
    EXPECT_EQ(store.GetStats().object_count, 0u);
    EXPECT_TRUE(store.ListSegments().empty());
    EXPECT_EQ(store.StateDigest(), MetaStore(Options(), &sink).StateDigest());
  }

  RecordingSink sink_;
  MetaStore source_{Options(), &sink_};
  std::unique_ptr<StateImage> image_;
  std::vector<ObjectChunk> chunks_;
};

TEST_F(ImageTest, HeaderDescribesTheState) {
  const StateHeader& h = image_->header();
  EXPECT_EQ(h.applied_seq(), source_.applied_seq());
  EXPECT_EQ(h.applied_epoch(), 1u);
  EXPECT_EQ(h.next_segment_handle(), 4u);
  EXPECT_EQ(h.object_count(), 50u);
  EXPECT_EQ(h.state_digest(), source_.StateDigest());
  EXPECT_EQ(h.segments_size(), 2);
  size_t objects = 0;
  for (const ObjectChunk& c : chunks_) {
    EXPECT_LE(c.objects_size(), 7);
    objects += c.objects_size();
  }
  EXPECT_EQ(objects, 50u);
}

TEST_F(ImageTest, ForEachChunkStopsWhenAsked) {
  int calls = 0;
  image_->ForEachChunk(7, [&](const ObjectChunk&) { return ++calls < 2; });
  EXPECT_EQ(calls, 2);
}

TEST_F(ImageTest, TheImageIsACopyUnaffectedByLaterChanges) {
  ASSERT_TRUE(source_.PutStart(Put("after", 10), 500).ok());
  size_t objects = 0;
  image_->ForEachChunk(100, [&](const ObjectChunk& c) {
    objects += c.objects_size();
    return true;
  });
  EXPECT_EQ(objects, 50u);
}

TEST_F(ImageTest, LoadReproducesTheStateWithFreshLeases) {
  RecordingSink sink;
  MetaStore copy(Options(), &sink);
  // Whatever the store held before is replaced.
  ASSERT_TRUE(copy.MountSegment(Seg("x", 100), "", 0).ok());
  ASSERT_TRUE(copy.PutStart(Put("junk", 1), 0).ok());
  ASSERT_TRUE(Load(copy, image_->header(), chunks_, 7000).ok());
  EXPECT_EQ(copy.StateDigest(), source_.StateDigest());
  EXPECT_EQ(DumpState(copy), DumpState(source_));
  EXPECT_EQ(copy.applied_seq(), source_.applied_seq());
  EXPECT_EQ(copy.applied_epoch(), 1u);
  EXPECT_TRUE(CheckInvariants(copy));
  for (const ObjectInfo& o : Objects(copy)) {
    EXPECT_EQ(o.lease_deadline_ms, 7000 + copy.options().lease_ttl_ms);
  }
  // The loaded store continues the log: the next mount gets the image's next handle.
  ASSERT_TRUE(copy.MountSegment(Seg("c", 100), "", 8000).ok());
  EXPECT_EQ(PayloadOf<tandem::v1::MountSegmentEffect>(sink.last()).segment_handle(), 4u);
  // PROCESSING puts keep their start time and are reaped relative to it.
  EXPECT_EQ(copy.ReapStalePuts(100 + copy.options().put_timeout_ms), 0u);
  EXPECT_GT(copy.ReapStalePuts(200 + copy.options().put_timeout_ms), 0u);
  // Owners are known clients again.
  EXPECT_TRUE(copy.Ping("node-a", 8000).ok());
}

TEST_F(ImageTest, RefusesOverlappingAllocations) {
  std::vector<ObjectChunk> chunks = chunks_;
  auto* twin = chunks[0].add_objects();
  *twin = chunks[0].objects(0);
  twin->set_key("twin");  // same placement as another object
  StateHeader h = image_->header();
  h.set_object_count(h.object_count() + 1);
  ExpectRefused(h, chunks);
}

TEST_F(ImageTest, RefusesUnknownHandlesDuplicatesAndBadRecords) {
  StateHeader h = image_->header();
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks[0].mutable_objects(0)->mutable_replicas(0)->set_segment_handle(3);  // unmounted
    ExpectRefused(h, chunks);
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks.push_back(chunks[0]);  // every key twice
    ExpectRefused(h, chunks);
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks[1].mutable_objects(0)->mutable_replicas(0)->set_size(1);
    ExpectRefused(h, chunks);
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks[1].mutable_objects(0)->set_key("");
    ExpectRefused(h, chunks);
  }
}

TEST_F(ImageTest, RefusesHeaderMismatches) {
  {
    StateHeader h = image_->header();
    h.set_object_count(h.object_count() - 1);
    ExpectRefused(h, chunks_);
  }
  {
    StateHeader h = image_->header();
    h.set_state_digest(h.state_digest() + 1);
    ExpectRefused(h, chunks_);
  }
  {
    StateHeader h = image_->header();
    h.set_next_segment_handle(2);  // below handle 2 in use
    ExpectRefused(h, chunks_);
  }
  {
    StateHeader h = image_->header();
    *h.add_segments() = h.segments(0);  // the same segment twice
    ExpectRefused(h, chunks_);
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks[2].mutable_objects(0)->set_soft_pin(!chunks[2].objects(0).soft_pin());  // digest
    ExpectRefused(image_->header(), chunks);
  }
}

}  // namespace
}  // namespace tandem::meta::testing
