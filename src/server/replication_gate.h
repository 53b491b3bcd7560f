// ReplicationGate: the node's replication role, wired into the client path as its WriteGate.
//
// Owns the replication parts of a node (EpochHistory, ReplicationPrimary, and on a standby the
// StandbyFollower; in sync mode the AckWaiter) and answers the two questions the client service
// asks (write_gate.h):
// - Admit: a standby refuses every client request with NOT_LEADER and the primary's address.
// - AwaitCommit: async mode acknowledges at once; sync mode holds the response until
//   min_sync_acks standbys acknowledged the write's seq (group waiting), or fails it with
//   REPLICATION_TIMEOUT / degrades, per --sync-fallback.
// Roles are fixed by flags for now (--role primary|standby|standalone); leadership by etcd will
// drive the same promotion steps. gRPC stays out of this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
  // Starts the follower (standby) or opens serving (primary); `own_address` is the bound
  // client address.
  void Start(const std::string& own_address);
  // Fails held writes, ends replication streams, stops the follower. Idempotent.
  void Shutdown();

  Status Admit(Access access) override;
  void AwaitCommit(uint64_t seq, std::function<void(Status)> done) override;

  ReplicationStatus Collect() const;
  bool is_standby() const { return is_standby_; }

 private:
  Status NotLeader() const;

  const MasterConfig config_;
  const bool is_standby_;
  const bool sync_mode_;
  meta::MetaStore* const store_;
  oplog::LogBuffer* const log_;
  oplog::Sequencer* const sequencer_;
  replication::EpochHistory history_;
  std::unique_ptr<replication::ReplicationPrimary> primary_;
  std::unique_ptr<replication::AckWaiter> acks_;
  std::unique_ptr<replication::StandbyFollower> follower_;
  bool started_ = false;
};

}  // namespace tandem::server
