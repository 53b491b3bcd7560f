// NodeStatusReporter: one place that answers "what is this node and what does it hold", for the
// GetStatus RPC, the /status and /readyz endpoints and the metrics gauges, so they never
// disagree. Thread-safe; reads the store through its const introspection methods.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meta/meta_store.h"
#include "node/node_state.h"
#include "oplog/sequencer.h"
#include "server/clock.h"
#include "server/durability_status.h"
#include "server/replication_gate.h"

namespace tandem::server {

// What this node is doing: fixed by --role, or driven by etcd leadership (node/).
enum class Role : uint8_t { kStandalone, kLeader, kFollower, kCandidate };
std::string_view RoleName(Role role);

struct NodeStatus {
  std::string node_id;
  std::string role;
  std::string listen;  // bound addresses (a requested port 0 is resolved)
  std::string http;
  uint64_t epoch = 0;
  meta::Stats stats;
  std::string state_digest;  // 16 lower-case hex digits; empty unless requested
  uint64_t uptime_s = 0;
  std::vector<meta::SegmentInfo> segments;  // empty unless requested
  ReplicationStatus replication;
  std::optional<node::LeadershipStatus> leadership;  // with etcd leadership only
  bool recovering = false;      // cold start in progress (snapshot load, WAL replay)
  DurabilityStatus durability;  // snapshots, WAL, last recovery
};

class NodeStatusReporter {
 public:
  // All pointers are borrowed and must outlive the reporter.
  NodeStatusReporter(std::string node_id, const meta::MetaStore* store,
                     const oplog::Sequencer* sequencer, Clock* clock);

  const std::string& node_id() const { return node_id_; }
  void set_role(Role role) { role_.store(role, std::memory_order_release); }
  Role role() const { return role_.load(std::memory_order_acquire); }
  // Serving client traffic: leader, or standalone.
  bool ready() const;
  void SetEndpoints(std::string listen, std::string http);
  // Borrowed; set once before serving.
  void SetReplication(const ReplicationGate* replication) { replication_ = replication; }
  // Set once before serving (etcd leadership only).
  void SetLeadership(std::function<node::LeadershipStatus()> leadership) {
    leadership_ = std::move(leadership);
  }

  // Set once before serving: the node's snapshots and WAL.
  void SetDurability(std::function<DurabilityStatus()> durability) {
    durability_ = std::move(durability);
  }
  // True while the node recovers its state at start-up: not ready, /status says so.
  void set_recovering(bool recovering) { recovering_.store(recovering, std::memory_order_release); }
  bool recovering() const { return recovering_.load(std::memory_order_acquire); }

  struct Detail {
    bool digest = false;    // StateDigest walks every shard
    bool segments = false;  // copies the segment table
  };
  NodeStatus Collect(Detail detail) const;

 private:
  const std::string node_id_;
  const meta::MetaStore* const store_;
  const oplog::Sequencer* const sequencer_;
  Clock* const clock_;
  const uint64_t start_ms_;
  const ReplicationGate* replication_ = nullptr;
  std::function<node::LeadershipStatus()> leadership_;
  std::function<DurabilityStatus()> durability_;
  std::atomic<bool> recovering_{false};
  std::atomic<Role> role_{Role::kStandalone};
  mutable std::mutex endpoints_mu_;
  std::string listen_;
  std::string http_;
};

// 16 lower-case hex digits.
std::string DigestToHex(uint64_t digest);
// The /status document (JSON object, see http_server.h).
std::string NodeStatusToJson(const NodeStatus& status);

}  // namespace tandem::server
