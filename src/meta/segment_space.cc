#include "meta/segment_space.h"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "meta/errors.h"

namespace tandem::meta {

Segment::Segment(const tandem::v1::MountSegmentEffect& e)
    : handle(e.segment_handle()),
      id(e.segment_id()),
      name(e.name()),
      base(e.base()),
      size(e.size()),
      endpoint(e.endpoint()),
      owner_client_id(e.owner_client_id()),
      space(e.size()) {}

SegmentFields Segment::fields() const {
  return {handle, id, name, base, size, endpoint, owner_client_id};
}

const Segment* SegmentSpace::Find(uint32_t handle) const {
  auto it = segments_.find(handle);
  return it == segments_.end() ? nullptr : &it->second;
}

const Segment* SegmentSpace::FindById(std::string_view id) const {
  auto it = by_id_.find(AbslView(id));
  return it == by_id_.end() ? nullptr : Find(it->second);
}

uint64_t SegmentSpace::bytes_total() const {
  uint64_t total = 0;
  for (const auto& [handle, s] : segments_) total += s.size;
  return total;
}

uint64_t SegmentSpace::bytes_used() const {
  uint64_t used = 0;
  for (const auto& [handle, s] : segments_) used += s.space.used_bytes();
  return used;
}

Status SegmentSpace::CheckAdd(const tandem::v1::MountSegmentEffect& e) const {
  if (e.segment_handle() == 0) return Internal("segment handle 0 is reserved");
  if (segments_.contains(e.segment_handle())) {
    return Internal("segment handle ", e.segment_handle(), " is already mounted");
  }
  if (e.segment_id().empty() || e.name().empty()) return Internal("segment id or name is empty");
  if (by_id_.contains(e.segment_id())) return Internal("segment id '", e.segment_id(), "' exists");
  if (by_name_.contains(e.name())) return Internal("segment name '", e.name(), "' exists");
  if (e.size() == 0 || e.base() + e.size() < e.base()) {
    return Internal("segment '", e.segment_id(), "' has a bad geometry: base ", e.base(), " size ",
                    e.size());
  }
  return Status::Ok();
}

void SegmentSpace::Add(const tandem::v1::MountSegmentEffect& e, uint64_t now_ms) {
  auto [it, inserted] = segments_.emplace(e.segment_handle(), Segment(e));
  by_id_.emplace(it->second.id, it->first);
  by_name_.emplace(it->second.name, it->first);
  next_handle_ = std::max(next_handle_, it->first + 1);
  digest_ += SegmentDigest(it->second.fields());
  if (!it->second.owner_client_id.empty()) {
    ClientEntry& client = clients_[it->second.owner_client_id];
    client.heartbeat_ms = now_ms;
    ++client.segments;
  }
}

void SegmentSpace::Remove(uint32_t handle) {
  auto it = segments_.find(handle);
  if (it == segments_.end()) return;
  const Segment& s = it->second;
  digest_ -= SegmentDigest(s.fields());
  by_id_.erase(s.id);
  by_name_.erase(s.name);
  if (!s.owner_client_id.empty()) {
    auto client = clients_.find(s.owner_client_id);
    // A client with no segment left is forgotten: its next Ping gets CLIENT_NOT_FOUND.
    if (client != clients_.end() && --client->second.segments == 0) clients_.erase(client);
  }
  segments_.erase(it);
}

std::vector<uint32_t> SegmentSpace::HandlesOwnedBy(std::string_view client_id) const {
  std::vector<uint32_t> handles;
  for (const auto& [handle, s] : segments_) {
    if (!s.owner_client_id.empty() && s.owner_client_id == client_id) handles.push_back(handle);
  }
  return handles;
}

Status SegmentSpace::CheckAllocate(const Placements& placements, uint64_t size) const {
  for (size_t i = 0; i < placements.size(); ++i) {
    const Placement& p = placements[i];
    const Segment* s = Find(p.segment_handle);
    if (s == nullptr) return Internal("replica on unknown segment handle ", p.segment_handle);
    for (size_t j = 0; j < i; ++j) {
      if (placements[j].segment_handle == p.segment_handle) {
        return Internal("two replicas on segment handle ", p.segment_handle);
      }
    }
    if (!s->space.IsFree(p.offset, size)) {
      return Internal("allocation [", p.offset, ", +", size, ") on segment '", s->id,
                      "' overlaps used space or leaves the segment");
    }
  }
  return Status::Ok();
}

void SegmentSpace::Allocate(const Placements& placements, uint64_t size) {
  for (const Placement& p : placements) {
    segments_.find(p.segment_handle)->second.space.AllocateAt(p.offset, size);
  }
}

bool SegmentSpace::AllocateAll(uint32_t handle, std::vector<ByteRange>& used,
                               RangeConflict* conflict) {
  auto it = segments_.find(handle);
  // A misuse, not bad input: replacing a live allocator would lose its allocations.
  if (it == segments_.end() || it->second.space.used_bytes() != 0) std::abort();
  Segment& s = it->second;
  std::optional<RangeAllocator> built = RangeAllocator::FromUsed(s.size, used, conflict);
  if (!built) return false;
  s.space = std::move(*built);
  return true;
}

bool SegmentSpace::Release(const Placements& placements, uint64_t size) {
  bool ok = true;
  for (const Placement& p : placements) {
    auto it = segments_.find(p.segment_handle);
    ok = it != segments_.end() && it->second.space.Free(p.offset, size) && ok;
  }
  return ok;
}

StatusOr<Placements> SegmentSpace::ChoosePlacement(uint64_t size, uint32_t replica_num,
                                                   std::string_view preferred_segment) {
  if (replica_num > segments_.size()) {
    return Error(ErrorCode::kInvalidParams, "replica_num ", replica_num, " exceeds the ",
                 segments_.size(), " mounted segments");
  }
  Placements chosen;
  auto chosen_already = [&](uint32_t handle) {
    return std::any_of(chosen.begin(), chosen.end(),
                       [&](const Placement& p) { return p.segment_handle == handle; });
  };
  if (!preferred_segment.empty()) {
    const Segment* preferred = FindById(preferred_segment);
    if (preferred == nullptr) {
      return Error(ErrorCode::kSegmentNotFound, "preferred segment '", preferred_segment,
                   "' is not mounted");
    }
    if (auto offset = preferred->space.FindFit(size))
      chosen.push_back({preferred->handle, *offset});
  }
  // Round robin from the segment after the last one picked, so load spreads over segments.
  auto it = segments_.upper_bound(cursor_);
  for (size_t visited = 0; visited < segments_.size() && chosen.size() < replica_num; ++visited) {
    if (it == segments_.end()) it = segments_.begin();
    const Segment& s = it->second;
    ++it;
    if (chosen_already(s.handle)) continue;
    if (auto offset = s.space.FindFit(size)) {
      chosen.push_back({s.handle, *offset});
      cursor_ = s.handle;
    }
  }
  if (chosen.size() < replica_num) {
    return Error(ErrorCode::kNoAvailableSpace, "only ", chosen.size(), " of ", replica_num,
                 " replicas of ", size, " bytes fit in the mounted segments");
  }
  return chosen;
}

ClientEntry* SegmentSpace::FindClient(std::string_view client_id) {
  auto it = clients_.find(AbslView(client_id));
  return it == clients_.end() ? nullptr : &it->second;
}

void SegmentSpace::RefreshClients(uint64_t now_ms) {
  for (auto& [id, client] : clients_) client.heartbeat_ms = now_ms;
}

}  // namespace tandem::meta
