#include "meta/dedup_window.h"

#define XXH_STATIC_LINKING_ONLY  // stack-allocated XXH64_state_t
#include <xxhash.h>

#include <algorithm>

namespace tandem::meta {

DedupWindow::DedupWindow(uint64_t capacity)
    : capacity_(capacity), per_shard_((capacity + kShards - 1) / kShards) {}

DedupWindow::HashedId DedupWindow::Hashed(std::string_view request_id) {
  return {request_id, XXH64(request_id.data(), request_id.size(), 0)};
}

size_t DedupWindow::IdHash::operator()(const std::string& id) const { return (*this)(Hashed(id)); }

std::optional<AppliedRequest> DedupWindow::Find(std::string_view request_id) const {
  if (capacity_ == 0 || request_id.empty()) return std::nullopt;
  const HashedId key = Hashed(request_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.by_id.find(key);
  if (it == shard.by_id.end()) return std::nullopt;
  return it->second;
}

void DedupWindow::EraseFromSeq(Shard& shard, uint64_t seq, const std::string* id) {
  auto it = std::lower_bound(shard.by_seq.begin(), shard.by_seq.end(), seq,
                             [](const SeqRef& entry, uint64_t s) { return entry.seq < s; });
  while (it != shard.by_seq.end() && it->seq == seq) {
    if (it->id == id) {
      shard.by_seq.erase(it);
      return;
    }
    ++it;
  }
}

void DedupWindow::Record(std::string_view request_id, AppliedRequest applied) {
  if (capacity_ == 0 || request_id.empty()) return;
  const HashedId key = Hashed(request_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.by_id.find(key);
  if (it == shard.by_id.end()) {
    it = shard.by_id.lazy_emplace(
        key, [&](const auto& construct) { construct(std::string(request_id), applied); });
  } else {
    if (it->second.seq >= applied.seq) return;  // replay, or an older duplicate
    EraseFromSeq(shard, it->second.seq, &it->first);
    it->second = applied;
  }
  // Usually the newest seq: append; concurrent applies may arrive slightly out of order.
  auto pos = shard.by_seq.end();
  while (pos != shard.by_seq.begin() && std::prev(pos)->seq > applied.seq) --pos;
  shard.by_seq.insert(pos, SeqRef{applied.seq, &it->first, key.hash});
  while (shard.by_seq.size() > per_shard_) {
    const SeqRef oldest = shard.by_seq.front();
    shard.by_seq.pop_front();
    shard.by_id.erase(shard.by_id.find(HashedId{*oldest.id, oldest.hash}));
  }
}

uint64_t DedupWindow::size() const {
  uint64_t total = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    total += shard.by_id.size();
  }
  return total;
}

void DedupWindow::Clear() {
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.by_seq.clear();
    shard.by_id.clear();
  }
}

std::vector<RequestEntry> DedupWindow::Entries() const {
  std::vector<RequestEntry> out;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [id, applied] : shard.by_id) out.push_back({id, applied});
  }
  return out;
}

void DedupWindow::SortEntries(std::vector<RequestEntry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const RequestEntry& a, const RequestEntry& b) {
    if (a.applied.seq != b.applied.seq) return a.applied.seq < b.applied.seq;
    return a.request_id < b.request_id;
  });
}

void DedupWindow::Swap(DedupWindow& other) {
  for (int i = 0; i < kShards; ++i) {
    std::scoped_lock lock(shards_[i].mu, other.shards_[i].mu);
    // node_hash_map keeps its nodes on swap, so the by_seq pointers stay valid.
    shards_[i].by_id.swap(other.shards_[i].by_id);
    shards_[i].by_seq.swap(other.shards_[i].by_seq);
  }
}

uint64_t DedupWindow::RecordDigest(std::string_view request_id, const AppliedRequest& applied) {
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  unsigned char bytes[20];
  const uint64_t len = request_id.size();
  const uint32_t op = static_cast<uint32_t>(applied.op_type);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(len >> (8 * i));
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<unsigned char>(applied.seq >> (8 * i));
  for (int i = 0; i < 4; ++i) bytes[16 + i] = static_cast<unsigned char>(op >> (8 * i));
  XXH64_update(&state, bytes, sizeof(bytes));
  XXH64_update(&state, request_id.data(), request_id.size());
  return XXH64_digest(&state);
}

uint64_t DedupWindow::Digest() const {
  uint64_t sum = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [id, applied] : shard.by_id) sum += RecordDigest(id, applied);
  }
  return sum;
}

}  // namespace tandem::meta
