// The primary's side of tandem.v1.Replication/Verify (DESIGN.md §6), without gRPC: compares a
// standby's sample with this node's store at the standby's applied seq.
//
// Order matters for correctness under concurrent writes: the primary's keys are read first, then
// the log after the standby's seq. Every change the key read saw was appended to the log before
// it was applied (MetaStore::Commit), so every key that differs only because one side is ahead
// is in that log tail and skipped. Records sent for repair are re-read and dropped when they no
// longer match the compared checksum (the key changed since).
#pragma once

#include <cstdint>

#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "tandem/v1/replication.pb.h"

namespace tandem::verification {

struct AnswerLimits {
  uint64_t seq_diff_threshold = 1000;   // --verify-seq-diff-threshold
  uint64_t max_repairs = 10;            // --verify-max-repairs
  uint32_t max_keys_per_shard = 10000;  // a request sending more is refused (need_full_sync no)
};

// Fills `out`. need_full_sync with a reason when the gap is above the threshold, out of the log
// window, the standby is ahead of us, or there are more differences than max_repairs.
// INVALID_PARAMS for a malformed request (shard out of range, too many keys).
Status AnswerVerify(const tandem::v1::VerifyRequest& request, const meta::MetaStore& store,
                    const oplog::LogBuffer& log, const AnswerLimits& limits,
                    tandem::v1::VerifyResponse* out);

}  // namespace tandem::verification
