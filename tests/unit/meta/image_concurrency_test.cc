// CaptureImage while the store keeps changing. A capture freezes the store only to mark every
// shard, then copies shard by shard while writers go on (a writer copies a marked shard before
// changing it): each image must still be exactly the state at its header's applied_seq.
// In meta_concurrency_test, so it can be run under TSan (TSAN_OPTIONS=detect_deadlocks=0).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

using tandem::v1::ObjectChunk;

std::vector<ObjectChunk> ChunksOf(const StateImage& image, size_t max_objects = 64) {
  std::vector<ObjectChunk> chunks;
  image.ForEachChunk(max_objects, [&](const ObjectChunk& c) {
    chunks.push_back(c);
    return true;
  });
  return chunks;
}

// The whole image as bytes: header, then every chunk.
std::string Serialized(const StateImage& image) {
  std::string out = image.header().SerializeAsString();
  for (const ObjectChunk& c : ChunksOf(image, 1000)) out += c.SerializeAsString();
  return out;
}

Status LoadInto(MetaStore& store, const StateImage& image, uint64_t now_ms = 0) {
  std::vector<ObjectChunk> chunks = ChunksOf(image);
  size_t next = 0;
  return store.LoadImage(
      image.header(),
      [&](ObjectChunk* out) {
        if (next == chunks.size()) return false;
        out->Swap(&chunks[next++]);
        return true;
      },
      now_ms);
}

TEST(ImageConcurrencyTest, EachImageIsTheStateAtItsAppliedSeq) {
  Options options;
  RecordingSink sink;
  MetaStore store(options, &sink);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store.MountSegment(Seg("static-" + std::to_string(i), 8 << 20), "", 0).ok());
  }
  // Objects the writers leave alone, so that a capture takes long enough to race them.
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(store.PutStart(Put("fixed-" + std::to_string(i), 64, 1 + i % 2), 0).ok());
  }
  std::atomic<bool> done{false};
  std::atomic<uint64_t> clock{1};
  std::atomic<uint64_t> internal_errors{0};
  auto note = [&](const Status& s) {
    if (s.code() == ErrorCode::kInternal) internal_errors.fetch_add(1);
  };
  // Object operations on keys spread over many shards.
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    while (!done.load()) {
      const uint64_t now = clock.fetch_add(1);
      const std::string key = "key-" + std::to_string(rng() % 3000);
      switch (rng() % 4) {
        case 0:
        case 1:
          note(store.PutStart(Put(key, 1 + rng() % 512, 1 + rng() % 2), now).status());
          break;
        case 2:
          note(store.PutEnd(key, "c1", now));
          break;
        default:
          note(store.Remove(key, now));
          break;
      }
    }
  };
  // A segment comes and goes: its unmount changes objects in every shard at once.
  auto admin = [&] {
    std::mt19937 rng(7);
    while (!done.load()) {
      const uint64_t now = clock.fetch_add(1);
      if (rng() % 2) {
        note(store.MountSegment(Seg("dyn", 64 << 10, 0x40000000), "", now));
      } else {
        note(store.UnmountSegment("dyn", "", now));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) threads.emplace_back(worker, w + 1);
  threads.emplace_back(admin);
  std::vector<std::unique_ptr<StateImage>> images;
  while (images.size() < 16) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    images.push_back(store.CaptureImage());
  }
  done.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(internal_errors.load(), 0u);

  std::vector<OpLogEntry> entries = sink.entries();
  std::sort(entries.begin(), entries.end(), [](const OpLogEntry& a, const OpLogEntry& b) {
    return a.sequence_id() < b.sequence_id();
  });
  // One standby replays the log; at each image's seq it must hold exactly the image.
  RefusingSink refusing;
  MetaStore replayed(options, &refusing);
  size_t next = 0;
  uint64_t last_seq = 0;
  for (const auto& image : images) {
    const uint64_t seq = image->header().applied_seq();
    ASSERT_GE(seq, last_seq);
    last_seq = seq;
    for (; next < entries.size() && entries[next].sequence_id() <= seq; ++next) {
      ASSERT_TRUE(replayed.Apply(entries[next]).ok());
    }
    ASSERT_EQ(replayed.applied_seq(), seq);
    EXPECT_EQ(replayed.StateDigest(), image->header().state_digest()) << "seq " << seq;
    // Record for record, the image the replayed store captures (EXPECT_TRUE: a diff of two
    // images of thousands of objects takes gtest minutes).
    EXPECT_TRUE(Serialized(*image) == Serialized(*replayed.CaptureImage())) << "seq " << seq;
    MetaStore loaded(options, &refusing);
    EXPECT_TRUE(LoadInto(loaded, *image).ok()) << "seq " << seq;
  }
  EXPECT_GT(last_seq, 0u);
}

// LoadImage replaces the whole state while captures run: every image is exactly one of the
// states the store held (never shards of one and shards of another).
TEST(ImageConcurrencyTest, CapturesRacingLoadsSeeOneWholeState) {
  Options options;
  // Three sources of different contents (and applied_seq) over the same segments.
  std::vector<std::unique_ptr<StateImage>> sources;
  std::map<uint64_t, std::string> expected;  // applied_seq -> serialized image
  for (int v = 0; v < 3; ++v) {
    RecordingSink sink;
    MetaStore source(options, &sink);
    ASSERT_TRUE(source.MountSegment(Seg("a", 1 << 20), "", 0).ok());
    ASSERT_TRUE(source.MountSegment(Seg("b", 1 << 20, 0x40000000), "", 0).ok());
    for (int i = 0; i < 8000 + 300 * v; ++i) {
      std::string key = "v" + std::to_string(v) + "-" + std::to_string(i);
      ASSERT_TRUE(source.PutStart(Put(key, 16 + i % 64, 1 + (i + v) % 2), i).ok());
    }
    sources.push_back(source.CaptureImage());
    ASSERT_TRUE(expected.emplace(source.applied_seq(), Serialized(*sources.back())).second);
  }
  RecordingSink sink;
  MetaStore store(options, &sink);
  ASSERT_TRUE(LoadInto(store, *sources[0]).ok());
  std::atomic<bool> done{false};
  std::thread loader([&] {
    for (int round = 1; !done.load(); ++round) {
      EXPECT_TRUE(LoadInto(store, *sources[round % 3]).ok());
    }
  });
  std::vector<std::unique_ptr<StateImage>> images;
  for (int i = 0; i < 60; ++i) images.push_back(store.CaptureImage());
  done.store(true);
  loader.join();
  for (const auto& image : images) {
    auto it = expected.find(image->header().applied_seq());
    ASSERT_NE(it, expected.end());
    EXPECT_TRUE(Serialized(*image) == it->second) << "seq " << it->first;
  }
}

}  // namespace
}  // namespace tandem::meta::testing
