// LeaderElection: the leader key of one Tandem cluster (DESIGN §4).
//
// Campaign() creates /tandem/<cluster_id>/leader if absent, bound to the candidate's lease, with
// a JSON value {"node_id", "client_address", "replication_address"}. The winner's epoch is the
// key's create_revision: a fresh etcd revision per term, so epochs strictly increase across
// terms. A candidate that loses learns who leads; a candidate whose earlier attempt reached etcd
// but whose answer was lost finds the key under its own lease and counts as the winner.
//
// Resign() deletes the key only while its create_revision is our epoch (never a successor's
// key), then optionally revokes the lease. When the lease is kept by a LeaseKeeper, prefer
// Resign(/*revoke_lease=*/false) followed by keeper->Revoke(), so that the keeper does not report
// the revoked lease as lost.
//
// WatchLeader() reports the current leader (or none) first, then every change, on the watch's
// thread; while we lead, deletions older than our key (a resumed watch's backlog) are skipped.
// Thread-safe. The EtcdClient must outlive the election, and the election its watch handles.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "coord/etcd_client.h"

namespace tandem::coord {

// What a candidate publishes in the leader key.
struct LeaderValue {
  std::string node_id;
  std::string client_address;
  std::string replication_address;
};

struct LeaderInfo {
  std::string node_id;  // empty if the key's value could not be parsed
  std::string client_address;
  std::string replication_address;
  int64_t epoch = 0;  // create_revision of the leader key
  int64_t lease = 0;
};

struct CampaignResult {
  bool won = false;
  LeaderInfo leader;  // us (with our new epoch) if won, else whoever leads
};

class LeaderElection {
 public:
  // kInvalidParams for a cluster id outside [A-Za-z0-9_-]{1,64}.
  static StatusOr<std::unique_ptr<LeaderElection>> Create(EtcdClient* client,
                                                          std::string_view cluster_id);

  // kInvalidParams for a bad node id or lease id 0. Not a loss: etcd errors (retry later).
  StatusOr<CampaignResult> Campaign(const LeaderValue& me, int64_t lease_id);
  // No-op if we do not lead (or never did). Deletes our key only, then revokes our lease if asked.
  Status Resign(bool revoke_lease = true);
  // Our epoch while we believe we lead (since Campaign won, until Resign), else 0.
  int64_t epoch() const { return epoch_.load(); }

  StatusOr<std::optional<LeaderInfo>> GetLeader();
  using LeaderCallback = std::function<void(const std::optional<LeaderInfo>&)>;
  StatusOr<std::unique_ptr<WatchHandle>> WatchLeader(LeaderCallback callback);

  const std::string& leader_key() const { return key_; }

  static std::string EncodeValue(const LeaderValue& value);
  // Parses the key's JSON value; node_id stays empty (and a warning is logged) if it is not ours.
  static LeaderInfo ParseLeader(const KeyValue& kv);

 private:
  LeaderElection(EtcdClient* client, std::string key) : client_(client), key_(std::move(key)) {}

  EtcdClient* const client_;
  const std::string key_;
  std::atomic<int64_t> epoch_{0};
  std::atomic<int64_t> lease_id_{0};
};

}  // namespace tandem::coord
