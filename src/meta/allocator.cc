#include "meta/allocator.h"

namespace tandem::meta {

RangeAllocator::RangeAllocator(uint64_t capacity) : capacity_(capacity), free_bytes_(0) {
  if (capacity > 0) {
    InsertFree(0, capacity);
    free_bytes_ = capacity;
  }
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
