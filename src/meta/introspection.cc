// Read-only views of the store: applied position, stats, segments, digests, object iteration.
#include <algorithm>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "meta/store_impl.h"

namespace tandem::meta {

int MetaStore::ShardOf(std::string_view key) {
  return static_cast<int>(XXH64(key.data(), key.size(), 0) % kShardCount);
}

uint64_t MetaStore::applied_seq() const {
  return impl_->applied_seq.load(std::memory_order_acquire);
}

uint64_t MetaStore::applied_epoch() const {
  return impl_->applied_epoch.load(std::memory_order_acquire);
}

Stats MetaStore::GetStats() const {
  const Impl& m = *impl_;
  Stats stats;
  stats.applied_seq = applied_seq();
  for (const Shard& shard : m.shards) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    stats.object_count += shard.state.objects.size();
    stats.processing_count += shard.state.processing;
  }
  {
    std::lock_guard<std::mutex> space_lock(m.space_mu);
    stats.segment_count = m.space.segments().size();
    stats.bytes_used = m.space.bytes_used();
    stats.bytes_total = m.space.bytes_total();
  }
  stats.evicted_objects = m.evicted_objects.load(std::memory_order_relaxed);
  stats.evictions = m.evictions.load(std::memory_order_relaxed);
  stats.reaped_puts = m.reaped_puts.load(std::memory_order_relaxed);
  stats.expired_clients = m.expired_clients.load(std::memory_order_relaxed);
  stats.dedup_entries = m.dedup.size();
  stats.dedup_hits = m.dedup_hits.load(std::memory_order_relaxed);
  return stats;
}

std::optional<AppliedRequest> MetaStore::FindRequest(std::string_view request_id) const {
  return impl_->dedup.Find(request_id);  // the window has its own locks (LoadImage swaps contents)
}

uint64_t MetaStore::DedupDigest() const { return impl_->dedup.Digest(); }

std::vector<SegmentInfo> MetaStore::ListSegments() const {
  std::lock_guard<std::mutex> space_lock(impl_->space_mu);
  std::vector<SegmentInfo> list;
  for (const auto& [handle, s] : impl_->space.segments()) {
    SegmentInfo info;
    info.handle = handle;
    info.spec = SegmentSpec{s.id, s.name, s.base, s.size, s.endpoint};
    info.owner_client_id = s.owner_client_id;
    info.used = s.space.used_bytes();
    list.push_back(std::move(info));
  }
  return list;
}

uint64_t MetaStore::StateDigest() const {
  std::vector<uint64_t> shard_digests(kShardCount);
  for (int i = 0; i < kShardCount; ++i) shard_digests[i] = ShardDigest(i);
  std::lock_guard<std::mutex> space_lock(impl_->space_mu);
  return CombineDigests(shard_digests.data(), impl_->space.digest());
}

uint64_t MetaStore::ShardDigest(int shard) const {
  if (shard < 0 || shard >= kShardCount) return 0;
  const Shard& s = impl_->shards[shard];
  std::lock_guard<std::mutex> shard_lock(s.mu);
  return s.state.digest;
}

void MetaStore::ForEachObject(const std::function<void(const ObjectInfo&)>& visit) const {
  std::vector<const ObjectNode*> nodes;
  for (const Shard& shard : impl_->shards) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    nodes.clear();
    for (const NodePtr& node : shard.state.objects) nodes.push_back(node.get());
    // Key order inside a shard: the visit order then depends on the state only, not on the hash
    // table's history or seed.
    std::sort(nodes.begin(), nodes.end(),
              [](const ObjectNode* a, const ObjectNode* b) { return a->key() < b->key(); });
    for (const ObjectNode* node : nodes) visit(ToObjectInfo(*node));
  }
}

}  // namespace tandem::meta
