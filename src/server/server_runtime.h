// ServerRuntime: the node::NodeRuntime of a tandem-master, i.e. what leading and following mean
// for this server: the replication gate switches roles, maintenance (which decides effects)
// runs only on the leader, and the status reporter shows the role.
#pragma once

#include <functional>
#include <string>

#include "meta/meta_store.h"
#include "node/node_runtime.h"
#include "oplog/sequencer.h"
#include "server/maintenance.h"
#include "server/node_status.h"
#include "server/replication_gate.h"

namespace tandem::server {

class ServerRuntime : public node::NodeRuntime {
 public:
  // Everything is borrowed and must outlive the runtime.
  // `fault` (may be empty) reports an unrecoverable local fault, e.g. the WAL's sticky error.
  ServerRuntime(ReplicationGate* gate, meta::MetaStore* store, oplog::Sequencer* sequencer,
                Maintenance* maintenance, NodeStatusReporter* reporter,
                std::function<std::string()> fault = {})
      : gate_(gate),
        store_(store),
        sequencer_(sequencer),
        maintenance_(maintenance),
        reporter_(reporter),
        fault_(std::move(fault)) {}

  node::AppliedPosition Applied() const override;
  node::FollowerView Follower() const override;
  Status BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> lease) override;
  void BecomeFollower(const std::string& address, uint64_t epoch) override;
  void StopWrites(const Status& status) override;
  void ResumeWrites() override;
  void FlushReplication() override;
  uint64_t LastSeq() const override;
  uint64_t AckedSeq(const std::string& node_id) const override;
  std::vector<node::StandbyView> Standbys() const override;
  std::string Fault() const override { return fault_ ? fault_() : std::string(); }

 private:
  ReplicationGate* const gate_;
  meta::MetaStore* const store_;
  oplog::Sequencer* const sequencer_;
  Maintenance* const maintenance_;
  NodeStatusReporter* const reporter_;
  const std::function<std::string()> fault_;
};

}  // namespace tandem::server
