// The one apply path (DESIGN.md §2): turns an OpLogEntry into a state change. The leader calls
// ApplyLocked right after its sink sequenced an entry; a standby calls Apply. Each Apply* checks
// everything first and mutates only once the entry is known to fit the state, so a refused entry
// changes nothing.
#include <algorithm>

#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {

using tandem::v1::OpLogEntry;

LockSet::~LockSet() {
  if (space_held_) space_mu_.unlock();
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) shards_[*it].mu.unlock();
}

void LockSet::Shards(std::vector<int> indexes) {
  // Only one batch of shard locks, before the space lock: that is the store's lock order.
  if (!held_.empty() || space_held_) std::abort();
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  for (int i : indexes) shards_[i].mu.lock();
  held_ = std::move(indexes);
}

void LockSet::AllShards() {
  std::vector<int> all(kShardCount);
  for (int i = 0; i < kShardCount; ++i) all[i] = i;
  Shards(std::move(all));
}

void LockSet::Space() {
  if (space_held_) std::abort();
  space_mu_.lock();
  space_held_ = true;
}

OpLogEntry MakeEntry(tandem::v1::OpType type, std::string_view key,
                     const google::protobuf::MessageLite* effect, uint64_t now_ms) {
  OpLogEntry entry;
  entry.set_op_type(type);
  entry.set_object_key(std::string(key));
  if (effect != nullptr) effect->SerializeToString(entry.mutable_payload());
  entry.set_timestamp_ms(now_ms);
  return entry;
}

Status MetaStore::Impl::Commit(OpLogEntry& entry) {
  Status appended = sink->Append(entry);
  if (!appended.ok()) return appended;
  Status applied = ApplyLocked(entry);
  if (!applied.ok()) {
    return Internal("bug: the leader cannot apply its own entry: ", applied.message());
  }
  return Status::Ok();
}

Status MetaStore::Apply(const OpLogEntry& entry) {
  if (entry.sequence_id() <= impl_->applied_seq.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  LockSet locks = impl_->Locks();
  if (Status s = impl_->LockFor(entry, locks); !s.ok()) return s;
  // Checked again under the locks: a concurrent Apply of the same entry may have won.
  if (entry.sequence_id() <= impl_->applied_seq.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  return impl_->ApplyLocked(entry);
}

Status MetaStore::Impl::LockFor(const OpLogEntry& entry, LockSet& locks) {
  using tandem::v1::OpType;
  switch (entry.op_type()) {
    case OpType::PUT_END:  // no space change
      locks.Shards({ShardOf(entry.object_key())});
      return Status::Ok();
    case OpType::PUT_START:
    case OpType::PUT_REVOKE:
    case OpType::REMOVE:
      locks.Shards({ShardOf(entry.object_key())});
      break;
    case OpType::MOUNT_SEGMENT:
    case OpType::UNMOUNT_SEGMENT:
    case OpType::CLIENT_EXPIRED:
      locks.AllShards();  // the segment set changes (see segment_space.h)
      break;
    case OpType::EVICTION:
    case OpType::REMOVE_ALL: {
      tandem::v1::KeyListEffect effect;
      if (!effect.ParseFromString(entry.payload())) {
        return Internal("seq ", entry.sequence_id(), ": malformed KeyListEffect payload");
      }
      std::vector<int> shards;
      shards.reserve(effect.keys_size());
      for (const std::string& key : effect.keys()) shards.push_back(ShardOf(key));
      locks.Shards(std::move(shards));
      break;
    }
    case OpType::DIGEST:  // the digests of every shard at exactly this seq
      locks.AllShards();
      break;
    default:  // EPOCH_START: the space lock orders it against CaptureImage
      break;
  }
  locks.Space();
  return Status::Ok();
}

Status MetaStore::Impl::ApplyLocked(const OpLogEntry& entry) {
  using tandem::v1::OpType;
  Status s;
  switch (entry.op_type()) {
    case OpType::PUT_START:
      s = ApplyPutStart(entry);
      break;
    case OpType::PUT_END:
      s = ApplyPutEnd(entry);
      break;
    case OpType::PUT_REVOKE:
    case OpType::REMOVE:
      s = ApplyDropOne(entry);
      break;
    case OpType::EVICTION:
    case OpType::REMOVE_ALL:
      s = ApplyDropKeys(entry);
      break;
    case OpType::MOUNT_SEGMENT:
      s = ApplyMount(entry);
      break;
    case OpType::UNMOUNT_SEGMENT:
      s = ApplyUnmount(entry);
      break;
    case OpType::CLIENT_EXPIRED:
      s = ApplyClientExpired(entry);
      break;
    case OpType::EPOCH_START: {
      tandem::v1::EpochStartEffect effect;
      if (!effect.ParseFromString(entry.payload())) s = Internal("malformed EpochStartEffect");
      break;
    }
    case OpType::DIGEST:
      s = ApplyDigest(entry);
      break;
    default:
      s = Internal("unknown op_type ", static_cast<int>(entry.op_type()));
      break;
  }
  if (!s.ok()) {
    return Internal("refused seq ", entry.sequence_id(), " ",
                    tandem::v1::OpType_Name(entry.op_type()), ": ", s.message());
  }
  NoteApplied(entry);
  if (!entry.request_id().empty()) {
    dedup.Record(entry.request_id(), {entry.sequence_id(), entry.op_type()});
  }
  return Status::Ok();
}

std::optional<Status> MetaStore::Impl::CheckDuplicate(std::string_view request_id,
                                                      tandem::v1::OpType type) {
  if (request_id.empty()) return std::nullopt;
  std::optional<AppliedRequest> applied = dedup.Find(request_id);
  if (!applied) return std::nullopt;
  if (applied->op_type != type) {
    return Error(ErrorCode::kInvalidParams, "request id '", request_id.substr(0, 64),
                 "' was applied as ", tandem::v1::OpType_Name(applied->op_type), " at seq ",
                 applied->seq);
  }
  dedup_hits.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status MetaStore::Impl::ApplyPutStart(const OpLogEntry& entry) {
  const std::string& key = entry.object_key();
  if (key.empty() || key.size() > UINT32_MAX) return Internal("empty or oversized key");
  tandem::v1::PutStartEffect effect;
  if (!effect.ParseFromString(entry.payload())) return Internal("malformed PutStartEffect");
  ShardState& shard = ShardFor(key).state;
  if (shard.Find(key) != nullptr) return Internal("the key already exists");
  const uint64_t size = effect.value_size();
  if (size == 0 || effect.replicas_size() == 0) return Internal("no value or no replica");
  Placements placements;
  for (const tandem::v1::ReplicaPlacement& r : effect.replicas()) {
    if (r.size() != size) return Internal("replica size ", r.size(), " != value_size ", size);
    placements.push_back({r.segment_handle(), r.offset()});
  }
  if (Status s = space.CheckAllocate(placements, size); !s.ok()) return s;

  space.Allocate(placements, size);
  NodePtr node = ObjectNode::Create(key);
  node->value_size = size;
  node->owner_client_hash = effect.owner_client_hash();
  node->soft_pin = effect.soft_pin();
  node->state = ReplicaState::kProcessing;
  node->aux_ms = entry.timestamp_ms();  // put_start_ms: reaping is relative to it
  node->last_access_ms = entry.timestamp_ms();
  node->replicas = std::move(placements);
  shard.Insert(std::move(node));
  return Status::Ok();
}

Status MetaStore::Impl::ApplyPutEnd(const OpLogEntry& entry) {
  ShardState& shard = ShardFor(entry.object_key()).state;
  ObjectNode* node = shard.Find(entry.object_key());
  if (node == nullptr) return Internal("no such key");
  if (node->complete()) return Internal("the object is already COMPLETE");
  const uint64_t now = entry.timestamp_ms();
  shard.Update(node, [&](ObjectNode& o) {
    o.state = ReplicaState::kComplete;
    o.aux_ms = o.soft_pin ? now + options.soft_pin_ttl_ms : 0;  // now the soft-pin deadline
    o.last_access_ms = now;
  });
  return Status::Ok();
}

Status MetaStore::Impl::ApplyDropOne(const OpLogEntry& entry) {
  ShardState& shard = ShardFor(entry.object_key()).state;
  ObjectNode* node = shard.Find(entry.object_key());
  if (node == nullptr) return Internal("no such key");
  if (entry.op_type() == tandem::v1::OpType::PUT_REVOKE) {
    tandem::v1::PutRevokeEffect effect;
    if (!effect.ParseFromString(entry.payload())) return Internal("malformed PutRevokeEffect");
    if (node->complete()) return Internal("the object is COMPLETE, not PROCESSING");
  } else if (!node->complete()) {
    return Internal("the object is PROCESSING, not COMPLETE");
  }
  return DropObject(shard, node);
}

Status MetaStore::Impl::ApplyDropKeys(const OpLogEntry& entry) {
  tandem::v1::KeyListEffect effect;
  if (!effect.ParseFromString(entry.payload())) return Internal("malformed KeyListEffect");
  if (effect.keys_size() == 0) return Internal("empty key list");
  std::vector<std::pair<ShardState*, ObjectNode*>> targets;
  targets.reserve(effect.keys_size());
  for (int i = 0; i < effect.keys_size(); ++i) {
    const std::string& key = effect.keys(i);
    // Strictly ascending: the leader sorts them, and it rules out duplicates.
    if (i > 0 && !(effect.keys(i - 1) < key)) return Internal("keys not strictly ascending");
    ShardState& shard = ShardFor(key).state;
    ObjectNode* node = shard.Find(key);
    if (node == nullptr) return Internal("no such key '", key, "'");
    if (!node->complete()) return Internal("key '", key, "' is PROCESSING");
    targets.emplace_back(&shard, node);
  }
  for (auto [shard, node] : targets) {
    if (Status s = DropObject(*shard, node); !s.ok()) return s;
  }
  return Status::Ok();
}

Status MetaStore::Impl::ApplyMount(const OpLogEntry& entry) {
  tandem::v1::MountSegmentEffect effect;
  if (!effect.ParseFromString(entry.payload())) return Internal("malformed MountSegmentEffect");
  if (Status s = space.CheckAdd(effect); !s.ok()) return s;
  space.Add(effect, entry.timestamp_ms());
  return Status::Ok();
}

Status MetaStore::Impl::ApplyUnmount(const OpLogEntry& entry) {
  tandem::v1::UnmountSegmentEffect effect;
  if (!effect.ParseFromString(entry.payload())) return Internal("malformed UnmountSegmentEffect");
  if (space.Find(effect.segment_handle()) == nullptr) {
    return Internal("unknown segment handle ", effect.segment_handle());
  }
  DropSegments({effect.segment_handle()});
  return Status::Ok();
}

Status MetaStore::Impl::ApplyClientExpired(const OpLogEntry& entry) {
  tandem::v1::ClientExpiredEffect effect;
  if (!effect.ParseFromString(entry.payload())) return Internal("malformed ClientExpiredEffect");
  if (effect.client_id().empty() || effect.segment_handles_size() == 0) {
    return Internal("no client id or no segment");
  }
  std::vector<uint32_t> handles(effect.segment_handles().begin(), effect.segment_handles().end());
  for (size_t i = 0; i < handles.size(); ++i) {
    const Segment* segment = space.Find(handles[i]);
    if (segment == nullptr) return Internal("unknown segment handle ", handles[i]);
    if (segment->owner_client_id != effect.client_id()) {
      return Internal("segment handle ", handles[i], " is not owned by '", effect.client_id(), "'");
    }
    if (std::find(handles.begin(), handles.begin() + i, handles[i]) != handles.begin() + i) {
      return Internal("segment handle ", handles[i], " listed twice");
    }
  }
  DropSegments(handles);
  return Status::Ok();
}

Status MetaStore::Impl::DropObject(ShardState& shard, ObjectNode* node) {
  for (const Placement& p : node->replicas) {
    if (space.Find(p.segment_handle) == nullptr) {
      return Internal("corrupt state: '", node->key(), "' has a replica on unmounted handle ",
                      p.segment_handle);
    }
  }
  if (!space.Release(node->replicas, node->value_size)) {
    return Internal("corrupt state: a replica of '", node->key(), "' was not allocated");
  }
  shard.Erase(node);
  return Status::Ok();
}

void MetaStore::Impl::DropSegments(const std::vector<uint32_t>& handles) {
  auto dropped = [&](const Placement& p) {
    return std::find(handles.begin(), handles.end(), p.segment_handle) != handles.end();
  };
  std::vector<ObjectNode*> affected;
  for (Shard& shard : shards) {
    affected.clear();
    for (const NodePtr& node : shard.state.objects) {
      if (std::any_of(node->replicas.begin(), node->replicas.end(), dropped)) {
        affected.push_back(node.get());
      }
    }
    // The replicas vanish with their segments: there is no space to free.
    for (ObjectNode* node : affected) {
      if (std::all_of(node->replicas.begin(), node->replicas.end(), dropped)) {
        shard.state.Erase(node);
      } else {
        shard.state.Update(node, [&](ObjectNode& o) {
          o.replicas.erase(std::remove_if(o.replicas.begin(), o.replicas.end(), dropped),
                           o.replicas.end());
        });
      }
    }
  }
  for (uint32_t handle : handles) space.Remove(handle);
}

void MetaStore::Impl::NoteApplied(const OpLogEntry& entry) {
  // Atomic max: a leader applies entries of different shards concurrently.
  uint64_t seq = applied_seq.load(std::memory_order_relaxed);
  while (seq < entry.sequence_id() &&
         !applied_seq.compare_exchange_weak(seq, entry.sequence_id(), std::memory_order_acq_rel)) {
  }
  uint64_t epoch = applied_epoch.load(std::memory_order_relaxed);
  while (epoch < entry.epoch() &&
         !applied_epoch.compare_exchange_weak(epoch, entry.epoch(), std::memory_order_acq_rel)) {
  }
}

}  // namespace tandem::meta
