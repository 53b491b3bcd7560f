// Cold start (DESIGN.md §5): rebuild a node's state from its newest valid snapshot plus the tail
// of its local write-ahead log.
//
// RecoverState, into a fresh store (applied_seq 0):
//  1. Loads the newest snapshot that is whole and of this cluster. A corrupt, truncated or
//     foreign one is skipped with a log line saying why, and the next older one is tried; with
//     none left the state starts empty. A refused snapshot leaves the store empty, never half.
//  2. Replays the WAL entries after the snapshot's seq through MetaStore::Apply, in order (and
//     hands each applied one to `on_replayed`: the OpLog window is refilled from them). It
//     stops at the first gap, damaged record or refused entry (log line + report), and then
//     moves the unusable rest of the WAL aside (DiscardWalAfter) so a WalWriter can continue at
//     last_seq + 1. A torn last record is cut off by the reader: a crash mid-write, not damage.
//  3. Gives every object a fresh lease and every client a fresh TTL (RefreshSoftState): leases
//     are soft state, and restoring them as expired would let the first Remove/eviction drop
//     objects readers may still hold.
// Afterwards: open the WalWriter with next_seq = report.last_seq + 1 and publish
// (report.last_epoch, report.last_seq) as the node's recovered position.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "meta/meta_store.h"
#include "snapshot/store.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::snapshot {

struct SkippedSnapshot {
  std::string id;
  std::string reason;
};

struct RecoveryReport {
  std::string snapshot_id;  // empty: no valid snapshot, replay started from an empty state
  uint64_t snapshot_seq = 0;
  std::vector<SkippedSnapshot> skipped;
  uint64_t wal_records_replayed = 0;
  std::string wal_stop_reason;         // empty when the WAL was read to its clean end
  std::vector<std::string> wal_notes;  // repairs: torn tail cut, files moved aside
  uint64_t last_seq = 0;               // the recovered position
  uint64_t last_epoch = 0;
  uint64_t objects = 0;
  double seconds = 0;

  // One line for the log and `status`.
  std::string Summary() const;
};

// Called with every WAL entry replayed, right after the store applied it (in seq order, without
// gaps): the node refills its in-memory OpLog window from them.
using ReplayedEntryFn = std::function<void(const tandem::v1::OpLogEntry&)>;

// Errors only when recovery cannot run at all (store not fresh, unreadable directories);
// damaged files are skipped and reported, not errors. `on_replayed` may be empty.
StatusOr<RecoveryReport> RecoverState(meta::MetaStore* store, SnapshotStore& snapshots,
                                      const std::string& wal_dir, std::string_view cluster_id,
                                      uint64_t now_ms, const ReplayedEntryFn& on_replayed = {});

}  // namespace tandem::snapshot
