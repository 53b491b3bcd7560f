#include "meta/allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace tandem::meta {
namespace {

std::vector<std::pair<uint64_t, uint64_t>> FreeRanges(const RangeAllocator& a) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  a.ForEachFreeRange([&](uint64_t offset, uint64_t len) { ranges.emplace_back(offset, len); });
  return ranges;
}

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

TEST(RangeAllocatorTest, FreshAllocatorIsOneFreeRange) {
  RangeAllocator a(1000);
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 1000}}));
  EXPECT_EQ(a.free_bytes(), 1000u);
  EXPECT_EQ(a.used_bytes(), 0u);
}

TEST(RangeAllocatorTest, FindFitDecidesWithoutAllocating) {
  RangeAllocator a(1000);
  EXPECT_EQ(a.FindFit(100), 0u);
  EXPECT_EQ(a.FindFit(100), 0u);  // nothing changed
  EXPECT_EQ(a.free_bytes(), 1000u);
  EXPECT_EQ(a.FindFit(1000), 0u);
  EXPECT_EQ(a.FindFit(1001), std::nullopt);
  EXPECT_EQ(a.FindFit(0), std::nullopt);
}

TEST(RangeAllocatorTest, FindFitPicksTheSmallestRangeThatFits) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 1000));
  ASSERT_TRUE(a.Free(0, 100));    // hole of 100 at 0
  ASSERT_TRUE(a.Free(200, 50));   // hole of 50 at 200
  ASSERT_TRUE(a.Free(400, 300));  // hole of 300 at 400
  EXPECT_EQ(a.FindFit(40), 200u);
  EXPECT_EQ(a.FindFit(50), 200u);
  EXPECT_EQ(a.FindFit(51), 0u);
  EXPECT_EQ(a.FindFit(101), 400u);
  EXPECT_EQ(a.FindFit(301), std::nullopt);
}

TEST(RangeAllocatorTest, FindFitBreaksTiesByLowestOffset) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 1000));
  ASSERT_TRUE(a.Free(600, 50));
  ASSERT_TRUE(a.Free(100, 50));
  EXPECT_EQ(a.FindFit(50), 100u);
}

TEST(RangeAllocatorTest, AllocateAtInsideAFreeRangeSplitsIt) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(300, 100));
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 300}, {400, 600}}));
  EXPECT_EQ(a.used_bytes(), 100u);
  ASSERT_TRUE(a.AllocateAt(0, 300));  // exactly a whole free range
  EXPECT_EQ(FreeRanges(a), (Ranges{{400, 600}}));
  ASSERT_TRUE(a.AllocateAt(900, 100));  // the tail end
  EXPECT_EQ(FreeRanges(a), (Ranges{{400, 500}}));
}

TEST(RangeAllocatorTest, AllocateAtRefusesUsedOrSpanningOrOutOfBoundsRanges) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(300, 100));
  const Ranges before = FreeRanges(a);
  EXPECT_FALSE(a.AllocateAt(300, 100));            // exactly the used range
  EXPECT_FALSE(a.AllocateAt(350, 10));             // inside it
  EXPECT_FALSE(a.AllocateAt(250, 100));            // overlaps its start
  EXPECT_FALSE(a.AllocateAt(390, 20));             // overlaps its end
  EXPECT_FALSE(a.AllocateAt(0, 1000));             // spans two free ranges and the used one
  EXPECT_FALSE(a.AllocateAt(950, 51));             // leaves the segment
  EXPECT_FALSE(a.AllocateAt(1000, 1));             // starts at the end
  EXPECT_FALSE(a.AllocateAt(UINT64_MAX - 5, 10));  // offset + size overflows
  EXPECT_FALSE(a.AllocateAt(10, 0));               // empty
  EXPECT_EQ(FreeRanges(a), before);
  EXPECT_EQ(a.used_bytes(), 100u);
}

TEST(RangeAllocatorTest, FreeCoalescesWithTheLeftNeighbour) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 1000));
  ASSERT_TRUE(a.Free(0, 100));
  ASSERT_TRUE(a.Free(100, 50));
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 150}}));
}

TEST(RangeAllocatorTest, FreeCoalescesWithTheRightNeighbour) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 1000));
  ASSERT_TRUE(a.Free(500, 100));
  ASSERT_TRUE(a.Free(400, 100));
  EXPECT_EQ(FreeRanges(a), (Ranges{{400, 200}}));
}

TEST(RangeAllocatorTest, FreeCoalescesWithBothNeighbours) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 300));
  ASSERT_TRUE(a.AllocateAt(300, 300));
  ASSERT_TRUE(a.AllocateAt(600, 400));
  ASSERT_TRUE(a.Free(0, 300));
  ASSERT_TRUE(a.Free(600, 400));
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 300}, {600, 400}}));
  ASSERT_TRUE(a.Free(300, 300));
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 1000}}));
  EXPECT_EQ(a.free_bytes(), 1000u);
  EXPECT_EQ(a.FindFit(1000), 0u);  // the size index was merged too
}

TEST(RangeAllocatorTest, FreeBetweenUsedRangesDoesNotCoalesce) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(0, 1000));
  ASSERT_TRUE(a.Free(200, 100));
  EXPECT_EQ(FreeRanges(a), (Ranges{{200, 100}}));
}

TEST(RangeAllocatorTest, FreeRefusesDoubleFreeAndBadRanges) {
  RangeAllocator a(1000);
  ASSERT_TRUE(a.AllocateAt(100, 100));
  EXPECT_FALSE(a.Free(0, 50));     // already free
  EXPECT_FALSE(a.Free(150, 100));  // half used, half free
  EXPECT_FALSE(a.Free(50, 100));   // half free, half used
  EXPECT_FALSE(a.Free(990, 20));   // leaves the segment
  EXPECT_FALSE(a.Free(100, 0));    // empty
  EXPECT_EQ(a.used_bytes(), 100u);
  EXPECT_TRUE(a.Free(100, 100));
  EXPECT_FALSE(a.Free(100, 100));  // double free
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 1000}}));
}

TEST(RangeAllocatorTest, ExhaustionThenRecovery) {
  RangeAllocator a(1000);
  std::vector<uint64_t> offsets;
  while (auto offset = a.FindFit(300)) {
    ASSERT_TRUE(a.AllocateAt(*offset, 300));
    offsets.push_back(*offset);
  }
  EXPECT_EQ(offsets.size(), 3u);
  EXPECT_EQ(a.FindFit(101), std::nullopt);
  auto rest = a.FindFit(100);
  ASSERT_TRUE(rest.has_value());
  ASSERT_TRUE(a.AllocateAt(*rest, 100));
  EXPECT_EQ(a.FindFit(1), std::nullopt);
  EXPECT_EQ(a.free_bytes(), 0u);
  EXPECT_EQ(a.free_range_count(), 0u);
  for (uint64_t offset : offsets) ASSERT_TRUE(a.Free(offset, 300));
  ASSERT_TRUE(a.Free(*rest, 100));
  EXPECT_EQ(FreeRanges(a), (Ranges{{0, 1000}}));
}

// Random allocations and frees against a byte map: allocations never overlap, free ranges are
// exactly the free bytes and always fully coalesced.
TEST(RangeAllocatorTest, RandomOperationsMatchAByteMap) {
  constexpr uint64_t kCapacity = 512;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    RangeAllocator a(kCapacity);
    std::vector<bool> used(kCapacity, false);
    std::vector<std::pair<uint64_t, uint64_t>> live;
    for (int step = 0; step < 400; ++step) {
      if (live.empty() || rng() % 2 == 0) {
        uint64_t size = 1 + rng() % 40;
        auto offset = a.FindFit(size);
        if (!offset) continue;
        ASSERT_TRUE(a.AllocateAt(*offset, size));
        for (uint64_t i = *offset; i < *offset + size; ++i) {
          ASSERT_FALSE(used[i]) << "seed " << seed << " step " << step << " overlap at " << i;
          used[i] = true;
        }
        live.emplace_back(*offset, size);
      } else {
        size_t pick = rng() % live.size();
        auto [offset, size] = live[pick];
        live.erase(live.begin() + pick);
        ASSERT_TRUE(a.Free(offset, size));
        for (uint64_t i = offset; i < offset + size; ++i) used[i] = false;
      }
      uint64_t free_bytes = 0;
      uint64_t last_end = UINT64_MAX;
      for (auto [offset, len] : FreeRanges(a)) {
        ASSERT_NE(offset, last_end) << "adjacent free ranges were not coalesced";
        for (uint64_t i = offset; i < offset + len; ++i) ASSERT_FALSE(used[i]);
        free_bytes += len;
        last_end = offset + len;
      }
      ASSERT_EQ(free_bytes, a.free_bytes());
      ASSERT_EQ(free_bytes, static_cast<uint64_t>(std::count(used.begin(), used.end(), false)));
    }
  }
}

// ---- FromUsed: the bulk builder of image loads ----

using Used = std::vector<ByteRange>;

TEST(RangeAllocatorFromUsedTest, NothingUsedIsOneFreeRange) {
  Used used;
  RangeConflict c;
  auto a = RangeAllocator::FromUsed(1000, used, &c);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(FreeRanges(*a), (Ranges{{0, 1000}}));
  EXPECT_EQ(a->free_bytes(), 1000u);
  EXPECT_EQ(a->capacity(), 1000u);
  EXPECT_EQ(a->FindFit(1000), 0u);
}

TEST(RangeAllocatorFromUsedTest, GapsAreTheFreeRangesWhateverTheOrder) {
  Used used = {{700, 100}, {100, 50}, {400, 200}};
  RangeConflict c;
  auto a = RangeAllocator::FromUsed(1000, used, &c);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(FreeRanges(*a), (Ranges{{0, 100}, {150, 250}, {600, 100}, {800, 200}}));
  EXPECT_EQ(a->used_bytes(), 350u);
  EXPECT_EQ(used, (Used{{100, 50}, {400, 200}, {700, 100}}));  // sorted in place
  // The size index agrees: best fit, lowest offset among equals.
  EXPECT_EQ(a->FindFit(100), 0u);
  EXPECT_EQ(a->FindFit(101), 800u);
  EXPECT_EQ(a->FindFit(201), 150u);
  EXPECT_EQ(a->FindFit(251), std::nullopt);
}

TEST(RangeAllocatorFromUsedTest, AdjacentRangesLeaveNoGapBetweenThem) {
  Used used = {{300, 100}, {0, 100}, {100, 200}, {400, 1}};
  RangeConflict c;
  auto a = RangeAllocator::FromUsed(1000, used, &c);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(FreeRanges(*a), (Ranges{{401, 599}}));
  // Freeing them back coalesces into one range again.
  for (const ByteRange& r : used) ASSERT_TRUE(a->Free(r.offset, r.size));
  EXPECT_EQ(FreeRanges(*a), (Ranges{{0, 1000}}));
}

TEST(RangeAllocatorFromUsedTest, RangesUpToTheSegmentEnd) {
  {
    Used used = {{900, 100}};  // ends exactly at the end: no tail
    RangeConflict c;
    auto a = RangeAllocator::FromUsed(1000, used, &c);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(FreeRanges(*a), (Ranges{{0, 900}}));
  }
  {
    Used used = {{0, 1000}};  // the whole segment
    RangeConflict c;
    auto a = RangeAllocator::FromUsed(1000, used, &c);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->free_range_count(), 0u);
    EXPECT_EQ(a->free_bytes(), 0u);
    EXPECT_EQ(a->FindFit(1), std::nullopt);
  }
}

TEST(RangeAllocatorFromUsedTest, RefusesOutOfBoundsRanges) {
  for (ByteRange bad : {ByteRange{950, 51}, ByteRange{1000, 1}, ByteRange{5000, 10},
                        ByteRange{UINT64_MAX - 5, 10}}) {
    Used used = {{0, 10}, bad, {20, 10}};
    RangeConflict c;
    EXPECT_FALSE(RangeAllocator::FromUsed(1000, used, &c).has_value()) << bad.offset;
    EXPECT_EQ(c.kind, RangeConflict::Kind::kOutOfBounds);
    EXPECT_EQ(c.range, bad);
  }
}

TEST(RangeAllocatorFromUsedTest, RefusesEmptyRanges) {
  Used used = {{0, 10}, {500, 0}};
  RangeConflict c;
  EXPECT_FALSE(RangeAllocator::FromUsed(1000, used, &c).has_value());
  EXPECT_EQ(c.kind, RangeConflict::Kind::kEmpty);
  EXPECT_EQ(c.range, (ByteRange{500, 0}));
}

TEST(RangeAllocatorFromUsedTest, RefusesOverlapsAndNamesBothRanges) {
  struct Case {
    Used used;
    ByteRange range;
    ByteRange other;
  };
  const std::vector<Case> cases = {
      {{{100, 50}, {100, 50}}, {100, 50}, {100, 50}},           // the same range twice
      {{{120, 10}, {100, 50}}, {120, 10}, {100, 50}},           // inside another
      {{{149, 10}, {100, 50}}, {149, 10}, {100, 50}},           // over its end by one byte
      {{{0, 1000}, {500, 1}}, {500, 1}, {0, 1000}},             // inside the whole segment
      {{{50, 500}, {0, 10}, {300, 10}}, {300, 10}, {50, 500}},  // under one that reaches past
  };
  for (const Case& k : cases) {
    Used used = k.used;
    RangeConflict c;
    EXPECT_FALSE(RangeAllocator::FromUsed(1000, used, &c).has_value());
    EXPECT_EQ(c.kind, RangeConflict::Kind::kOverlap);
    EXPECT_EQ(c.range, k.range);
    EXPECT_EQ(c.other, k.other);
  }
  // Touching is not overlapping.
  Used touching = {{100, 50}, {150, 50}};
  RangeConflict c;
  EXPECT_TRUE(RangeAllocator::FromUsed(1000, touching, &c).has_value());
}

// The bulk builder and one AllocateAt per range end in the same allocator, and it keeps working.
TEST(RangeAllocatorFromUsedTest, MatchesAllocateAtOneByOne) {
  constexpr uint64_t kCapacity = 4096;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    // Random disjoint ranges: cut the segment into pieces, keep some of them.
    Used used;
    for (uint64_t offset = 0; offset < kCapacity;) {
      uint64_t size = std::min<uint64_t>(1 + rng() % 64, kCapacity - offset);
      if (rng() % 3 != 0) used.push_back({offset, size});
      offset += size;
    }
    std::shuffle(used.begin(), used.end(), rng);
    RangeAllocator one_by_one(kCapacity);
    for (const ByteRange& r : used) ASSERT_TRUE(one_by_one.AllocateAt(r.offset, r.size));
    RangeConflict c;
    auto bulk = RangeAllocator::FromUsed(kCapacity, used, &c);
    ASSERT_TRUE(bulk.has_value()) << "seed " << seed;
    EXPECT_EQ(FreeRanges(*bulk), FreeRanges(one_by_one)) << "seed " << seed;
    EXPECT_EQ(bulk->free_bytes(), one_by_one.free_bytes());
    for (uint64_t size = 1; size <= 70; ++size) {
      ASSERT_EQ(bulk->FindFit(size), one_by_one.FindFit(size)) << "seed " << seed;
    }
    // Later frees and allocations behave the same on both.
    std::shuffle(used.begin(), used.end(), rng);
    for (size_t i = 0; i < used.size() / 2; ++i) {
      ASSERT_TRUE(bulk->Free(used[i].offset, used[i].size));
      ASSERT_TRUE(one_by_one.Free(used[i].offset, used[i].size));
    }
    for (int i = 0; i < 50; ++i) {
      uint64_t size = 1 + rng() % 100;
      auto fit = bulk->FindFit(size);
      ASSERT_EQ(fit, one_by_one.FindFit(size));
      if (fit) {
        ASSERT_TRUE(bulk->AllocateAt(*fit, size));
        ASSERT_TRUE(one_by_one.AllocateAt(*fit, size));
      }
    }
    EXPECT_EQ(FreeRanges(*bulk), FreeRanges(one_by_one)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace tandem::meta
