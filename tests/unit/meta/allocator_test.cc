#include "meta/allocator.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tandem::meta
