// tandem::Client: the C++ client library of a Tandem master (tandem.v1.Master over gRPC).
//
// Contract:
// - Every operation returns a Status (or StatusOr). Domain errors carry the master's typed code
//   and message; a transport failure (master unreachable, stream broken, deadline exceeded) is
//   ErrorCode::kUnavailable with gRPC's message -- the request may or may not have run.
// - Every call is bounded by ClientOptions::timeout_ms.
// - Thread-safe: any number of threads may share one Client. Destroy it only after every call
//   has returned.
// - Identity: requests that carry a client id (mount owner, unmount, put ops, ping) use
//   ClientOptions::client_id. Use one Client per identity.
// - With use_streams, the single-key object operations (PutStart, PutEnd, PutRevoke,
//   GetReplicaList, ExistKey, Remove) are pipelined over a few long-lived bidi streams shared by
//   all threads (4-5x the throughput of unary calls on a small machine, see STACK.md); the rest
//   are unary calls. Batch* calls are one unary RPC each, with one result per key, in order.
//
// - Leader: with etcd_endpoints and cluster_id, the client finds the leader's client address in
//   etcd (/tandem/<cluster>/leader) and follows it through a watch; `address` is used only until
//   etcd names a leader. Without etcd it talks to `address` and follows NOT_LEADER's
//   leader_address.
// - Retries: NOT_LEADER, FENCED and UNAVAILABLE (transport) are retried on the (new) leader,
//   re-resolving it before each attempt, with exponential backoff and jitter (retry_initial_ms
//   doubling up to retry_max_ms), for at most max_retry_ms in all (0: no retry). The returned
//   status is the last attempt's. Stats() counts retries.
// - Request ids: every write carries "<random 64-bit hex>-<counter>", the same on each of its
//   retries; the master applies an id at most once and answers a repeat with success (PutStart:
//   the object's current replicas). Batch item i is applied under "<id>#<i>".
//
// This header deliberately includes no gRPC header (pimpl), so tools compile quickly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tandem {

struct ClientOptions {
  std::string address = "127.0.0.1:50051";
  uint32_t timeout_ms = 5000;
  uint32_t stream_count = 2;    // long-lived bidi streams (each on its own connection)
  uint32_t stream_window = 64;  // max in-flight requests per stream; callers block beyond it
  bool use_streams = true;
  std::string client_id;
  // Leader discovery through etcd (both or neither).
  std::vector<std::string> etcd_endpoints;  // "host:port"
  std::string cluster_id;
  // Retries of NOT_LEADER / FENCED / UNAVAILABLE.
  uint32_t max_retry_ms = 10000;  // total budget; no attempt starts after it (0: never retry)
  uint32_t retry_initial_ms = 20;
  uint32_t retry_max_ms = 500;
};

struct ClientStats {
  uint64_t retries = 0;         // attempts after the first, all calls
  uint64_t redirects = 0;       // NOT_LEADER answers that named the leader
  uint64_t reconnects = 0;      // switches to another master address
  uint64_t leader_changes = 0;  // leader updates seen in etcd
  std::string address;          // the master address calls go to now
};

struct Segment {
  std::string id;  // empty: the master uses `name`
  std::string name;
  uint64_t base = 0;
  uint64_t size = 0;
  std::string endpoint;
};

struct Replica {
  std::string segment_id;
  std::string segment_name;
  std::string endpoint;
  uint64_t offset = 0;   // inside the segment
  uint64_t address = 0;  // segment base + offset
  uint64_t size = 0;
  bool complete = false;  // false: PROCESSING (the put has not ended)
};

struct PutOptions {
  uint32_t replica_num = 1;
  std::string preferred_segment;  // segment id; empty = no preference
  bool soft_pin = false;
};

struct PutItem {
  std::string key;
  uint64_t value_size = 0;
  PutOptions options;
};

struct ReplicaList {
  std::vector<Replica> replicas;
  uint64_t lease_ttl_ms = 0;  // read lease granted by this call
};

struct RemoveAllResult {
  uint64_t removed = 0;
  uint64_t kept = 0;  // under lease or not COMPLETE
};

struct PingResult {
  uint64_t client_ttl_ms = 0;
};

// Replication, as a primary sees one of its standbys.
struct StandbyInfo {
  std::string standby_id;
  std::string address;
  std::string state;  // streaming | full-sync | disconnected
  uint64_t acked_seq = 0;
  uint64_t lag_entries = 0;
  uint64_t lag_ms = 0;
  uint64_t full_syncs = 0;
};

// Replication, as a standby sees its primary.
struct FollowerInfo {
  std::string state;  // connecting | full-sync | streaming | disconnected | error | stopped
  std::string primary_address;
  uint64_t lag_entries = 0;
  uint64_t lag_ms = 0;
  std::string last_error;
  uint64_t refused_entries = 0;
  uint64_t full_syncs = 0;
  uint64_t reconnects = 0;
};

struct MasterStatus {
  std::string node_id;
  std::string role;
  uint64_t epoch = 0;
  uint64_t applied_seq = 0;
  uint64_t object_count = 0;
  uint64_t segment_count = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_total = 0;
  std::string state_digest;
  std::vector<Segment> segments;
  std::string replication_mode;          // async | sync
  std::vector<StandbyInfo> standbys;     // on a primary
  std::optional<FollowerInfo> follower;  // on a standby
};

// A snapshot a node took on request (tandemctl snapshot).
struct SnapshotResult {
  std::string id;
  uint64_t epoch = 0;
  uint64_t seq = 0;  // the snapshot is the exact state at this seq
  uint64_t object_count = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  // Segments are owned by options().client_id; an empty client id mounts a static segment.
  Status MountSegment(const Segment& segment);
  Status UnmountSegment(std::string_view segment_id);

  StatusOr<std::vector<Replica>> PutStart(std::string_view key, uint64_t value_size,
                                          const PutOptions& options = {});
  Status PutEnd(std::string_view key);
  Status PutRevoke(std::string_view key);
  StatusOr<ReplicaList> GetReplicaList(std::string_view key);
  StatusOr<bool> ExistKey(std::string_view key);
  Status Remove(std::string_view key);
  StatusOr<RemoveAllResult> RemoveAll();
  StatusOr<PingResult> Ping();

  // Batch forms: the outer Status is the transport; the vector has one result per input, in order.
  StatusOr<std::vector<StatusOr<std::vector<Replica>>>> BatchPutStart(
      std::span<const PutItem> items);
  StatusOr<std::vector<Status>> BatchPutEnd(std::span<const std::string> keys);
  StatusOr<std::vector<Status>> BatchPutRevoke(std::span<const std::string> keys);
  StatusOr<std::vector<StatusOr<ReplicaList>>> BatchGetReplicaList(
      std::span<const std::string> keys);
  StatusOr<std::vector<StatusOr<bool>>> BatchExistKey(std::span<const std::string> keys);
  StatusOr<std::vector<Status>> BatchRemove(std::span<const std::string> keys);

  StatusOr<MasterStatus> GetStatus();
  // Asks the node the client points at (any role) to write a snapshot now; waits for it (plus
  // 60 s over the client timeout: a large state takes seconds).
  StatusOr<SnapshotResult> Snapshot();

  // Asks the leader to hand leadership over to `target_node_id` (empty: the best standby) and
  // returns the new leader's node id. Waits up to timeout_ms (0: the server's default) plus the
  // client timeout. Follows NOT_LEADER; a transport failure is not retried (the handover may
  // have started).
  StatusOr<std::string> Handover(std::string_view target_node_id, uint32_t timeout_ms = 0);

  // Not OK when the etcd options are bad or etcd was unreachable at construction; every call
  // then fails with this status.
  Status StartupStatus() const;
  ClientStats Stats() const;

  // The node and leadership epoch that answered the calling thread's last successful call
  // (node_id empty: none, the call failed, or the server predates the field). Per thread, so a
  // caller reads it right after its own call; fault-injection checks attribute acks with it.
  struct ServedBy {
    std::string node_id;
    uint64_t epoch = 0;
  };
  static ServedBy LastServedBy();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem
