// The seam between the metadata state machine and the log. MetaStore decides an effect, hands the
// entry to the sink to be sequenced, and then applies it through the same Apply path a standby
// uses. The sink is called while the affected shard locks (and, for space-changing effects, the
// space lock) are held, which is what makes sequence order equal to application order.
#pragma once

#include "common/status.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::meta {

class EntrySink {
 public:
  virtual ~EntrySink() = default;
  // Fills sequence_id, epoch, checksum and prefix_hash (op_type, object_key, payload and
  // timestamp_ms are set by the caller) and records the entry. A non-OK status (not leader,
  // fenced, log full) aborts the operation before any state changes; the status is returned to
  // the client unchanged. Must be cheap: it runs under locks.
  virtual Status Append(tandem::v1::OpLogEntry& entry) = 0;
};

}  // namespace tandem::meta
