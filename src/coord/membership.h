// Membership: this node's entry under /tandem/<cluster_id>/members/<node_id>, and everyone's.
//
// The entry is JSON {node_id, role, epoch, applied_seq, applied_epoch, lag_ms, ready, state,
// address, replication_address, updated_ms}, written under the node's own lease, so it vanishes
// with the node. Clients, `tandemctl status` and candidates (CandidateRanking) read them.
//
// Join() claims the entry atomically (create-if-absent). If the key exists under another lease
// that is still alive, the node id is taken: a lease seen being renewed means a live member and
// fails at once (kInvalidParams "node id X is already in use by a live member ..."); a lease that
// only counts down may be this node's previous run, so Join waits for it to expire, at most
// claim_wait_ms, before failing the same way. (Caveat: an etcd leader change extends every lease,
// which looks like a renewal, so a restart during one may fail and need a retry.) Writes after Join
// are compare-and-swaps on the entry's create_revision, so a node never overwrites an entry that is
// no longer its own (its lease expired and someone else claimed the id): such a write fails with
// kInvalidState, and the node has to Join again with a new lease.
//
// Update() is asynchronous and rate-limited (a background thread writes the latest state at most
// once per min_publish_interval_ms, and only when something besides updated_ms changed);
// PublishNow() writes synchronously (role changes, just before campaigning). Thread-safe. The
// EtcdClient must outlive the Membership.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coord/clock.h"
#include "coord/etcd_client.h"
#include "coord/ranking.h"

namespace tandem::coord {

struct MemberInfo {
  std::string node_id;
  std::string role;  // the node's words ("leader", "standby", ...)
  int64_t epoch = 0;
  uint64_t applied_seq = 0;
  int64_t applied_epoch = 0;
  uint64_t lag_ms = 0;
  bool ready = false;  // a standby: streaming, not in full sync, verification healthy
  std::string state;   // the node state machine's state, e.g. "FOLLOWER/syncing"
  std::string address;
  std::string replication_address;
  uint64_t updated_ms = 0;  // wall clock of the write (set by Membership)
  int64_t lease = 0;        // the entry's lease (from etcd, not in the JSON)
};

struct MembershipOptions {
  std::string cluster_id;
  std::string node_id;
  uint32_t min_publish_interval_ms = 250;
  uint32_t claim_wait_ms = 6000;  // bound on waiting for a previous holder's lease to expire
  Clock wall_clock;               // for updated_ms; default WallClockMs
};

class Membership {
 public:
  // kInvalidParams for a bad cluster or node id.
  static StatusOr<std::unique_ptr<Membership>> Create(EtcdClient* client,
                                                      MembershipOptions options);
  // Stops the publisher; the entry stays until its lease ends (or Leave()).
  ~Membership();

  Status Join(const MemberInfo& info, int64_t lease_id);
  void Update(const MemberInfo& info);
  Status PublishNow(const MemberInfo& info);
  // Deletes our entry (if still ours) and stops publishing.
  Status Leave();

  StatusOr<std::vector<MemberInfo>> ListMembers();

  const std::string& key() const { return key_; }
  static std::string Encode(const MemberInfo& info);
  static StatusOr<MemberInfo> Parse(const KeyValue& kv);

 private:
  Membership(EtcdClient* client, MembershipOptions options, std::string key);
  // Writes `info` if it is newer (by generation) than what was written; caller holds write_mu_.
  Status Write(const MemberInfo& info, uint64_t generation);
  // What Join learned so far about the lease holding our entry.
  struct ClaimState {
    uint64_t deadline_ms = 0;
    int64_t holder_lease = 0;
    int64_t first_ttl_s = 0;
    uint64_t first_seen_ms = 0;
    bool Renewed(int64_t lease, int64_t ttl_s, uint64_t now_ms);
  };
  Status ClaimOnce(const MemberInfo& info, int64_t lease_id, ClaimState* claim, bool* done);
  void PublishLoop();

  EtcdClient* const client_;
  const MembershipOptions options_;
  const std::string key_;

  std::mutex write_mu_;  // serializes writes; guards the fields below
  int64_t lease_id_ = 0;
  int64_t create_revision_ = 0;  // of our entry; 0 when not joined
  uint64_t written_generation_ = 0;
  std::string written_content_;  // last written JSON without updated_ms
  uint64_t written_at_ms_ = 0;   // steady

  std::mutex mu_;  // guards pending_, generation_, stop_
  std::condition_variable cv_;
  std::optional<MemberInfo> pending_;
  uint64_t pending_generation_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::thread publisher_;
};

// How a published entry counts in the ranking: eligible = ready.
CandidateState CandidateFromMember(const MemberInfo& member);

}  // namespace tandem::coord
