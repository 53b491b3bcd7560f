#include "meta/allocator.h"

#include <algorithm>

namespace tandem::meta {

RangeAllocator::RangeAllocator(uint64_t capacity) : capacity_(capacity), free_bytes_(0) {
  if (capacity > 0) {
    InsertFree(0, capacity);
    free_bytes_ = capacity;
  }
}

std::optional<RangeAllocator> RangeAllocator::FromUsed(uint64_t capacity,
                                                       std::vector<ByteRange>& used,
                                                       RangeConflict* conflict) {
  auto by_offset = [](const ByteRange& a, const ByteRange& b) {
    return a.offset < b.offset || (a.offset == b.offset && a.size < b.size);
  };
  if (!std::is_sorted(used.begin(), used.end(), by_offset)) {
    std::sort(used.begin(), used.end(), by_offset);
  }
  // Free ranges in offset order: the gap before each used range, then the tail.
  std::vector<std::pair<uint64_t, uint64_t>> gaps;  // (offset, length)
  uint64_t end = 0;                                 // end of the used ranges seen so far
  const ByteRange* last = nullptr;                  // the used range that ends at `end`
  for (const ByteRange& r : used) {
    if (r.size == 0) {
      *conflict = {RangeConflict::Kind::kEmpty, r, {}};
      return std::nullopt;
    }
    if (r.offset > capacity || r.size > capacity - r.offset) {
      *conflict = {RangeConflict::Kind::kOutOfBounds, r, {}};
      return std::nullopt;
    }
    if (r.offset < end) {  // sorted by offset: only the furthest-reaching one can overlap
      *conflict = {RangeConflict::Kind::kOverlap, r, *last};
      return std::nullopt;
    }
    if (r.offset > end) gaps.emplace_back(end, r.offset - end);
    end = r.offset + r.size;
    last = &r;
  }
  if (end < capacity) gaps.emplace_back(end, capacity - end);

  RangeAllocator allocator(0);
  allocator.capacity_ = capacity;
  for (const auto& [offset, len] : gaps) {
    allocator.by_offset_.emplace_hint(allocator.by_offset_.end(), offset, len);
    allocator.free_bytes_ += len;
  }
  // The size index wants (length, offset) order: swap the pairs, sort, append.
  for (auto& gap : gaps) std::swap(gap.first, gap.second);
  std::sort(gaps.begin(), gaps.end());
  for (const auto& entry : gaps) allocator.by_size_.emplace_hint(allocator.by_size_.end(), entry);
  return allocator;
}

std::optional<uint64_t> RangeAllocator::FindFit(uint64_t size) const {
  if (size == 0) return std::nullopt;
  auto it = by_size_.lower_bound({size, 0});
  if (it == by_size_.end()) return std::nullopt;
  return it->second;
}

bool RangeAllocator::IsFree(uint64_t offset, uint64_t size) const {
  if (size == 0 || offset > capacity_ || size > capacity_ - offset) return false;
  auto it = by_offset_.upper_bound(offset);  // first free range starting after `offset`
  if (it == by_offset_.begin()) return false;
  --it;  // the free range starting at or before `offset`
  uint64_t end = it->first + it->second;
  return offset + size <= end;
}

bool RangeAllocator::AllocateAt(uint64_t offset, uint64_t size) {
  if (!IsFree(offset, size)) return false;
  auto it = std::prev(by_offset_.upper_bound(offset));
  uint64_t start = it->first;
  uint64_t end = start + it->second;
  EraseFree(it);
  // Whatever is left on either side of the allocation stays free.
  if (start < offset) InsertFree(start, offset - start);
  if (offset + size < end) InsertFree(offset + size, end - (offset + size));
  free_bytes_ -= size;
  return true;
}

bool RangeAllocator::Free(uint64_t offset, uint64_t size) {
  if (size == 0 || offset > capacity_ || size > capacity_ - offset) return false;
  uint64_t start = offset;
  uint64_t end = offset + size;
  auto next = by_offset_.lower_bound(offset);  // first free range at or after `offset`
  if (next != by_offset_.end() && next->first < end) return false;  // overlaps free space
  if (next != by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second > start) return false;
  }
  // Coalesce with the right neighbour, then the left one.
  if (next != by_offset_.end() && next->first == end) {
    end += next->second;
    EraseFree(next);
  }
  auto after = by_offset_.lower_bound(offset);
  if (after != by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == start) {
      start = prev->first;
      EraseFree(prev);
    }
  }
  InsertFree(start, end - start);
  free_bytes_ += size;
  return true;
}

void RangeAllocator::ForEachFreeRange(
    const std::function<void(uint64_t offset, uint64_t len)>& visit) const {
  for (const auto& [offset, len] : by_offset_) visit(offset, len);
}

void RangeAllocator::InsertFree(uint64_t offset, uint64_t len) {
  by_offset_.emplace(offset, len);
  by_size_.emplace(len, offset);
}

void RangeAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  by_offset_.erase(it);
}

}  // namespace tandem::meta
