// The two decisions a primary makes when a standby says hello, as pure functions: may this
// standby sync from us at all, and does it resume incrementally or need a full sync. No I/O;
// ReplicationPrimary feeds them the current log window and epoch history.
#pragma once

#include <cstdint>
#include <string>

#include "replication/epoch_history.h"
#include "tandem/v1/replication.pb.h"

namespace tandem::replication {

// Empty when the hello is acceptable; otherwise the FAILED_PRECONDITION message (cluster id
// mismatch, a standby naming this node itself, or this node not being the primary).
std::string CheckHello(const tandem::v1::SyncHello& hello, const std::string& cluster_id,
                       const std::string& node_id, bool serving, const std::string& leader_hint);

struct SyncPlan {
  bool full_sync = false;
  std::string reason;  // for the log line and SyncAccepted.reason
};

// INCREMENTAL when the standby's (last_epoch, last_seq) is a prefix of our history and either it
// is at our last seq or the log after last_seq is in the window [window_first, window_last]
// (window_first 0: empty window). FULL_SYNC otherwise: new standby, out of window, diverged.
SyncPlan PlanSync(uint64_t last_epoch, uint64_t last_seq, uint64_t our_last_seq,
                  uint64_t window_first, uint64_t window_last, const EpochHistory& history);

// Whether a stored image (a snapshot) at (image_epoch, image_seq) followed by the log window
// [window_first, window_last] (window_first 0: empty) gives our state at our_last_seq without a
// gap, so a full sync may stream it instead of a live image. Empty when it does; otherwise why
// not, for the log: the image is past our last seq or not of our history (a deposed leader's,
// or before what our epoch history knows), or the entries right after it left the window.
// Call it while a LogBuffer hold keeps image_seq + 1, with the window read after taking it.
std::string StoredImageJoinsLog(uint64_t image_epoch, uint64_t image_seq, uint64_t our_last_seq,
                                uint64_t window_first, uint64_t window_last,
                                const EpochHistory& history);

}  // namespace tandem::replication
