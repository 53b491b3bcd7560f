// StandbyFollower: the standby side of tandem.v1.Replication/Sync (DESIGN §2-4).
//
// Runs its own thread: connects to the primary, says hello with the store's (applied_epoch,
// applied_seq), then applies what the primary streams -- an image first when the primary orders
// a full sync (MetaStore::LoadImage replaces the store), then batches of log entries through
// MetaStore::Apply, the same path the primary uses -- and acknowledges after each batch.
//
// Every entry is checked before it is applied and refused (never applied) when:
// - its checksum does not verify (oplog::Verify),
// - it does not follow the last applied entry (sequence_id != applied + 1: a gap),
// - its epoch is older than the last applied entry's, or newer than the primary's (epoch
//   fencing, DESIGN §4 rule 2). A primary whose epoch is older than one already followed is
//   refused as stale.
// A refusal is counted, logged with seq and reason, and the stream is re-opened from the applied
// seq; the same seq refused kMaxRefusals times in a row (or an entry the store cannot apply)
// asks for a full sync instead. A FAILED_PRECONDITION from the primary (cluster id mismatch,
// naming itself, a stale primary) puts the follower in ERROR, keeps the message for /status and
// retries slowly -- a failover may make it valid -- without touching the store; "not a primary"
// (a leader named by etcd a moment before it serves) is retried with the normal back-off.
//
// Optional borrowed `log`: the applied entries are also recorded in this LogBuffer (the window a
// promoted standby serves other standbys from); a full sync clears it. `history` is extended with
// the epochs of applied entries and reset by a full sync.
//
// Start/Stop are prompt and bounded (Stop cancels the stream). Status() is thread-safe.
//
// Wiring on a standby node: the store's EntrySink refuses client writes while following (a
// Sequencer on the same LogBuffer as `log`, Closed with NOT_LEADER). Promotion: Stop() the
// follower (everything received is applied by then), history.Begin(new_epoch, applied_seq + 1),
// sequencer.Open(new_epoch, applied_seq + 1), ReplicationPrimary::SetServing(true, new_epoch).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "replication/clock.h"
#include "replication/epoch_history.h"

namespace tandem::replication {

struct FollowerOptions {
  std::string cluster_id;
  std::string node_id;                  // sent as standby_id
  std::string own_address;              // this node's client address, shown in the primary's status
  std::string primary_address;          // host:port of the primary's replication service
  uint32_t reconnect_initial_ms = 100;  // backoff doubles per failed attempt ...
  uint32_t reconnect_max_ms = 2000;     // ... up to this, with +-20 % jitter
  uint32_t error_retry_ms = 5000;       // retry interval after FAILED_PRECONDITION
  // No message (batch or heartbeat) for this long: the primary is presumed dead; reconnect.
  uint32_t primary_timeout_ms = 2000;
  // Refuse primaries below this epoch (raised by SetPrimary).
  uint64_t min_primary_epoch = 0;
};

// kConnecting until the first stream is accepted; after a stream ends the state stays
// kDisconnected (or kError: refused by the primary, or a stale primary) while it retries.
enum class FollowerState { kStopped, kConnecting, kFullSync, kStreaming, kDisconnected, kError };
// "stopped", "connecting", "full-sync", "streaming", "disconnected", "error"
const char* FollowerStateName(FollowerState state);

struct FollowerStatus {
  FollowerState state = FollowerState::kStopped;
  std::string primary_address;
  std::string primary_id;      // from the last accepted hello
  uint64_t primary_epoch = 0;  // ditto
  uint64_t applied_seq = 0;
  uint64_t applied_epoch = 0;
  uint64_t primary_last_seq = 0;  // as of the last batch
  uint64_t lag_entries = 0;       // primary_last_seq - applied_seq
  uint64_t lag_ms = 0;     // primary_time_ms - timestamp of the last applied entry, 0 if caught up
  std::string last_error;  // why the last stream ended or was refused; empty if none
  uint64_t refused_entries = 0;
  uint64_t full_syncs = 0;  // completed image loads
  uint64_t reconnects = 0;  // streams opened after the first
};

class StandbyFollower {
 public:
  // `store`, `history` and `log` (nullable) are borrowed and must outlive the follower.
  // `wall_clock`: the "now" for LoadImage (fresh leases).
  StandbyFollower(const FollowerOptions& options, meta::MetaStore* store, EpochHistory* history,
                  oplog::LogBuffer* log, Clock wall_clock = WallClockMs);
  ~StandbyFollower();  // Stop()
  StandbyFollower(const StandbyFollower&) = delete;
  StandbyFollower& operator=(const StandbyFollower&) = delete;

  void Start();
  // Cancels the stream and joins the threads. Idempotent.
  void Stop();
  // Follow another primary (after a failover): drops the current stream and reconnects there.
  void SetPrimaryAddress(const std::string& address);
  // Follow `address`, refusing any primary whose epoch is below `min_epoch` (the leader epoch
  // learnt from etcd: epoch fencing against a deposed primary that still streams).
  void SetPrimary(const std::string& address, uint64_t min_epoch);

  // Drops the current stream and reconnects asking for a full sync (verification found the
  // store diverged). Logged with `reason`.
  void RequestFullSync(const std::string& reason);

  FollowerStatus Status() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::replication
