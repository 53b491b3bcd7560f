#include "verification/answer.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verification/compare.h"

namespace tandem::verification {
namespace {

void NeedFullSync(tandem::v1::VerifyResponse* out, std::string reason) {
  out->set_need_full_sync(true);
  out->set_reason(std::move(reason));
  out->clear_results();
}

tandem::v1::VerifyVerdict ToProto(Verdict verdict) {
  switch (verdict) {
    case Verdict::kMismatch:
      return tandem::v1::VERIFY_MISMATCH;
    case Verdict::kMissingOnPrimary:
      return tandem::v1::VERIFY_MISSING_ON_PRIMARY;
    case Verdict::kMissingOnStandby:
      return tandem::v1::VERIFY_MISSING_ON_STANDBY;
  }
  return tandem::v1::VERIFY_VERDICT_UNSPECIFIED;
}

}  // namespace

Status AnswerVerify(const tandem::v1::VerifyRequest& request, const meta::MetaStore& store,
                    const oplog::LogBuffer& log, const AnswerLimits& limits,
                    tandem::v1::VerifyResponse* out) {
  out->Clear();
  std::vector<KeyChecksum> standby;
  for (const tandem::v1::VerifyShard& shard : request.shards()) {
    if (shard.shard() >= static_cast<uint32_t>(meta::kShardCount)) {
      return Status(ErrorCode::kInvalidParams,
                    "shard " + std::to_string(shard.shard()) + " out of range");
    }
    if (static_cast<uint32_t>(shard.keys_size()) > limits.max_keys_per_shard) {
      return Status(ErrorCode::kInvalidParams,
                    "too many keys for shard " + std::to_string(shard.shard()));
    }
  }
  // 1. Our keys in the standby's page range (each shard under its lock): after its cursor and,
  // unless it reached the shard's end, up to its greatest key. (The request is not trusted to be
  // sorted, so the greatest is computed.)
  std::vector<std::vector<KeyChecksum>> primary(request.shards_size());
  for (int i = 0; i < request.shards_size(); ++i) {
    const tandem::v1::VerifyShard& shard = request.shards(i);
    std::optional<std::string_view> up_to;
    if (!shard.complete() && shard.keys_size() > 0) {
      std::string_view greatest = shard.keys(0).key();
      for (const tandem::v1::VerifyKey& k : shard.keys()) {
        if (meta::MetaStore::VerifyOrderLess(greatest, k.key())) greatest = k.key();
      }
      up_to = greatest;
    }
    primary[i] =
        store.ShardKeys(static_cast<int>(shard.shard()), shard.after_key(), SIZE_MAX, up_to);
  }
  // 2. The log after the standby's seq: what it may not have yet.
  const uint64_t seq = request.applied_seq();
  const uint64_t last = std::max(log.last_seq(), store.applied_seq());
  out->set_primary_seq(last);
  if (seq > last) {
    NeedFullSync(out, "standby seq " + std::to_string(seq) + " is ahead of the primary's " +
                          std::to_string(last));
    return Status::Ok();
  }
  if (last - seq > limits.seq_diff_threshold) {
    NeedFullSync(out, "standby is " + std::to_string(last - seq) + " entries behind (threshold " +
                          std::to_string(limits.seq_diff_threshold) + ")");
    out->set_behind(true);
    return Status::Ok();
  }
  TouchedKeys touched;
  if (last > seq) {
    auto entries = log.EntriesSince(seq, limits.seq_diff_threshold + 1);
    if (!entries.ok()) {
      NeedFullSync(out, "standby seq " + std::to_string(seq) + " is out of the log window");
      return Status::Ok();
    }
    CollectTouched(entries.value(), &touched);
    // The window must reach the last seq the key read could have seen; if the log is behind
    // the store (a restored node), anything may have changed.
    if (entries.value().empty() || entries.value().back().sequence_id() < last) touched.all = true;
  }
  // 3. Compare.
  struct Found {
    uint32_t shard;
    Difference diff;
  };
  std::vector<Found> found;
  for (int i = 0; i < request.shards_size(); ++i) {
    const tandem::v1::VerifyShard& shard = request.shards(i);
    standby.clear();
    for (const tandem::v1::VerifyKey& k : shard.keys()) standby.push_back({k.key(), k.checksum()});
    ShardComparison c = CompareShard(standby, shard.complete(), primary[i], touched);
    out->set_keys_checked(out->keys_checked() + c.checked);
    out->set_keys_skipped(out->keys_skipped() + c.skipped);
    for (Difference& d : c.differences) found.push_back({shard.shard(), std::move(d)});
  }
  if (found.size() > limits.max_repairs) {
    NeedFullSync(out, std::to_string(found.size()) +
                          " differences, more than --verify-max-repairs " +
                          std::to_string(limits.max_repairs));
    return Status::Ok();
  }
  // 4. The records to repair with, still as compared.
  for (Found& f : found) {
    tandem::v1::VerifyKeyResult result;
    result.set_shard(f.shard);
    result.set_key(f.diff.key);
    result.set_verdict(ToProto(f.diff.verdict));
    result.set_primary_checksum(f.diff.primary_checksum);
    result.set_standby_checksum(f.diff.standby_checksum);
    uint64_t checksum = 0;
    std::optional<tandem::v1::ObjectRecord> record = store.GetObjectRecord(f.diff.key, &checksum);
    if (f.diff.verdict == Verdict::kMissingOnPrimary) {
      if (record.has_value()) {  // created since: not comparable any more
        out->set_keys_skipped(out->keys_skipped() + 1);
        continue;
      }
    } else {
      if (!record.has_value() || checksum != f.diff.primary_checksum) {
        out->set_keys_skipped(out->keys_skipped() + 1);
        continue;
      }
      *result.mutable_record() = std::move(*record);
    }
    *out->add_results() = std::move(result);
  }
  return Status::Ok();
}

}  // namespace tandem::verification
