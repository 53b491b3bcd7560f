// DurabilityStatus: what /status, GetStatus and the metrics show about a node's snapshots, its
// write-ahead log and its last cold start. A plain struct, so node_status.h needs no snapshot or
// WAL header.
#pragma once

#include <cstdint>
#include <string>

namespace tandem::server {

struct DurabilityStatus {
  bool enabled = false;     // false until Recover ran (a MasterServer that never started)
  bool recovering = false;  // Recover is running: the node serves nothing yet
  std::string wal_fsync;    // always | interval | never
  std::string wal_dir;
  std::string snapshot_dir;
  // The last cold start.
  uint64_t recovered_seq = 0;
  uint64_t recovered_epoch = 0;
  std::string recovered_snapshot;  // id, empty when none was usable
  uint64_t recovered_wal_records = 0;
  uint64_t skipped_snapshots = 0;
  std::string recovery_summary;  // the log line
  double recovery_seconds = 0;
  // Snapshots taken by this process (the recovered one counts as the last until the first).
  std::string last_snapshot_id;
  uint64_t last_snapshot_seq = 0;
  uint64_t last_snapshot_bytes = 0;
  double last_snapshot_seconds = 0;       // capture + write
  uint64_t last_snapshot_created_ms = 0;  // wall clock; 0: none
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_failed = 0;
  std::string last_snapshot_error;
  // The write-ahead log.
  uint64_t wal_appended_seq = 0;
  uint64_t wal_durable_seq = 0;
  uint64_t wal_bytes = 0;
  uint64_t wal_segments = 0;
  uint64_t wal_fsyncs = 0;
  std::string wal_error;  // the sticky I/O error, or a refused append; empty when healthy
  // The in-memory OpLog window (LogBuffer): truncated after snapshots, refilled at cold start.
  uint64_t oplog_first_seq = 0;  // 0: empty
  uint64_t oplog_last_seq = 0;
  uint64_t oplog_truncated_before = 0;   // the last truncation point; 0: none yet
  uint64_t oplog_truncated_entries = 0;  // dropped by truncations, cumulative
  uint64_t oplog_refilled_entries = 0;   // appended from the WAL by the last cold start
};

}  // namespace tandem::server
