// MetaStore construction and the object operations of the leader: PutStart/PutEnd/PutRevoke,
// GetReplicaList, ExistKey, Remove. Each follows the same pattern: lock the key's shard (and the
// space lock when space changes), validate and decide, build the effect entry, Commit.
#include "meta/meta_store.h"

#include <algorithm>

#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {
namespace {

using tandem::v1::OpType;

// Keys can be long or binary: messages show a bounded prefix.
std::string_view Shown(std::string_view key) { return key.substr(0, 64); }

Status CheckKey(std::string_view key, const Options& options) {
  if (key.empty()) return Error(ErrorCode::kInvalidParams, "key is empty");
  if (key.size() > options.max_key_bytes || key.size() > UINT32_MAX) {
    return Error(ErrorCode::kInvalidParams, "key of ", key.size(), " bytes exceeds max_key_bytes ",
                 options.max_key_bytes);
  }
  return Status::Ok();
}

Status CheckKeyAndClient(std::string_view key, std::string_view client_id, const Options& options) {
  if (Status s = CheckKey(key, options); !s.ok()) return s;
  if (client_id.size() > kMaxIdBytes) {
    return Error(ErrorCode::kInvalidParams, "client_id exceeds ", kMaxIdBytes, " bytes");
  }
  return Status::Ok();
}

Status CheckPutStart(const PutStartArgs& args, const Options& options) {
  if (Status s = CheckKeyAndClient(args.key, args.client_id, options); !s.ok()) return s;
  if (args.value_size == 0 || args.value_size > options.max_object_size) {
    return Error(ErrorCode::kInvalidParams, "value_size ", args.value_size,
                 " is outside [1, max_object_size ", options.max_object_size, "]");
  }
  if (args.replica_num > options.max_replicas) {
    return Error(ErrorCode::kInvalidParams, "replica_num ", args.replica_num,
                 " exceeds max_replicas ", options.max_replicas);
  }
  return Status::Ok();
}

// The checks PutEnd and PutRevoke share: a PROCESSING object started by this client.
Status CheckPendingPut(const ObjectNode* node, std::string_view key, std::string_view client_id) {
  if (node == nullptr) return Error(ErrorCode::kObjectNotFound, "no object '", Shown(key), "'");
  if (node->complete()) {
    return Error(ErrorCode::kInvalidState, "object '", Shown(key), "' is COMPLETE, not PROCESSING");
  }
  if (ClientHash(client_id) != node->owner_client_hash) {
    return Error(ErrorCode::kNotOwner, "object '", Shown(key), "' was started by another client");
  }
  return Status::Ok();
}

}  // namespace

MetaStore::MetaStore(const Options& options, EntrySink* sink)
    : impl_(std::make_unique<Impl>(options, sink)) {}

MetaStore::~MetaStore() = default;

const Options& MetaStore::options() const { return impl_->options; }

StatusOr<std::vector<ReplicaView>> MetaStore::PutStart(const PutStartArgs& args, uint64_t now_ms) {
  Impl& m = *impl_;
  if (Status s = CheckPutStart(args, m.options); !s.ok()) return s;
  const uint32_t replica_num = std::max<uint32_t>(args.replica_num, 1);
  Shard& shard = m.ShardFor(args.key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  if (auto dup = m.CheckDuplicate(args.request_id, OpType::PUT_START)) {
    if (!dup->ok()) return *dup;
    const ObjectNode* node = shard.state.Find(args.key);
    if (node == nullptr) return std::vector<ReplicaView>{};
    return ReplicaViews(*node, m.space);
  }
  if (shard.state.Find(args.key) != nullptr) {
    return Error(ErrorCode::kObjectAlreadyExists, "object '", Shown(args.key), "' exists");
  }
  std::lock_guard<std::mutex> space_lock(m.space_mu);
  StatusOr<Placements> placements =
      m.space.ChoosePlacement(args.value_size, replica_num, args.preferred_segment);
  if (!placements.ok()) return placements.status();

  tandem::v1::PutStartEffect effect;
  effect.set_value_size(args.value_size);
  for (const Placement& p : placements.value()) {
    tandem::v1::ReplicaPlacement* r = effect.add_replicas();
    r->set_segment_handle(p.segment_handle);
    r->set_offset(p.offset);
    r->set_size(args.value_size);
  }
  effect.set_owner_client_hash(ClientHash(args.client_id));
  effect.set_soft_pin(args.soft_pin);
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::PUT_START, args.key, &effect, now_ms);
  entry.set_request_id(std::string(args.request_id));
  if (Status s = m.Commit(entry); !s.ok()) return s;
  return ReplicaViews(*shard.state.Find(args.key), m.space);
}

Status MetaStore::PutEnd(std::string_view key, std::string_view client_id, uint64_t now_ms,
                         std::string_view request_id) {
  Impl& m = *impl_;
  if (Status s = CheckKeyAndClient(key, client_id, m.options); !s.ok()) return s;
  Shard& shard = m.ShardFor(key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  if (auto dup = m.CheckDuplicate(request_id, OpType::PUT_END)) return *dup;
  if (Status s = CheckPendingPut(shard.state.Find(key), key, client_id); !s.ok()) return s;
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::PUT_END, key, nullptr, now_ms);
  entry.set_request_id(std::string(request_id));
  return m.Commit(entry);
}

Status MetaStore::PutRevoke(std::string_view key, std::string_view client_id, uint64_t now_ms,
                            std::string_view request_id) {
  Impl& m = *impl_;
  if (Status s = CheckKeyAndClient(key, client_id, m.options); !s.ok()) return s;
  Shard& shard = m.ShardFor(key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  if (auto dup = m.CheckDuplicate(request_id, OpType::PUT_REVOKE)) return *dup;
  if (Status s = CheckPendingPut(shard.state.Find(key), key, client_id); !s.ok()) return s;
  std::lock_guard<std::mutex> space_lock(m.space_mu);
  tandem::v1::PutRevokeEffect effect;
  effect.set_reason(tandem::v1::REVOKE_BY_CLIENT);
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::PUT_REVOKE, key, &effect, now_ms);
  entry.set_request_id(std::string(request_id));
  return m.Commit(entry);
}

StatusOr<GetResult> MetaStore::GetReplicaList(std::string_view key, uint64_t now_ms) {
  Impl& m = *impl_;
  if (Status s = CheckKey(key, m.options); !s.ok()) return s;
  Shard& shard = m.ShardFor(key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  ObjectNode* node = shard.state.Find(key);
  if (node == nullptr) return Error(ErrorCode::kObjectNotFound, "no object '", Shown(key), "'");
  if (!node->complete()) {
    return Error(ErrorCode::kObjectNotReady, "object '", Shown(key), "' is still PROCESSING");
  }
  // Soft state only (not in the digest, never logged): a read extends, never shortens, the lease.
  node->lease_deadline_ms = std::max(node->lease_deadline_ms, now_ms + m.options.lease_ttl_ms);
  if (node->soft_pin) node->aux_ms = std::max(node->aux_ms, now_ms + m.options.soft_pin_ttl_ms);
  node->last_access_ms = std::max(node->last_access_ms, now_ms);
  GetResult result;
  result.replicas = ReplicaViews(*node, m.space);
  result.lease_ttl_ms = m.options.lease_ttl_ms;
  return result;
}

bool MetaStore::ExistKey(std::string_view key) const {
  if (!CheckKey(key, impl_->options).ok()) return false;
  Shard& shard = impl_->ShardFor(key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  return shard.state.Find(key) != nullptr;
}

Status MetaStore::Remove(std::string_view key, uint64_t now_ms, std::string_view request_id) {
  Impl& m = *impl_;
  if (Status s = CheckKey(key, m.options); !s.ok()) return s;
  Shard& shard = m.ShardFor(key);
  std::lock_guard<std::mutex> shard_lock(shard.mu);
  if (auto dup = m.CheckDuplicate(request_id, OpType::REMOVE)) return *dup;
  const ObjectNode* node = shard.state.Find(key);
  if (node == nullptr) return Error(ErrorCode::kObjectNotFound, "no object '", Shown(key), "'");
  if (!node->complete()) {
    return Error(ErrorCode::kInvalidState, "object '", Shown(key), "' is PROCESSING");
  }
  if (node->lease_deadline_ms > now_ms) {
    return Error(ErrorCode::kObjectHasLease, "object '", Shown(key), "' is leased for ",
                 node->lease_deadline_ms - now_ms, " more ms");
  }
  std::lock_guard<std::mutex> space_lock(m.space_mu);
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::REMOVE, key, nullptr, now_ms);
  entry.set_request_id(std::string(request_id));
  return m.Commit(entry);
}

std::vector<ReplicaView> ReplicaViews(const ObjectNode& node, const SegmentSpace& space) {
  std::vector<ReplicaView> views;
  views.reserve(node.replicas.size());
  for (const Placement& p : node.replicas) {
    const Segment* s = space.Find(p.segment_handle);
    views.push_back(
        {s->id, s->name, s->endpoint, p.offset, s->base + p.offset, node.value_size, node.state});
  }
  return views;
}

ObjectInfo ToObjectInfo(const ObjectNode& node) {
  ObjectInfo info;
  info.key = std::string(node.key());
  info.value_size = node.value_size;
  info.state = node.state;
  info.owner_client_hash = node.owner_client_hash;
  info.soft_pin = node.soft_pin;
  info.lease_deadline_ms = node.lease_deadline_ms;
  info.replicas.reserve(node.replicas.size());
  for (const Placement& p : node.replicas) {
    info.replicas.push_back({p.segment_handle, p.offset, node.value_size});
  }
  return info;
}

}  // namespace tandem::meta
