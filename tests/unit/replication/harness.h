// In-process replication fixtures: a primary node (LogBuffer + Sequencer + MetaStore + the
// Replication service on a real gRPC server at 127.0.0.1:0) and standby nodes (their own store
// whose sink refuses client operations, a LogBuffer and an EpochHistory, and a follower).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "replication/follower.h"
#include "replication/primary.h"

namespace tandem::replication::testing {

inline constexpr char kCluster[] = "test-cluster";

struct PrimaryNode {
  // A node serving as primary in `epoch` from seq 1, window bounded by `log_options`.
  explicit PrimaryNode(uint64_t epoch = 1, oplog::LogBufferOptions log_options = {},
                       std::string node_id = "p1",
                       const std::function<void(PrimaryOptions&)>& tune = nullptr);
  ~PrimaryNode();

  oplog::LogBuffer log;
  oplog::Sequencer sequencer;
  meta::MetaStore store;
  EpochHistory history;
  ReplicationPrimary primary;
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

struct StandbyNode {
  explicit StandbyNode(std::string node_id = "s1");
  ~StandbyNode();

  FollowerOptions Options(const std::string& primary_address) const;
  // A new follower object on the same store (a restarted follower).
  void StartFollower(const std::string& primary_address);
  void StartFollower(const FollowerOptions& options);
  void StopFollower();  // destroys the follower

  std::string node_id;
  oplog::LogBuffer log;
  oplog::Sequencer sequencer;  // closed: client operations fail with NOT_LEADER
  meta::MetaStore store;
  EpochHistory history;
  std::unique_ptr<StandbyFollower> follower;
};

// Mounts segments (once per store) and runs `ops` mixed operations (put start+end, remove,
// revoke) on a leader's store. Deterministic per seed.
void RunWorkload(meta::MetaStore& store, int ops, uint32_t seed);
// Writes `ops` operations into a standby's own store through its sequencer, opened for the
// purpose in `epoch` (a standby that was a primary in that term, or diverged).
void GiveOwnState(StandbyNode& standby, uint64_t epoch, int ops);
// Polls `done` every 5 ms for up to `timeout_ms`.
bool WaitFor(const std::function<bool()>& done, uint64_t timeout_ms = 15000);
// Same applied seq and the same state digest.
bool Converged(const PrimaryNode& primary, const StandbyNode& standby);
// Converged, and the primary saw the standby acknowledge it: the follower acks a batch (or an
// image) only after its own bookkeeping (status, log window, epoch history) for it is done.
bool Settled(const PrimaryNode& primary, const StandbyNode& standby);

}  // namespace tandem::replication::testing
