// Leader maintenance driven by a timer outside the store (ReapStalePuts, EvictIfNeeded), plus
// RemoveAll and RefreshSoftState. Multi-key effects are logged as one KeyListEffect with sorted
// keys, so replaying them is deterministic.
#include <algorithm>
#include <cmath>

#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {
namespace {

using tandem::v1::OpType;

tandem::v1::OpLogEntry KeyListEntry(OpType type, std::vector<std::string> keys, uint64_t now_ms) {
  std::sort(keys.begin(), keys.end());
  tandem::v1::KeyListEffect effect;
  for (std::string& key : keys) effect.add_keys(std::move(key));
  return MakeEntry(type, "", &effect, now_ms);
}

// Eviction order: unpinned objects before soft-pinned ones, each least recently used first.
struct EvictionRank {
  bool pinned = false;
  uint64_t last_access_ms = 0;
  auto operator<=>(const EvictionRank&) const = default;
};

// Nullopt for an object that must not be evicted now (PROCESSING or under a read lease).
std::optional<EvictionRank> RankOf(const ObjectNode& node, uint64_t now_ms) {
  if (!node.complete() || node.lease_deadline_ms > now_ms) return std::nullopt;
  bool pinned = node.soft_pin && node.soft_pin_deadline_ms() > now_ms;
  return EvictionRank{pinned, node.last_access_ms};
}

// Pass 1 of eviction, one shard lock at a time: ranks every candidate (no key copies) and returns
// the rank up to which evicting frees `target` bytes (all candidates if they free less).
std::optional<EvictionRank> EvictionCutoff(const std::array<Shard, kShardCount>& shards,
                                           uint64_t now_ms, uint64_t target) {
  std::vector<std::pair<EvictionRank, uint64_t>> candidates;  // (rank, bytes)
  for (const Shard& shard : shards) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    for (const NodePtr& node : shard.state.objects) {
      if (auto rank = RankOf(*node, now_ms)) candidates.emplace_back(*rank, node->replica_bytes());
    }
  }
  if (candidates.empty()) return std::nullopt;
  std::sort(candidates.begin(), candidates.end());
  uint64_t sum = 0;
  for (const auto& [rank, bytes] : candidates) {
    sum += bytes;
    if (sum >= target) return rank;
  }
  return candidates.back().first;
}

}  // namespace

RemoveAllResult MetaStore::RemoveAll(uint64_t now_ms, std::string_view request_id) {
  Impl& m = *impl_;
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  std::vector<std::string> keys;
  RemoveAllResult result;
  // A duplicate of an applied RemoveAll (or of another op: the id is then ignored here, since
  // RemoveAll has no error to report).
  if (auto dup = m.CheckDuplicate(request_id, OpType::REMOVE_ALL)) {
    if (dup->ok()) {
      result.duplicate = true;
      return result;
    }
  }
  for (const Shard& shard : m.shards) {
    for (const NodePtr& node : shard.state.objects) {
      if (node->complete() && node->lease_deadline_ms <= now_ms) {
        keys.emplace_back(node->key());
      } else {
        ++result.kept;  // leased, or a put still in progress
      }
    }
  }
  if (keys.empty()) return result;
  const uint64_t removed = keys.size();
  tandem::v1::OpLogEntry entry = KeyListEntry(OpType::REMOVE_ALL, std::move(keys), now_ms);
  entry.set_request_id(std::string(request_id));
  if (!m.Commit(entry).ok()) return {0, result.kept + removed};
  result.removed = removed;
  return result;
}

uint64_t MetaStore::ReapStalePuts(uint64_t now_ms) {
  Impl& m = *impl_;
  uint64_t count = 0;
  for (Shard& shard : m.shards) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    if (shard.state.processing == 0) continue;
    std::vector<std::string> stale;
    for (const NodePtr& node : shard.state.objects) {
      if (!node->complete() && node->put_start_ms() + m.options.put_timeout_ms < now_ms) {
        stale.emplace_back(node->key());
      }
    }
    if (stale.empty()) continue;
    std::sort(stale.begin(), stale.end());
    std::lock_guard<std::mutex> space_lock(m.space_mu);
    for (const std::string& key : stale) {
      tandem::v1::PutRevokeEffect effect;
      effect.set_reason(tandem::v1::REVOKE_PUT_TIMEOUT);
      tandem::v1::OpLogEntry entry = MakeEntry(OpType::PUT_REVOKE, key, &effect, now_ms);
      if (!m.Commit(entry).ok()) {  // not leader any more: the next leader reaps
        m.reaped_puts.fetch_add(count, std::memory_order_relaxed);
        return count;
      }
      ++count;
    }
  }
  m.reaped_puts.fetch_add(count, std::memory_order_relaxed);
  return count;
}

uint64_t MetaStore::EvictIfNeeded(uint64_t now_ms) {
  Impl& m = *impl_;
  uint64_t total = 0;
  uint64_t used = 0;
  {
    std::lock_guard<std::mutex> space_lock(m.space_mu);
    total = m.space.bytes_total();
    used = m.space.bytes_used();
  }
  if (total == 0 || static_cast<double>(used) <= m.options.eviction_high_watermark * total) {
    return 0;
  }
  const uint64_t target = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(m.options.eviction_ratio * static_cast<double>(total))));

  std::optional<EvictionRank> cutoff = EvictionCutoff(m.shards, now_ms, target);
  if (!cutoff) return 0;

  // Pass 2, shard by shard: re-check each object under the lock (it may have been read since)
  // and log one EVICTION entry per shard.
  uint64_t evicted = 0;
  uint64_t freed = 0;
  for (Shard& shard : m.shards) {
    if (freed >= target) break;
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    std::vector<std::string> keys;
    uint64_t bytes = 0;
    for (const NodePtr& node : shard.state.objects) {
      auto rank = RankOf(*node, now_ms);
      if (rank && *rank <= *cutoff) {
        keys.emplace_back(node->key());
        bytes += node->replica_bytes();
      }
    }
    if (keys.empty()) continue;
    std::lock_guard<std::mutex> space_lock(m.space_mu);
    const uint64_t count = keys.size();
    tandem::v1::OpLogEntry entry = KeyListEntry(OpType::EVICTION, std::move(keys), now_ms);
    if (!m.Commit(entry).ok()) break;
    evicted += count;
    freed += bytes;
  }
  if (evicted > 0) {
    m.evicted_objects.fetch_add(evicted, std::memory_order_relaxed);
    m.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  return evicted;
}

void MetaStore::RefreshSoftState(uint64_t now_ms) {
  Impl& m = *impl_;
  for (Shard& shard : m.shards) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    for (const NodePtr& node : shard.state.objects) {
      node->lease_deadline_ms = now_ms + m.options.lease_ttl_ms;
    }
  }
  std::lock_guard<std::mutex> space_lock(m.space_mu);
  m.space.RefreshClients(now_ms);
}

}  // namespace tandem::meta
