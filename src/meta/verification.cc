// MetaStore's verification support (DESIGN.md §6): per-key checksums in a deterministic order,
// object records for repairs, compare-and-set repairs, and DIGEST markers.
#include <algorithm>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {
namespace {

uint64_t KeyHash(std::string_view key) { return XXH64(key.data(), key.size(), 0); }

tandem::v1::ObjectRecord ToRecord(const ObjectNode& node) {
  tandem::v1::ObjectRecord r;
  r.set_key(std::string(node.key()));
  r.set_value_size(node.value_size);
  r.set_complete(node.complete());
  r.set_owner_client_hash(node.owner_client_hash);
  r.set_soft_pin(node.soft_pin);
  r.set_put_start_ms(node.put_start_ms());
  for (const Placement& p : node.replicas) {
    tandem::v1::ReplicaPlacement* out = r.add_replicas();
    out->set_segment_handle(p.segment_handle);
    out->set_offset(p.offset);
    out->set_size(node.value_size);
  }
  return r;
}

// Compare-and-set guard of a repair: the key's current checksum must still be `expected`.
Status CheckExpected(const ObjectNode* node, std::optional<uint64_t> expected) {
  std::optional<uint64_t> now;
  if (node != nullptr) now = ObjectDigest(*node);
  if (now != expected) {
    return Error(ErrorCode::kInvalidState, "the key changed since it was sampled");
  }
  return Status::Ok();
}

}  // namespace

bool MetaStore::VerifyOrderLess(std::string_view a, std::string_view b) {
  uint64_t ha = KeyHash(a);
  uint64_t hb = KeyHash(b);
  return ha != hb ? ha < hb : a < b;
}

std::vector<MetaStore::KeyChecksum> MetaStore::ShardKeys(
    int shard, std::string_view after_key, size_t limit,
    std::optional<std::string_view> up_to_key) const {
  std::vector<KeyChecksum> out;
  if (shard < 0 || shard >= kShardCount || limit == 0) return out;
  std::vector<std::pair<uint64_t, const ObjectNode*>> nodes;
  const Shard& s = impl_->shards[shard];
  std::lock_guard<std::mutex> lock(s.mu);
  nodes.reserve(s.state.objects.size());
  const uint64_t after_hash = KeyHash(after_key);
  const uint64_t up_to_hash = up_to_key ? KeyHash(*up_to_key) : 0;
  for (const NodePtr& node : s.state.objects) {
    uint64_t h = KeyHash(node->key());
    if (!after_key.empty() && (h < after_hash || (h == after_hash && node->key() <= after_key))) {
      continue;
    }
    if (up_to_key && (h > up_to_hash || (h == up_to_hash && node->key() > *up_to_key))) {
      continue;
    }
    nodes.emplace_back(h, node.get());
  }
  auto less = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->key() < b.second->key();
  };
  if (nodes.size() > limit) {
    std::nth_element(nodes.begin(), nodes.begin() + static_cast<ptrdiff_t>(limit), nodes.end(),
                     less);
    nodes.resize(limit);
  }
  std::sort(nodes.begin(), nodes.end(), less);
  out.reserve(nodes.size());
  for (const auto& [h, node] : nodes)
    out.push_back({std::string(node->key()), ObjectDigest(*node)});
  return out;
}

std::optional<uint64_t> MetaStore::KeyChecksumOf(std::string_view key) const {
  const Shard& s = impl_->shards[ShardOf(key)];
  std::lock_guard<std::mutex> lock(s.mu);
  const ObjectNode* node = s.state.Find(key);
  if (node == nullptr) return std::nullopt;
  return ObjectDigest(*node);
}

std::optional<tandem::v1::ObjectRecord> MetaStore::GetObjectRecord(std::string_view key,
                                                                   uint64_t* checksum) const {
  const Shard& s = impl_->shards[ShardOf(key)];
  std::lock_guard<std::mutex> lock(s.mu);
  const ObjectNode* node = s.state.Find(key);
  if (node == nullptr) return std::nullopt;
  if (checksum != nullptr) *checksum = ObjectDigest(*node);
  return ToRecord(*node);
}

Status MetaStore::RepairUpsert(const tandem::v1::ObjectRecord& record,
                               std::optional<uint64_t> expected, uint64_t now_ms) {
  const std::string& key = record.key();
  if (key.empty() || key.size() > UINT32_MAX) return Internal("empty or oversized key");
  const uint64_t size = record.value_size();
  if (size == 0 || record.replicas_size() == 0) return Internal("no value or no replica");
  Placements placements;
  for (const tandem::v1::ReplicaPlacement& p : record.replicas()) {
    placements.push_back({p.segment_handle(), p.offset()});
  }
  Impl& m = *impl_;
  LockSet locks = m.Locks();
  locks.Shards({ShardOf(key)});
  locks.Space();
  ShardState& shard = m.ShardFor(key).state;
  ObjectNode* node = shard.Find(key);
  if (Status s = CheckExpected(node, expected); !s.ok()) return s;
  // Free the old replicas first (they may overlap the new ones), then allocate; on a conflict
  // put the old ones back so nothing changed.
  if (node != nullptr && !m.space.Release(node->replicas, node->value_size)) {
    return Internal("corrupt state: a replica of '", key, "' was not allocated");
  }
  if (Status s = m.space.CheckAllocate(placements, size); !s.ok()) {
    if (node != nullptr) m.space.Allocate(node->replicas, node->value_size);
    return Internal("repair of '", key, "' does not fit: ", s.message());
  }
  m.space.Allocate(placements, size);
  auto fill = [&](ObjectNode& n) {
    n.value_size = size;
    n.owner_client_hash = record.owner_client_hash();
    n.soft_pin = record.soft_pin();
    n.state = record.complete() ? ReplicaState::kComplete : ReplicaState::kProcessing;
    n.aux_ms = !record.complete()  ? record.put_start_ms()
               : record.soft_pin() ? now_ms + m.options.soft_pin_ttl_ms
                                   : 0;
    n.lease_deadline_ms = now_ms + m.options.lease_ttl_ms;
    n.last_access_ms = now_ms;
    n.replicas = placements;
  };
  if (node != nullptr) {
    shard.Update(node, fill);
  } else {
    NodePtr fresh = ObjectNode::Create(key);
    fill(*fresh);
    shard.Insert(std::move(fresh));
  }
  return Status::Ok();
}

Status MetaStore::RepairDelete(std::string_view key, std::optional<uint64_t> expected) {
  Impl& m = *impl_;
  LockSet locks = m.Locks();
  locks.Shards({ShardOf(key)});
  locks.Space();
  ShardState& shard = m.ShardFor(key).state;
  ObjectNode* node = shard.Find(key);
  if (Status s = CheckExpected(node, expected); !s.ok()) return s;
  if (node == nullptr) return Status::Ok();
  // A replica the standby's space does not know (divergence) is dropped with the object.
  m.space.Release(node->replicas, node->value_size);
  shard.Erase(node);
  return Status::Ok();
}

StatusOr<uint64_t> MetaStore::AppendDigest(uint64_t now_ms) {
  Impl& m = *impl_;
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  tandem::v1::DigestEffect effect;
  for (const Shard& shard : m.shards) effect.add_shard_digests(shard.state.digest);
  effect.set_segment_digest(m.space.digest());
  tandem::v1::OpLogEntry entry = MakeEntry(tandem::v1::OpType::DIGEST, "", &effect, now_ms);
  if (Status s = m.Commit(entry); !s.ok()) return s;
  return entry.sequence_id();
}

// Caller holds every shard lock and the space lock (LockFor).
Status MetaStore::Impl::ApplyDigest(const tandem::v1::OpLogEntry& entry) {
  tandem::v1::DigestEffect effect;
  if (!effect.ParseFromString(entry.payload()) || effect.shard_digests_size() != kShardCount) {
    return Internal("malformed DigestEffect");
  }
  std::vector<int> differ;
  for (int i = 0; i < kShardCount; ++i) {
    if (shards[i].state.digest != effect.shard_digests(i)) differ.push_back(i);
  }
  const bool segments_differ = space.digest() != effect.segment_digest();
  std::lock_guard<std::mutex> lock(digest_mu);
  ++digest_stats.checks;
  digest_stats.last_check_seq = entry.sequence_id();
  digest_stats.mismatched_shards += differ.size();
  if (segments_differ) {
    ++digest_stats.segment_mismatches;
    digest_segments_differ = true;
  }
  for (int i : differ) digest_mismatches.insert(i);
  return Status::Ok();
}

MetaStore::DigestCheckStats MetaStore::GetDigestCheckStats() const {
  std::lock_guard<std::mutex> lock(impl_->digest_mu);
  return impl_->digest_stats;
}

std::vector<int> MetaStore::TakeDigestMismatches(bool* segments_differ) {
  std::lock_guard<std::mutex> lock(impl_->digest_mu);
  std::vector<int> out(impl_->digest_mismatches.begin(), impl_->digest_mismatches.end());
  impl_->digest_mismatches.clear();
  if (segments_differ != nullptr) *segments_differ = impl_->digest_segments_differ;
  impl_->digest_segments_differ = false;
  return out;
}

}  // namespace tandem::meta
