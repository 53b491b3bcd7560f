// ReplicationPrimary: the primary side of tandem.v1.Replication/Sync (DESIGN §2-3).
//
// One bidirectional stream per standby. On the standby's hello the primary checks who is asking
// (cluster id, not itself, this node currently serving as primary), then decides:
// - INCREMENTAL when the standby's (last_epoch, last_seq) is a prefix of our history and the log
//   after last_seq is still in the LogBuffer window;
// - FULL_SYNC otherwise (new standby, out of the window, diverged): an image is streamed in
//   chunks, then the log after the image's seq. A LogBuffer hold keeps that tail while the image
//   is in flight. The image is the newest stored one (a snapshot, from the ImageSource set with
//   SetImageSource) whose following log is still all in the window and which is of our history;
//   otherwise (none, too old, damaged) a live one captured from the MetaStore.
// Either way the stream then carries batches of the log; the standby acknowledges what it applied
// on the same stream. Each stream has one sender thread that sleeps until NotifyAppended (or a
// timer) wakes it, and keeps at most one write in flight.
//
// Batching is clocked by the standby's acks (group commit): a batch goes out when batch_size
// entries are pending, or when the standby acknowledged everything sent so far and
// batch_min_gap_ms passed since the previous batch, or at the latest batch_timeout_ms after it.
// So a lone write goes out at once, and under load batches grow to what arrives during one round
// trip instead of one message per write; per-message cost dominates on this box (STACK.md).
// Sync mode uses no gap (its writers wait for the ack anyway); async uses a small one (2 ms), which
// bounds the standby to ~500 messages a second while keeping its lag to a few ms. Flush() sends
// what is pending at once. An idle stream sends an empty batch every heartbeat_ms so the standby
// can measure lag and notice a dead primary.
//
// OpLog truncation (issue 5): MinNeededSeq() is the lowest seq a connected standby still needs
// (its acked seq + 1; during a full sync, what its image is followed by); the node truncates its
// LogBuffer after a snapshot no further than that.
//
// Wiring (see also the methods): register service() with the grpc::ServerBuilder, hook
// NotifyAppended to Sequencer::SetAppendListener, SetAckListener to AckWaiter::OnAck, call
// SetServing(true, epoch) once this node leads (the node records the epoch in the EpochHistory
// when it opens its sequencer). Standby nodes register the service too: it answers "not a
// primary". Destroy only after the grpc::Server was shut down (or call Shutdown() first).
//
// Thread-safe. Borrowed pointers must outlive the primary. grpc stays out of this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "replication/clock.h"
#include "replication/epoch_history.h"
#include "replication/image_source.h"
#include "tandem/v1/oplog.pb.h"

namespace grpc {
class Service;
}

namespace tandem::replication {

class PrimaryService;  // internal, primary_impl.h

struct PrimaryOptions {
  std::string cluster_id;
  std::string node_id;
  uint32_t batch_size = 100;                  // replication_batch_size
  uint32_t batch_timeout_ms = 10;             // replication_batch_timeout_ms
  uint32_t batch_min_gap_ms = 0;              // replication_batch_min_gap_ms (async: 2)
  uint32_t heartbeat_ms = 200;                // replication_heartbeat_ms
  uint32_t image_chunk_objects = 4096;        // replication_image_chunk_objects
  uint64_t verify_seq_diff_threshold = 1000;  // verify_seq_diff_threshold (Verify RPC)
  uint64_t verify_max_repairs = 10;           // verify_max_repairs (Verify RPC)
};

enum class StandbyState { kFullSync, kStreaming, kDisconnected };
const char* StandbyStateName(StandbyState state);  // "full-sync", "streaming", "disconnected"

struct StandbyStatus {
  std::string standby_id;
  std::string address;
  StandbyState state = StandbyState::kDisconnected;
  uint64_t acked_seq = 0;
  uint64_t lag_entries = 0;         // our last seq - acked_seq
  uint64_t lag_ms = 0;              // now - timestamp of the oldest unacked entry; 0 when caught up
  uint64_t last_ack_ms = 0;         // wall clock; 0 before the first ack
  uint64_t connected_since_ms = 0;  // wall clock of the current (or last) connection
  uint64_t full_syncs = 0;          // full syncs started for this standby
  uint64_t full_syncs_from_snapshot = 0;  // those of them that streamed a stored image
  std::string last_sync_reason;           // why the last connection was INCREMENTAL or FULL_SYNC
  std::string last_image;  // the last full sync's image: "snapshot <id> at seq S" / "live ..."
};

class ReplicationPrimary {
 public:
  // `wall_clock`: milliseconds since the epoch, the clock entries are stamped with (lag_ms).
  ReplicationPrimary(const PrimaryOptions& options, oplog::LogBuffer* log, meta::MetaStore* store,
                     const EpochHistory* history, Clock wall_clock = WallClockMs);
  ~ReplicationPrimary();
  ReplicationPrimary(const ReplicationPrimary&) = delete;
  ReplicationPrimary& operator=(const ReplicationPrimary&) = delete;

  // The tandem.v1.Replication service, to register with a grpc::ServerBuilder.
  grpc::Service* service();

  // Whether this node is the primary, in which epoch. While not serving, hellos are refused
  // with FAILED_PRECONDITION "not a primary: leader is <leader_hint>"; turning it off ends every
  // open stream (UNAVAILABLE) so standbys go and find the new leader.
  void SetServing(bool serving, uint64_t epoch, const std::string& leader_hint = "");

  // The log grew to `seq`. Never blocks (wakes the senders); safe under the Sequencer's and
  // MetaStore's locks.
  void NotifyAppended(uint64_t seq);
  // Send what is pending now instead of lingering for a fuller batch (sync-mode waiters).
  void Flush();
  // Called (on a grpc thread, no locks held) whenever a standby acknowledges, and with its
  // resume point when it reconnects incrementally. Set before serving.
  void SetAckListener(std::function<void(const std::string& standby_id, uint64_t acked_seq)> fn);

  // Every standby seen since start, connected or not.
  std::vector<StandbyStatus> Standbys() const;
  // The lowest seq a connected standby (streaming or in a full sync) still needs from the log:
  // acked seq + 1, or during a full sync 1 until its image is chosen and the image's seq + 1
  // after. UINT64_MAX when no standby is connected. Holds of full syncs in flight are the
  // LogBuffer's own business (LogBuffer::TruncateBefore honours them).
  uint64_t MinNeededSeq() const;

  // Stored images to full-sync standbys from (borrowed, must outlive the primary; nullptr:
  // always a live image). Set before serving.
  void SetImageSource(ImageSource* source);

  // Ends every stream and waits (bounded) for them to close. Further hellos are refused.
  void Shutdown();

  // Test only: mutates every outgoing entry (after it was read from the log), e.g. to corrupt
  // one. nullptr removes the hook.
  void SetEntryFaultForTest(std::function<void(tandem::v1::OpLogEntry&)> fault);

 private:
  std::unique_ptr<PrimaryService> impl_;
};

}  // namespace tandem::replication
