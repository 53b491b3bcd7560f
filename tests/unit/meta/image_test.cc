// State images: CaptureImage / LoadImage round trips, and every bad image is refused whole.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <tuple>

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

  // Loads a tampered image into a store that held the real one: refused (with `why` in the
  // message), and the store is empty.
  void ExpectRefused(const StateHeader& header, const std::vector<ObjectChunk>& chunks,
                     std::string_view why = "") {
    RecordingSink sink;
    MetaStore store(Options(), &sink);
    ASSERT_TRUE(Load(store, image_->header(), chunks_).ok());
    Status s = Load(store, header, chunks);
    EXPECT_EQ(s.code(), ErrorCode::kInternal);
    EXPECT_NE(s.message().find(why), std::string::npos) << s.message();
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

TEST_F(ImageTest, TheBetweenShardsHookRunsOutsideEveryLockAndChangesNothing) {
  // Once per shard, after its copy; a write from inside the hook would deadlock if a shard or
  // the space lock were held there.
  int calls = 0;
  bool wrote = false;
  std::unique_ptr<StateImage> hooked = source_.CaptureImage([&] {
    if (++calls == kShardCount / 2 && !wrote) {
      wrote = source_.PutStart(Put("during-capture", 10), 300).ok();
    }
  });
  EXPECT_EQ(calls, kShardCount);
  EXPECT_TRUE(wrote);
  // The hooked image is the state at its freeze, the same as an unhooked one of that state.
  EXPECT_EQ(hooked->header().state_digest(), image_->header().state_digest());
  EXPECT_EQ(hooked->header().object_count(), 50u);
  EXPECT_EQ(source_.GetStats().object_count, 51u);
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
  ExpectRefused(h, chunks, "overlap");
}

// Every chunk's object records, flattened (to find an object's record by key).
std::vector<tandem::v1::ObjectRecord*> Records(std::vector<ObjectChunk>& chunks) {
  std::vector<tandem::v1::ObjectRecord*> records;
  for (ObjectChunk& c : chunks) {
    for (int i = 0; i < c.objects_size(); ++i) records.push_back(c.mutable_objects(i));
  }
  return records;
}

TEST_F(ImageTest, RefusesPartialOverlapsAndAllocationsOutsideTheSegment) {
  const StateHeader& h = image_->header();
  // Two objects with a replica on the same segment: move the second one byte into the first.
  auto first_two_on = [](std::vector<ObjectChunk>& chunks, uint32_t handle) {
    std::vector<tandem::v1::ReplicaPlacement*> found;
    for (tandem::v1::ObjectRecord* r : Records(chunks)) {
      for (int i = 0; i < r->replicas_size(); ++i) {
        if (r->replicas(i).segment_handle() == handle && found.size() < 2) {
          found.push_back(r->mutable_replicas(i));
        }
      }
    }
    return found;
  };
  {
    std::vector<ObjectChunk> chunks = chunks_;
    auto two = first_two_on(chunks, 1);
    ASSERT_EQ(two.size(), 2u);
    two[1]->set_offset(two[0]->offset() + two[0]->size() - 1);
    ExpectRefused(h, chunks, "overlap");
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    auto two = first_two_on(chunks, 2);
    ASSERT_EQ(two.size(), 2u);
    two[0]->set_offset(10'000 - two[0]->size() + 1);  // segment "b" holds 10 000 bytes
    ExpectRefused(h, chunks, "leaves segment 'b'");
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    auto two = first_two_on(chunks, 1);
    ASSERT_EQ(two.size(), 2u);
    two[0]->set_offset(UINT64_MAX - 2);  // offset + size overflows
    ExpectRefused(h, chunks, "leaves segment 'a'");
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    tandem::v1::ObjectRecord* r = Records(chunks)[0];
    *r->add_replicas() = r->replicas(0);  // a second replica on the same segment
    ExpectRefused(h, chunks, "two replicas");
  }
}

// A store whose segment is used end to end, by adjacent allocations up to its last byte.
TEST(ImageLoadTest, AdjacentAllocationsUpToTheSegmentEnd) {
  RecordingSink sink;
  MetaStore source(Options(), &sink);
  ASSERT_TRUE(source.MountSegment(Seg("full", 100), "", 0).ok());
  ASSERT_TRUE(source.MountSegment(Seg("empty", 50, 0x20000000), "", 0).ok());
  for (auto [key, size] : {std::pair{"a", 40}, {"b", 20}, {"c", 40}}) {
    PutStartArgs args = Put(key, size);
    args.preferred_segment = "full";
    ASSERT_TRUE(source.PutStart(args, 0).ok());
  }
  std::vector<ObjectChunk> chunks;
  auto image = source.CaptureImage();
  image->ForEachChunk(2, [&](const ObjectChunk& c) {
    chunks.push_back(c);
    return true;
  });
  MetaStore copy(Options(), &sink);
  size_t next = 0;
  ASSERT_TRUE(copy.LoadImage(
                      image->header(),
                      [&](ObjectChunk* out) {
                        if (next == chunks.size()) return false;
                        *out = chunks[next++];
                        return true;
                      },
                      0)
                  .ok());
  EXPECT_EQ(DumpState(copy), DumpState(source));
  EXPECT_TRUE(CheckInvariants(copy));
  EXPECT_EQ(copy.ListSegments()[0].used, 100u);
  // No byte is left in "full": a preferred put falls back to "empty", 50 bytes at most.
  PutStartArgs more = Put("d", 50);
  more.preferred_segment = "full";
  auto placed = copy.PutStart(more, 0);
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(placed->front().segment_id, "empty");
  EXPECT_EQ(copy.PutStart(Put("e", 1), 0).status().code(), ErrorCode::kNoAvailableSpace);
  // Freeing the middle one leaves exactly its 20 bytes, at offset 40.
  ASSERT_TRUE(copy.PutRevoke("b", "c1", 0).ok());
  auto refill = copy.PutStart(Put("f", 20), 0);
  ASSERT_TRUE(refill.ok());
  EXPECT_EQ(refill->front().segment_id, "full");
  EXPECT_EQ(refill->front().offset, 40u);
  EXPECT_EQ(copy.PutStart(Put("g", 1), 0).status().code(), ErrorCode::kNoAvailableSpace);
}

// The free space a load builds in bulk is the one the source built entry by entry: from there on
// both stores choose the same placements.
TEST_F(ImageTest, LoadedFreeSpaceChoosesLikeTheSource) {
  for (int i = 0; i < 50; ++i) {  // holes of various sizes
    std::string key = "key-" + std::to_string(i);
    if (i % 6 == 0) {
      ASSERT_TRUE(source_.PutRevoke(key, "c1", 300).ok());  // PROCESSING ones
    }
    if (i % 5 == 1 && i % 3 != 0) {
      ASSERT_TRUE(source_.Remove(key, 300).ok());  // COMPLETE ones
    }
  }
  auto image = source_.CaptureImage();
  std::vector<ObjectChunk> chunks;
  image->ForEachChunk(5, [&](const ObjectChunk& c) {
    chunks.push_back(c);
    return true;
  });
  RecordingSink sink;
  MetaStore copy(Options(), &sink);
  ASSERT_TRUE(Load(copy, image->header(), chunks).ok());
  for (int i = 0; i < 40; ++i) {
    std::string key = "new-" + std::to_string(i);
    PutStartArgs args = Put(key, 5 + (i * 37) % 120);
    args.preferred_segment = i % 2 ? "a" : "b";  // best fit there (round robin is soft state)
    auto a = source_.PutStart(args, 400);
    auto b = copy.PutStart(args, 400);
    ASSERT_EQ(a.ok(), b.ok()) << key;
    if (!a.ok()) continue;
    ASSERT_EQ(a->size(), b->size());
    for (size_t r = 0; r < a->size(); ++r) {
      EXPECT_EQ(a.value()[r].segment_id, b.value()[r].segment_id) << key;
      EXPECT_EQ(a.value()[r].offset, b.value()[r].offset) << key;
    }
  }
  EXPECT_EQ(DumpState(copy), DumpState(source_));
  EXPECT_TRUE(CheckInvariants(copy));
}

// Images are deterministic: a store loaded from an image captures the very same image.
TEST_F(ImageTest, ALoadedStoreCapturesTheSameImage) {
  RecordingSink sink;
  MetaStore copy(Options(), &sink);
  ASSERT_TRUE(Load(copy, image_->header(), chunks_).ok());
  auto again = copy.CaptureImage();
  EXPECT_EQ(again->header().SerializeAsString(), image_->header().SerializeAsString());
  std::string a, b;
  image_->ForEachChunk(1000, [&](const ObjectChunk& c) {
    a += c.SerializeAsString();
    return true;
  });
  again->ForEachChunk(1000, [&](const ObjectChunk& c) {
    b += c.SerializeAsString();
    return true;
  });
  EXPECT_EQ(a, b);
  // Shard by shard; inside a shard by key hash, then by key.
  ObjectChunk all;
  ASSERT_TRUE(all.ParseFromString(a));
  auto order_of = [](const std::string& key) {
    return std::make_tuple(MetaStore::ShardOf(key), XXH3_64bits(key.data(), key.size()), key);
  };
  for (int i = 1; i < all.objects_size(); ++i) {
    const std::string& prev = all.objects(i - 1).key();
    const std::string& key = all.objects(i).key();
    EXPECT_LT(order_of(prev), order_of(key)) << prev << " " << key;
  }
}

TEST_F(ImageTest, RefusesUnknownHandlesDuplicatesAndBadRecords) {
  StateHeader h = image_->header();
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks[0].mutable_objects(0)->mutable_replicas(0)->set_segment_handle(3);  // unmounted
    ExpectRefused(h, chunks, "unknown segment handle 3");
  }
  {
    std::vector<ObjectChunk> chunks = chunks_;
    chunks.push_back(chunks[0]);  // every key twice
    ExpectRefused(h, chunks, "duplicate key");
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
