// Durability: a node's snapshots, its local write-ahead log and its cold start (DESIGN.md §5,
// issue 5). Owns the WalWriter (<data-dir>/wal, --wal-dir) and a LocalDirStore of snapshots
// (<data-dir>/snapshots, --snapshot-dir), and wires them into the node:
//
// - Recover(), at start-up before any service: RecoverState (newest valid snapshot + WAL tail +
//   fresh leases) into the still empty store, then opens the WAL at recovered seq + 1 and starts
//   observing the LogBuffer. The caller positions the Sequencer (Sequencer::Resume).
// - Every entry the node applies reaches the WAL through the LogBuffer observer (OnAppend): the
//   leader's Sequencer and a standby's follower both append there, in seq order. Enqueue never
//   waits for I/O; group commit and the fsync policy are the WalWriter's.
// - A full sync on a standby replaces the state and clears the LogBuffer (OnClear): a snapshot
//   of the loaded state is written at once, on that thread, and the WAL restarts after it, so
//   snapshot + WAL never have a gap.
// - gate(): the client path's WriteGate, a decorator after the replication gate. Under
//   --wal-fsync always a write is acknowledged only once the replication gate said OK *and* the
//   WAL fsynced its seq; the wait is a callback list keyed by seq, served by one waiter thread,
//   so no gRPC thread blocks.
// - Snapshots: every --snapshot-interval-s (0: off) and on demand (RequestSnapshot, the Snapshot
//   RPC), on one background thread. MetaStore::CaptureImage copies on write (clients are not
//   stalled); the store writes temp + fsync + rename and keeps --snapshot-retention. Then the WAL
//   segments the *previous* snapshot covers are deleted: if the newest snapshot turns out
//   damaged, the one before it plus the WAL still recover everything. Then the in-memory
//   LogBuffer is truncated before SnapshotTruncationPoint: the entry after the snapshot, unless
//   a connected standby still needs older ones (Deps::min_needed_seq) -- the snapshot plus the
//   window now serve a standby out of the window (image_source()).
// - Recover() also refills the LogBuffer with the WAL entries it replays (within the buffer's
//   bounds), so a node restarted as primary resumes its standbys incrementally.
//
// Thread-safe. Start/Stop from the node's control thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "oplog/wal_writer.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/durability_status.h"
#include "server/low_priority_runner.h"
#include "server/metrics.h"
#include "server/snapshot_image_source.h"
#include "server/write_gate.h"
#include "snapshot/local_dir_store.h"
#include "snapshot/recovery.h"

namespace tandem::server {

// The result of one snapshot (the Snapshot RPC's answer).
struct SnapshotResult {
  std::string id;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  double seconds = 0;          // capture + write
  double capture_seconds = 0;  // the copy-on-write capture alone
  double paced_seconds = 0;    // waiting for --snapshot-write-mib-per-s (0 on an idle node)
};

// The durability directories of a config: --wal-dir / --snapshot-dir, else under --data-dir.
std::string WalDirOf(const MasterConfig& config);
std::string SnapshotDirOf(const MasterConfig& config);

// The first seq the OpLog window keeps after a snapshot at `snapshot_seq`: the entry right after
// it, or the lowest seq a connected standby still needs (`min_needed_seq`, UINT64_MAX: none),
// whichever is lower -- but never past the newest entry `window_last`, so a window that held
// entries never becomes empty. Holds (full syncs in flight) are honoured by
// LogBuffer::TruncateBefore itself. 0 (truncate nothing) when the window is empty.
uint64_t SnapshotTruncationPoint(uint64_t snapshot_seq, uint64_t min_needed_seq,
                                 uint64_t window_last);

class Durability : public oplog::LogObserver {
 public:
  struct Deps {
    meta::MetaStore* store = nullptr;
    oplog::LogBuffer* log = nullptr;
    WriteGate* inner_gate = nullptr;  // the replication gate; null: ImmediateWriteGate
    Clock* clock = nullptr;
    // The node's current leadership epoch, written into snapshot headers (0: the image's).
    std::function<uint64_t()> current_epoch;
    // The lowest seq a connected standby still needs from the LogBuffer, UINT64_MAX when none
    // (ReplicationPrimary::MinNeededSeq). Empty: no standbys, truncate to the snapshot.
    std::function<uint64_t()> min_needed_seq;
    // A count that moves whenever the node works for someone (client requests served, entries
    // applied). A snapshot is paced only while it moves; empty: always paced.
    std::function<uint64_t()> activity;
  };
  // Borrowed deps must outlive this object.
  Durability(const MasterConfig& config, Deps deps);
  ~Durability() override;  // Stop()
  Durability(const Durability&) = delete;
  Durability& operator=(const Durability&) = delete;

  // Cold start into the (fresh) store; then opens the WAL and observes the log. Errors when the
  // directories are unusable (not writable, not directories) or the WAL cannot be opened;
  // damaged files are skipped and reported, not errors. Call once, before any traffic.
  Status Recover();
  const snapshot::RecoveryReport& report() const { return report_; }
  // Starts the snapshot and waiter threads (after Recover).
  void Start();
  // Fails waiting writes (UNAVAILABLE), stops the threads, detaches from the log, and closes the
  // WAL (which writes and fsyncs what it holds). Idempotent.
  void Stop();

  // The client path's WriteGate (see the header comment).
  WriteGate* gate() { return &gate_; }
  // This node's snapshots as full-sync images for ReplicationPrimary::SetImageSource.
  replication::ImageSource* image_source() { return &image_source_; }

  // Takes a snapshot on the background thread; `done` is called from it (or inline with an
  // error when stopped).
  void RequestSnapshot(std::function<void(StatusOr<SnapshotResult>)> done);
  // Takes a snapshot on the calling thread (tests, benchmarks).
  StatusOr<SnapshotResult> SnapshotNow();

  DurabilityStatus GetStatus() const;
  bool recovering() const { return recovering_.load(std::memory_order_acquire); }
  // tandem_snapshot_*, tandem_wal_*, tandem_recovery_* gauges and counters.
  void RegisterMetrics(metrics::Registry* registry);

  // oplog::LogObserver
  void OnAppend(const tandem::v1::OpLogEntry& entry) override;
  void OnClear() override;

 private:
  class Gate : public WriteGate {
   public:
    explicit Gate(Durability* owner) : owner_(owner) {}
    Status Admit(Access access) override;
    void AwaitCommit(uint64_t seq, std::function<void(Status)> done) override;

   private:
    Durability* const owner_;
  };

  Status PrepareDir(const std::string& dir) const;
  // Holds `done` until the WAL made `seq` durable (always mode).
  void AwaitDurable(uint64_t seq, std::function<void(Status)> done);
  void WaiterLoop();
  void SnapshotLoop();
  // Capture + write + WAL cleanup; serialized by snapshot_mu_. `rebase`: the state was replaced
  // (full sync): the WAL restarts after the snapshot.
  StatusOr<SnapshotResult> TakeSnapshot(bool rebase);
  StatusOr<snapshot::SnapshotInfo> WriteImage(const meta::StateImage& image, bool rebase,
                                              const std::function<void()>& between_blocks);
  // After a snapshot at `snapshot_seq`: drops the window's entries before
  // SnapshotTruncationPoint.
  void TruncateWindow(uint64_t snapshot_seq);
  void NoteWalError(const Status& status);

  const MasterConfig config_;
  const Deps deps_;
  const oplog::WalFsync fsync_;
  const std::string wal_dir_;
  const std::string snapshot_dir_;
  snapshot::LocalDirStore snapshots_;
  SnapshotImageSource image_source_;
  Gate gate_{this};
  ImmediateWriteGate immediate_;

  std::atomic<bool> recovering_{false};
  std::atomic<bool> recovered_{false};
  snapshot::RecoveryReport report_;

  // The WAL. wal_mu_ orders OnAppend against Reset (a rebase) and Stop.
  mutable std::mutex wal_mu_;
  std::unique_ptr<oplog::WalWriter> wal_;
  std::string wal_error_;  // guarded by wal_mu_
  uint64_t refused_appends_ = 0;

  // Snapshots. snapshot_mu_ serializes TakeSnapshot; stats_mu_ guards the fields below it.
  std::mutex snapshot_mu_;
  mutable std::mutex stats_mu_;
  DurabilityStatus stats_;  // the snapshot and recovery fields only

  // Serializes and writes snapshots at --snapshot-priority while the snapshot thread itself
  // (which captures, truncates and removes WAL segments, all under locks clients share) runs at
  // normal priority. Set while started; guarded by snapshot_mu_.
  std::unique_ptr<LowPriorityRunner> writer_;

  // The snapshot thread.
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  std::deque<std::function<void(StatusOr<SnapshotResult>)>> requests_;
  std::atomic<bool> stop_{false};  // written under loop_mu_; read by a paced snapshot too
  bool started_ = false;
  std::thread snapshot_thread_;

  // Writes waiting for the WAL (always mode): seq -> callbacks.
  std::mutex waiters_mu_;
  std::condition_variable waiters_cv_;
  std::multimap<uint64_t, std::function<void(Status)>> waiters_;
  bool waiters_stop_ = false;
  std::thread waiter_thread_;
};

}  // namespace tandem::server
