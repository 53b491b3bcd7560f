// RangeAllocator: the free space of one segment, as exact-size byte ranges (no alignment).
//
// Free ranges are kept twice: by offset (to coalesce a freed range with both neighbours) and by
// (length, offset) (best fit). Deciding and mutating are separate on purpose: the leader calls
// FindFit to choose a placement, logs it, and then both leader and standbys call AllocateAt with
// the logged offset, so every replica of the state ends up byte-for-byte identical.
// Not thread-safe: MetaStore guards it with its space mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace tandem::meta {

// A byte range [offset, offset+size) of one segment.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const ByteRange&) const = default;
};

// Why RangeAllocator::FromUsed refused a set of used ranges.
struct RangeConflict {
  enum class Kind { kEmpty, kOutOfBounds, kOverlap };
  Kind kind = Kind::kEmpty;
  ByteRange range;  // the offending range
  ByteRange other;  // kOverlap: the range (at a lower or equal offset) it overlaps
};

class RangeAllocator {
 public:
  // A segment of `capacity` bytes, all free.
  explicit RangeAllocator(uint64_t capacity);

  // Bulk construction (image loads): a segment of `capacity` bytes whose used space is exactly
  // `used`, given in any order. Sorts `used` by offset in place, checks it in one linear pass and
  // builds the free ranges (the gaps) once -- O(n log n), where n AllocateAt calls at random
  // offsets would grow and search trees of up to n free ranges. nullopt, with `*conflict` set,
  // when a range is empty, leaves the segment or overlaps another one.
  static std::optional<RangeAllocator> FromUsed(uint64_t capacity, std::vector<ByteRange>& used,
                                                RangeConflict* conflict);

  // Offset of the best fit for `size` bytes (the smallest free range that holds it, the lowest
  // offset among equals), or nullopt. Does not change anything.
  std::optional<uint64_t> FindFit(uint64_t size) const;
  // True when [offset, offset+size) lies entirely inside one free range.
  bool IsFree(uint64_t offset, uint64_t size) const;
  // Marks [offset, offset+size) used. False (and no change) unless IsFree(offset, size).
  bool AllocateAt(uint64_t offset, uint64_t size);
  // Returns [offset, offset+size) to the free space, merging with adjacent free ranges. False
  // (and no change) when the range is empty, out of bounds or overlaps free space.
  bool Free(uint64_t offset, uint64_t size);

  uint64_t capacity() const { return capacity_; }
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t used_bytes() const { return capacity_ - free_bytes_; }
  size_t free_range_count() const { return by_offset_.size(); }
  // Visits free ranges in offset order (tests, dumps).
  void ForEachFreeRange(const std::function<void(uint64_t offset, uint64_t len)>& visit) const;

 private:
  void InsertFree(uint64_t offset, uint64_t len);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t free_bytes_;
  std::map<uint64_t, uint64_t> by_offset_;           // offset -> length
  std::set<std::pair<uint64_t, uint64_t>> by_size_;  // (length, offset)
};

}  // namespace tandem::meta
