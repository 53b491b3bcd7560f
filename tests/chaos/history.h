// The chaos harness's record of what happened and the checks over it (issue 7), kept pure so that
// unit tests can feed it made-up histories and see every check fail when it should.
//
// Times are the harness's steady clock in ms. Every client operation is recorded with when it was
// invoked and completed, its outcome, and (when acknowledged) the node and leadership epoch that
// answered (tandem::Client::LastServedBy). A poller records the leader terms etcd showed.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace tandem::chaos {

enum class OpKind { kPut, kRemove, kRead };
// kFailed: a definite refusal (the operation did not take effect); kUnknown: it may have.
enum class Outcome { kAcked, kFailed, kUnknown };

struct Op {
  OpKind kind = OpKind::kPut;
  std::string key;
  uint64_t invoke_ms = 0;
  uint64_t complete_ms = 0;
  Outcome outcome = Outcome::kUnknown;
  std::string served_by;  // acked only
  uint64_t epoch = 0;     // acked only
  bool found = false;     // reads: the key existed
};

// One leader term as the etcd poller saw it: the leader key with create_revision `epoch` naming
// `node_id`, first seen at first_seen_ms, seen gone (deleted, or another term) at gone_seen_ms
// (0: still there when polling stopped). Polls are linearizable reads, so the key was really gone
// at some instant before gone_seen_ms.
struct LeaderTerm {
  uint64_t epoch = 0;
  std::string node_id;
  uint64_t first_seen_ms = 0;
  uint64_t gone_seen_ms = 0;
};

struct CheckInput {
  std::vector<Op> ops;
  std::vector<LeaderTerm> terms;
  // Keys present on the leader after healing and quiescing, among every key a put was invoked for.
  std::set<std::string> present_at_end;
  bool sync_mode = true;
  uint64_t fault_start_ms = 0;
  uint64_t fault_end_ms = 0;  // healed
  uint64_t end_ms = 0;        // workload stopped
  // Async mode: an acknowledged write may be lost only if it completed at most this long before
  // the fault started (or during the fault). DESIGN §3: RPO = the replication lag.
  uint64_t async_loss_window_ms = 1000;
  std::string ghost_prefix = "ghost-";  // keys no one ever writes
  // The nodes' etcd lease TTL. A term's key can vanish while its holder still (rightly) believes
  // its lease valid: etcd itself revokes freshly renewed leases when a paused raft leader resumes
  // (seen in the pause-etcd fault). The holder's own validity then lasts at most this long after
  // the deletion; an ack invoked later than that is a violation, one before it is counted.
  uint64_t lease_ttl_ms = 3000;
};

struct CheckReport {
  uint64_t ops = 0;
  uint64_t acked_writes = 0;  // puts and removes
  uint64_t unknown_writes = 0;
  uint64_t failed_writes = 0;
  uint64_t reads = 0;
  uint64_t lost_acked = 0;    // acked puts missing at the end, acked removes whose key is back
  uint64_t lost_unacked = 0;  // puts with an unknown outcome that did not survive (allowed)
  // Lost acked writes in async mode: how long before the fault the oldest completed (negative:
  // after the fault started).
  int64_t loss_window_ms = 0;
  uint64_t rto_ms = 0;               // longest stretch without an acked write after the fault
  uint64_t unverified_acks = 0;      // acked writes in an epoch the poller never saw
  uint64_t acks_after_key_gone = 0;  // invoked after the term's key vanished, within the TTL
  std::vector<std::string> violations;
};

CheckReport Check(const CheckInput& input);

}  // namespace tandem::chaos
