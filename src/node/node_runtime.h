// NodeRuntime: what the NodeController drives, implemented by the server (replication gate,
// maintenance, status). The controller decides *when* to lead or follow; the runtime knows *how*.
// Called from the controller's thread only, except where noted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/fencing_lease.h"
#include "common/status.h"

namespace tandem::node {

struct AppliedPosition {
  uint64_t epoch = 0;  // epoch of the last applied entry
  uint64_t seq = 0;
};

struct FollowerView {
  bool streaming = false;  // receiving the log from a leader right now
  bool full_sync = false;  // loading an image: not a valid candidate
  uint64_t lag_ms = 0;
  std::string state;  // the follower's own word, for the sub-state
};

// A standby as the leader sees it on its replication streams.
struct StandbyView {
  std::string node_id;
  bool streaming = false;  // connected and past any full sync
  uint64_t acked_seq = 0;
};

class NodeRuntime {
 public:
  virtual ~NodeRuntime() = default;
  virtual AppliedPosition Applied() const = 0;  // any thread
  virtual FollowerView Follower() const = 0;    // any thread
  // Promotion: continue the log at applied + 1 under `epoch`, serve clients and standbys, and
  // admit writes only while `lease` is valid.
  virtual Status BecomeLeader(uint64_t epoch, std::shared_ptr<const FencingLease> lease) = 0;
  // Follow the leader at `address` (empty: not known yet) of `epoch`; refuse older primaries.
  virtual void BecomeFollower(const std::string& address, uint64_t epoch) = 0;
  // Refuse writes from now on with `status` (lease lost, draining for a handover).
  virtual void StopWrites(const Status& status) = 0;
  virtual void ResumeWrites() = 0;
  virtual void FlushReplication() = 0;
  virtual uint64_t LastSeq() const = 0;
  // Highest seq the standby `node_id` acknowledged to us in this term (0: unknown).
  virtual uint64_t AckedSeq(const std::string& node_id) const = 0;
  // Every standby seen by this leader in this process (connected or not).
  virtual std::vector<StandbyView> Standbys() const = 0;
  // An unrecoverable local fault (e.g. a sticky WAL I/O error), empty when healthy. A node with
  // a fault never leads: it steps down and stays in ERROR. Any thread.
  virtual std::string Fault() const { return ""; }
};

}  // namespace tandem::node
