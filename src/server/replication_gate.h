// ReplicationGate: the node's replication role, wired into the client path as its WriteGate.
//
// Owns the replication parts of a node (EpochHistory, ReplicationPrimary, the StandbyFollower
// while following, the AckWaiter in sync mode) and answers the two questions the client service
// asks (write_gate.h):
// - Admit: a follower refuses every client request with NOT_LEADER and the leader's address (when
//   known); a leader whose lease is no longer provably valid refuses with FENCED.
// - AwaitCommit: async mode acknowledges at once; sync mode holds the response until
//   min_sync_acks standbys acknowledged the write's seq (group waiting), or fails it with
//   REPLICATION_TIMEOUT / degrades, per --sync-fallback. Under a lease, an acknowledgement is
//   given only while the lease is still valid at that moment (else FENCED).
//
// Roles: by flag (--role standalone|primary|standby: fixed for the process), or driven by etcd
// leadership through BecomeLeader / BecomeFollower / StopWrites, called from one thread (the
// node controller). Admit and AwaitCommit are thread-safe and cheap. gRPC stays out of this
// header.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/fencing_lease.h"
#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "replication/ack_waiter.h"
#include "replication/epoch_history.h"
#include "replication/follower.h"
#include "replication/primary.h"
#include "server/config.h"
#include "server/write_gate.h"

namespace grpc {
class Service;
}

namespace tandem::server {

enum class GateRole : uint8_t { kStandalone, kLeader, kFollower };

// What /status and GetStatus show about replication.
struct ReplicationStatus {
  std::string mode;  // async | sync
  bool is_standby = false;
  std::vector<replication::StandbyStatus> standbys;  // primary side
  replication::FollowerStatus follower;              // standby side
  replication::AckWaiterStats acks;                  // sync mode
};

class ReplicationGate : public WriteGate {
 public:
  // Borrowed pointers must outlive the gate. The first epoch of a flag-configured primary is 1.
  ReplicationGate(const MasterConfig& config, meta::MetaStore* store, oplog::LogBuffer* log,
                  oplog::Sequencer* sequencer);
  ~ReplicationGate() override;

  grpc::Service* service();
  // Flag roles: starts the follower (standby) or opens serving (primary). etcd leadership: the
  // node starts as a follower that knows no leader yet. `own_address` is the bound client address.
  void Start(const std::string& own_address);
  // Fails held writes, ends replication streams, stops the follower. Idempotent.
  void Shutdown();

  // ---- Leadership transitions (etcd; one caller thread) ----
  // Promotion (DESIGN §4 rule 4): stops the follower (everything received is applied), begins
  // `epoch` at applied_seq + 1, opens the sequencer and the replication service. Writes are
  // admitted and acknowledged only while `lease` is valid.
  Status BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> lease);
  // Follows the leader at `address` (empty: none known yet) whose epoch is `epoch`: closes the
  // sequencer with NOT_LEADER, fails held writes, ends our own replication streams, and
  // (re)starts the follower, refusing primaries older than `epoch`.
  void BecomeFollower(const std::string& address, uint64_t epoch);
  // Stops admitting writes at once (lease lost, or draining for a handover): the sequencer
  // refuses with `status` and held writes fail with it. The role stays until the next call.
  void StopWrites(const Status& status);
  // Undoes StopWrites while still the leader of the same epoch (a handover that failed).
  void ResumeWrites();
  // Sends pending entries now (handover).
  void FlushReplication();
  // Standby: drop the stream and reconnect asking for a full sync (verification). No-op otherwise.
  void RequestFullSync(const std::string& reason);
  // The highest seq `standby_id` acknowledged in the current term, 0 if unknown.
  uint64_t AckedSeq(const std::string& standby_id) const;
  // The lowest seq a connected standby still needs from the log (UINT64_MAX: none), for the
  // OpLog truncation after a snapshot (ReplicationPrimary::MinNeededSeq).
  uint64_t MinNeededSeq() const;
  // Stored images (the node's snapshots) for full syncs; borrowed. Set before Start.
  void SetImageSource(replication::ImageSource* source);

  Status Admit(Access access) override;
  void AwaitCommit(uint64_t seq, std::function<void(Status)> done) override;

  ReplicationStatus Collect() const;
  GateRole role() const { return role_.load(std::memory_order_acquire); }
  bool is_standby() const { return role() == GateRole::kFollower; }
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

 private:
  Status NotLeader() const;
  Status Fenced() const;
  void StartFollowerLocked(const std::string& address, uint64_t epoch);

  const MasterConfig config_;
  const bool sync_mode_;
  meta::MetaStore* const store_;
  oplog::LogBuffer* const log_;
  oplog::Sequencer* const sequencer_;
  replication::EpochHistory history_;
  std::unique_ptr<replication::ReplicationPrimary> primary_;
  std::unique_ptr<replication::AckWaiter> acks_;

  std::atomic<GateRole> role_;
  std::atomic<uint64_t> epoch_{0};
  // Null: no lease (flag roles). Swapped on promotion; read on every write.
  std::atomic<std::shared_ptr<const FencingLease>> lease_;

  mutable std::mutex mu_;  // guards the fields below
  std::string own_address_;
  std::string leader_address_;  // for NOT_LEADER; empty when unknown
  std::unique_ptr<replication::StandbyFollower> follower_;
  bool started_ = false;
};

}  // namespace tandem::server
