#include "coord/election.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "coord/keys.h"

namespace tandem::coord {

StatusOr<std::unique_ptr<LeaderElection>> LeaderElection::Create(EtcdClient* client,
                                                                 std::string_view cluster_id) {
  Status valid = ValidateId("cluster id", cluster_id);
  if (!valid.ok()) return valid;
  return std::unique_ptr<LeaderElection>(new LeaderElection(client, LeaderKey(cluster_id)));
}

std::string LeaderElection::EncodeValue(const LeaderValue& value) {
  nlohmann::json j = {{"node_id", value.node_id},
                      {"client_address", value.client_address},
                      {"replication_address", value.replication_address}};
  return j.dump();
}

LeaderInfo LeaderElection::ParseLeader(const KeyValue& kv) {
  LeaderInfo info;
  info.epoch = kv.create_revision;
  info.lease = kv.lease;
  nlohmann::json j = nlohmann::json::parse(kv.value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("node_id") || !j["node_id"].is_string()) {
    spdlog::warn("leader key {} (epoch {}) holds an unexpected value '{}'", kv.key,
                 kv.create_revision, kv.value);
    return info;
  }
  info.node_id = j["node_id"].get<std::string>();
  try {  // value() throws on a field of the wrong type; keep that inside
    info.client_address = j.value("client_address", "");
    info.replication_address = j.value("replication_address", "");
  } catch (const nlohmann::json::exception& e) {
    spdlog::warn("leader key {} (epoch {}): {}", kv.key, kv.create_revision, e.what());
  }
  return info;
}

StatusOr<CampaignResult> LeaderElection::Campaign(const LeaderValue& me, int64_t lease_id) {
  Status valid = ValidateId("node id", me.node_id);
  if (!valid.ok()) return valid;
  if (lease_id == 0) {
    return Status(ErrorCode::kInvalidParams, "campaign for " + key_ + " needs a lease");
  }
  StatusOr<CreateResult> created = client_->CreateIfAbsent(key_, EncodeValue(me), lease_id);
  if (!created.ok()) return created.status();
  CampaignResult result;
  result.leader = ParseLeader(created->kv);
  // Our own earlier attempt may have created the key before its answer was lost.
  result.won = created->created || created->kv.lease == lease_id;
  if (result.won) {
    epoch_.store(created->kv.create_revision);
    lease_id_.store(lease_id);
    spdlog::info("election {}: node {} won, epoch {} (lease {:x})", key_, me.node_id,
                 created->kv.create_revision, lease_id);
  } else {
    spdlog::info("election {}: node {} lost, leader is {} (epoch {})", key_, me.node_id,
                 result.leader.node_id, result.leader.epoch);
  }
  return result;
}

Status LeaderElection::Resign(bool revoke_lease) {
  int64_t epoch = epoch_.exchange(0);
  int64_t lease_id = lease_id_.exchange(0);
  if (epoch == 0) return Status::Ok();
  // Compare-and-delete on create_revision: a successor's key has a newer one and survives.
  StatusOr<bool> deleted = client_->DeleteIfCreateRevision(key_, epoch);
  if (!deleted.ok()) {
    spdlog::warn("election {}: resigning epoch {} failed: {}", key_, epoch,
                 deleted.status().message());
  } else {
    spdlog::info("election {}: resigned epoch {} ({})", key_, epoch,
                 deleted.value() ? "leader key deleted" : "the key was no longer ours");
  }
  Status revoked = revoke_lease ? client_->LeaseRevoke(lease_id) : Status::Ok();
  // Revoking deletes the key as well, so a failed delete is repaired by a successful revoke.
  if (!deleted.ok() && !(revoke_lease && revoked.ok())) return deleted.status();
  return revoked;
}

StatusOr<std::optional<LeaderInfo>> LeaderElection::GetLeader() {
  StatusOr<std::optional<KeyValue>> kv = client_->Get(key_);
  if (!kv.ok()) return kv.status();
  if (!kv->has_value()) return std::optional<LeaderInfo>();
  return std::optional<LeaderInfo>(ParseLeader(*kv.value()));
}

StatusOr<std::unique_ptr<WatchHandle>> LeaderElection::WatchLeader(LeaderCallback callback) {
  if (!callback) return Status(ErrorCode::kInvalidParams, "WatchLeader: no callback");
  WatchOptions options;
  options.key = key_;
  options.initial_snapshot = true;
  return client_->Watch(options, [this, callback = std::move(callback)](const WatchBatch& batch) {
    // A snapshot is the state itself; events are reported one by one, in order.
    if (batch.snapshot) {
      if (batch.events.empty()) {
        callback(std::nullopt);
      } else {
        callback(ParseLeader(batch.events.front().kv));
      }
      return;
    }
    for (const WatchEvent& event : batch.events) {
      if (event.type == WatchEvent::Type::kDelete) {
        // A deletion older than the key we created is a predecessor's: a watch that resumed after
        // an etcd stall delivers it late, and taking it for ours would end our term (and leave our
        // key, kept alive by our lease, naming a node that no longer leads).
        const int64_t ours = epoch_.load();
        if (ours != 0 && event.kv.mod_revision < ours) continue;
        callback(std::nullopt);
      } else {
        callback(ParseLeader(event.kv));
      }
    }
  });
}

}  // namespace tandem::coord
