// State images (full sync, snapshots): CaptureImage copies the replicated state under every lock
// and serializes later, outside them; LoadImage builds a complete new state off-lock, validating
// every record, and swaps it in only when all of it is good -- never half-loaded.
#include <algorithm>

#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {
namespace {

// The replicated fields of one object, copied out of the store.
struct ImageObject {
  std::string key;
  uint64_t value_size = 0;
  uint64_t owner_client_hash = 0;
  uint64_t put_start_ms = 0;
  bool complete = false;
  bool soft_pin = false;
  Placements replicas;
};

class CapturedImage : public StateImage {
 public:
  const tandem::v1::StateHeader& header() const override { return header_; }

  void ForEachChunk(
      size_t max_objects,
      const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) const override {
    const int limit = static_cast<int>(std::clamp<size_t>(max_objects, 1, 1 << 20));
    tandem::v1::ObjectChunk chunk;
    for (const ImageObject& o : objects_) {
      tandem::v1::ObjectRecord* r = chunk.add_objects();
      r->set_key(o.key);
      r->set_value_size(o.value_size);
      r->set_complete(o.complete);
      r->set_owner_client_hash(o.owner_client_hash);
      r->set_soft_pin(o.soft_pin);
      r->set_put_start_ms(o.put_start_ms);
      for (const Placement& p : o.replicas) {
        tandem::v1::ReplicaPlacement* rp = r->add_replicas();
        rp->set_segment_handle(p.segment_handle);
        rp->set_offset(p.offset);
        rp->set_size(o.value_size);
      }
      if (chunk.objects_size() == limit) {
        if (!emit(chunk)) return;
        chunk.Clear();
      }
    }
    if (chunk.objects_size() > 0) emit(chunk);
  }

  tandem::v1::StateHeader header_;
  std::vector<ImageObject> objects_;  // shard by shard, by key inside a shard
};

// A state built off-lock by LoadImage.
struct LoadedState {
  SegmentSpace space;
  std::vector<ShardState> shards = std::vector<ShardState>(kShardCount);
  uint64_t objects = 0;
};

Status LoadSegments(const tandem::v1::StateHeader& header, uint64_t now_ms, LoadedState& out) {
  for (const tandem::v1::SegmentRecord& r : header.segments()) {
    tandem::v1::MountSegmentEffect effect;
    effect.set_segment_handle(r.handle());
    effect.set_segment_id(r.id());
    effect.set_name(r.name());
    effect.set_base(r.base());
    effect.set_size(r.size());
    effect.set_endpoint(r.endpoint());
    effect.set_owner_client_id(r.owner_client_id());
    if (Status s = out.space.CheckAdd(effect); !s.ok()) return s;
    out.space.Add(effect, now_ms);
  }
  if (header.next_segment_handle() < out.space.next_handle()) {
    return Internal("next_segment_handle ", header.next_segment_handle(),
                    " is not above every segment handle");
  }
  out.space.set_next_handle(header.next_segment_handle());
  return Status::Ok();
}

Status LoadObject(const tandem::v1::ObjectRecord& r, uint64_t now_ms, const Options& options,
                  LoadedState& out) {
  if (r.key().empty() || r.key().size() > UINT32_MAX) return Internal("empty or oversized key");
  ShardState& shard = out.shards[MetaStore::ShardOf(r.key())];
  if (shard.Find(r.key()) != nullptr) return Internal("duplicate key '", r.key(), "'");
  if (r.value_size() == 0 || r.replicas_size() == 0) {
    return Internal("key '", r.key(), "' has no value or no replica");
  }
  Placements placements;
  for (const tandem::v1::ReplicaPlacement& p : r.replicas()) {
    if (p.size() != r.value_size()) return Internal("key '", r.key(), "': replica size mismatch");
    placements.push_back({p.segment_handle(), p.offset()});
  }
  if (Status s = out.space.CheckAllocate(placements, r.value_size()); !s.ok()) {
    return Internal("key '", r.key(), "': ", s.message());
  }
  out.space.Allocate(placements, r.value_size());
  NodePtr node = ObjectNode::Create(r.key());
  node->value_size = r.value_size();
  node->owner_client_hash = r.owner_client_hash();
  node->soft_pin = r.soft_pin();
  node->state = r.complete() ? ReplicaState::kComplete : ReplicaState::kProcessing;
  node->aux_ms = !r.complete()  ? r.put_start_ms()
                 : r.soft_pin() ? now_ms + options.soft_pin_ttl_ms
                                : 0;
  node->lease_deadline_ms = now_ms + options.lease_ttl_ms;  // a fresh lease, as after promotion
  node->last_access_ms = now_ms;
  node->replicas = std::move(placements);
  shard.Insert(std::move(node));
  ++out.objects;
  return Status::Ok();
}

Status BuildState(const tandem::v1::StateHeader& header,
                  const std::function<bool(tandem::v1::ObjectChunk*)>& next_chunk, uint64_t now_ms,
                  const Options& options, LoadedState& out) {
  if (Status s = LoadSegments(header, now_ms, out); !s.ok()) return s;
  tandem::v1::ObjectChunk chunk;
  while (next_chunk(&chunk)) {
    for (const tandem::v1::ObjectRecord& r : chunk.objects()) {
      if (Status s = LoadObject(r, now_ms, options, out); !s.ok()) return s;
    }
    chunk.Clear();
  }
  if (out.objects != header.object_count()) {
    return Internal("image holds ", out.objects, " objects, its header says ",
                    header.object_count());
  }
  std::vector<uint64_t> digests(kShardCount);
  for (int i = 0; i < kShardCount; ++i) digests[i] = out.shards[i].digest;
  uint64_t digest = CombineDigests(digests.data(), out.space.digest());
  if (digest != header.state_digest()) {
    return Internal("image digest ", digest, " != header state_digest ", header.state_digest());
  }
  return Status::Ok();
}

}  // namespace

std::unique_ptr<StateImage> MetaStore::CaptureImage() const {
  auto image = std::make_unique<CapturedImage>();
  tandem::v1::StateHeader& h = image->header_;
  std::vector<size_t> shard_ends;  // where each shard's objects end in objects_
  {
    LockSet locks = impl_->Locks();
    locks.AllShards();
    locks.Space();
    const SegmentSpace& space = impl_->space;
    h.set_applied_seq(applied_seq());
    h.set_applied_epoch(applied_epoch());
    h.set_next_segment_handle(space.next_handle());
    for (const auto& [handle, s] : space.segments()) {
      tandem::v1::SegmentRecord* r = h.add_segments();
      r->set_handle(handle);
      r->set_id(s.id);
      r->set_name(s.name);
      r->set_base(s.base);
      r->set_size(s.size);
      r->set_endpoint(s.endpoint);
      r->set_owner_client_id(s.owner_client_id);
    }
    std::vector<uint64_t> digests(kShardCount);
    for (int i = 0; i < kShardCount; ++i) {
      const ShardState& shard = impl_->shards[i].state;
      digests[i] = shard.digest;
      for (const NodePtr& n : shard.objects) {
        image->objects_.push_back({std::string(n->key()), n->value_size, n->owner_client_hash,
                                   n->put_start_ms(), n->complete(), n->soft_pin, n->replicas});
      }
      shard_ends.push_back(image->objects_.size());
    }
    h.set_object_count(image->objects_.size());
    h.set_state_digest(CombineDigests(digests.data(), space.digest()));
  }
  // Outside the locks: key order inside each shard makes the image deterministic.
  size_t begin = 0;
  for (size_t end : shard_ends) {
    std::sort(image->objects_.begin() + begin, image->objects_.begin() + end,
              [](const ImageObject& a, const ImageObject& b) { return a.key < b.key; });
    begin = end;
  }
  return image;
}

Status MetaStore::LoadImage(const tandem::v1::StateHeader& header,
                            const std::function<bool(tandem::v1::ObjectChunk*)>& next_chunk,
                            uint64_t now_ms) {
  Impl& m = *impl_;
  LoadedState loaded;
  Status built = BuildState(header, next_chunk, now_ms, m.options, loaded);
  if (!built.ok()) loaded = LoadedState();  // the store is left empty, never half-loaded
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  for (int i = 0; i < kShardCount; ++i) std::swap(m.shards[i].state, loaded.shards[i]);
  std::swap(m.space, loaded.space);
  m.applied_seq.store(built.ok() ? header.applied_seq() : 0, std::memory_order_release);
  m.applied_epoch.store(built.ok() ? header.applied_epoch() : 0, std::memory_order_release);
  if (!built.ok()) return Internal("image refused: ", built.message());
  return Status::Ok();  // `loaded`, now the old state, is freed after the locks are released
}

}  // namespace tandem::meta
