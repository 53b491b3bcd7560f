#include "verification/compare.h"

#include <algorithm>

namespace tandem::verification {

using tandem::v1::OpType;

void CollectTouched(const std::vector<tandem::v1::OpLogEntry>& entries, TouchedKeys* out) {
  for (const tandem::v1::OpLogEntry& entry : entries) {
    switch (entry.op_type()) {
      case OpType::PUT_START:
      case OpType::PUT_END:
      case OpType::PUT_REVOKE:
      case OpType::REMOVE:
        out->keys.insert(entry.object_key());
        break;
      case OpType::EVICTION:
      case OpType::REMOVE_ALL: {
        tandem::v1::KeyListEffect effect;
        if (!effect.ParseFromString(entry.payload())) {
          out->all = true;
          break;
        }
        for (const std::string& key : effect.keys()) out->keys.insert(key);
        break;
      }
      case OpType::MOUNT_SEGMENT:  // no object changes
      case OpType::EPOCH_START:
      case OpType::DIGEST:
        break;
      default:  // UNMOUNT_SEGMENT, CLIENT_EXPIRED (replicas dropped anywhere), unknown
        out->all = true;
        break;
    }
  }
}

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kMismatch:
      return "mismatch";
    case Verdict::kMissingOnPrimary:
      return "missing-on-primary";
    case Verdict::kMissingOnStandby:
      return "missing-on-standby";
  }
  return "?";
}

ShardComparison CompareShard(const std::vector<KeyChecksum>& standby, bool complete,
                             const std::vector<KeyChecksum>& primary, const TouchedKeys& touched) {
  ShardComparison out;
  const bool bounded = !complete && !standby.empty();
  const std::string_view end = bounded ? std::string_view(standby.back().key) : "";
  auto in_range = [&](const std::string& key) {
    return !bounded || key == end || meta::MetaStore::VerifyOrderLess(key, end);
  };
  auto consider = [&](const std::string& key, Verdict verdict, uint64_t p, uint64_t s) {
    if (touched.Contains(key)) {
      ++out.skipped;
      return;
    }
    ++out.checked;
    if (verdict == Verdict::kMismatch && p == s) return;
    out.differences.push_back({key, verdict, p, s});
  };
  size_t i = 0;  // standby
  size_t j = 0;  // primary
  while (i < standby.size() || (j < primary.size() && in_range(primary[j].key))) {
    if (j >= primary.size() || !in_range(primary[j].key)) {
      consider(standby[i].key, Verdict::kMissingOnPrimary, 0, standby[i].checksum);
      ++i;
    } else if (i >= standby.size()) {
      consider(primary[j].key, Verdict::kMissingOnStandby, primary[j].checksum, 0);
      ++j;
    } else if (standby[i].key == primary[j].key) {
      consider(standby[i].key, Verdict::kMismatch, primary[j].checksum, standby[i].checksum);
      ++i;
      ++j;
    } else if (meta::MetaStore::VerifyOrderLess(standby[i].key, primary[j].key)) {
      consider(standby[i].key, Verdict::kMissingOnPrimary, 0, standby[i].checksum);
      ++i;
    } else {
      consider(primary[j].key, Verdict::kMissingOnStandby, primary[j].checksum, 0);
      ++j;
    }
  }
  return out;
}

int ShardsPerRound(int shard_count, double ratio) {
  if (shard_count <= 0) return 0;
  if (!(ratio > 0)) return 1;
  double n = static_cast<double>(shard_count) * ratio;
  int count = static_cast<int>(n);
  if (static_cast<double>(count) < n) ++count;
  return std::clamp(count, 1, shard_count);
}

std::vector<int> ShardSelector::Next(int count, const std::vector<int>& priority) {
  std::vector<int> out;
  std::vector<bool> taken(static_cast<size_t>(shard_count_), false);
  for (int shard : priority) {
    if (shard < 0 || shard >= shard_count_ || taken[shard]) continue;
    taken[shard] = true;
    out.push_back(shard);
  }
  count = std::min(count, shard_count_);
  for (int n = 0; n < count; ++n) {
    int shard = cursor_;
    cursor_ = (cursor_ + 1) % shard_count_;
    if (taken[shard]) continue;
    taken[shard] = true;
    out.push_back(shard);
  }
  return out;
}

const char* PassStatusName(PassStatus status) {
  switch (status) {
    case PassStatus::kOk:
      return "ok";
    case PassStatus::kRepaired:
      return "repaired";
    case PassStatus::kFullSync:
      return "full_sync";
    case PassStatus::kBehind:
      return "behind";
    case PassStatus::kError:
      return "error";
  }
  return "?";
}

}  // namespace tandem::verification
