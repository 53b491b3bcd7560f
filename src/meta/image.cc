// State images (full sync, snapshots).
//
// CaptureImage copies the replicated state as of one sequence id without stopping the store for
// the length of the copy: under a brief freeze (every shard lock and the space lock, held only to
// read the header fields and the segments) it marks every shard as awaited by the capture, then
// releases everything and copies the shards one at a time, each under its own lock. A writer that
// reaches an awaited shard first (ShardState::Insert/TryInsert/Update/Erase) copies it into the
// capture before changing it, so every shard is copied exactly as it was at the freeze: a client
// waits at most for one shard's copy, never for the whole state. Serialization happens later,
// outside every lock.
//
// LoadImage builds a complete new state off-lock, validating every record, and swaps it in only
// when all of it is good -- never half-loaded. Replicas are not allocated one by one (an image
// comes in key-hash order, so that would carve the free-range trees at random offsets): they are
// collected per segment and each segment's free ranges are built once, from the sorted
// placements, after the last record.
#include <xxhash.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {

void CopyShard(const ShardState& shard, ShardCopy* out) {
  // First pass: exact sizes, so the copy allocates three buffers and nothing per object (it also
  // brings the shard's nodes into cache for the second pass).
  size_t key_bytes = 0;
  size_t replicas = 0;
  for (const NodePtr& n : shard.objects) {
    key_bytes += n->key().size();
    replicas += n->replicas.size();
  }
  out->objects.clear();
  out->keys.clear();
  out->replicas.clear();
  out->objects.reserve(shard.objects.size());
  out->keys.reserve(key_bytes);
  out->replicas.reserve(replicas);
  for (const NodePtr& n : shard.objects) {
    ShardCopy::Object& o = out->objects.emplace_back();
    o.value_size = n->value_size;
    o.owner_client_hash = n->owner_client_hash;
    o.put_start_ms = n->put_start_ms();
    o.key_begin = out->keys.size();
    o.key_len = static_cast<uint32_t>(n->key().size());
    o.replica_begin = out->replicas.size();
    o.replica_count = static_cast<uint32_t>(n->replicas.size());
    o.complete = n->complete();
    o.soft_pin = n->soft_pin;
    out->keys.append(n->key());
    out->replicas.insert(out->replicas.end(), n->replicas.begin(), n->replicas.end());
  }
  out->digest = shard.digest;
}

namespace {

class CapturedImage : public StateImage {
 public:
  const tandem::v1::StateHeader& header() const override { return header_; }

  void ForEachChunk(
      size_t max_objects,
      const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) const override {
    const int limit = static_cast<int>(std::clamp<size_t>(max_objects, 1, 1 << 20));
    tandem::v1::ObjectChunk chunk;
    std::vector<std::pair<uint64_t, uint32_t>> order;  // (key hash, index in shard.objects)
    for (const ShardCopy& shard : shards_) {
      // A fixed order inside each shard makes the image deterministic: by key hash, then by key
      // (keys share long prefixes, so sorting the strings themselves cost a snapshot ~18 % of
      // its CPU). Sorted here, by whoever serializes (a snapshot's low-priority thread).
      order.clear();
      order.reserve(shard.objects.size());
      for (uint32_t i = 0; i < shard.objects.size(); ++i) {
        const std::string_view key = shard.key(shard.objects[i]);
        order.emplace_back(XXH3_64bits(key.data(), key.size()), i);
      }
      std::sort(order.begin(), order.end(), [&shard](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        return shard.key(shard.objects[a.second]) < shard.key(shard.objects[b.second]);
      });
      for (const auto& ordered : order) {
        const ShardCopy::Object& o = shard.objects[ordered.second];
        tandem::v1::ObjectRecord* r = chunk.add_objects();
        r->set_key(shard.keys.data() + o.key_begin, o.key_len);
        r->set_value_size(o.value_size);
        r->set_complete(o.complete);
        r->set_owner_client_hash(o.owner_client_hash);
        r->set_soft_pin(o.soft_pin);
        r->set_put_start_ms(o.put_start_ms);
        for (uint32_t i = 0; i < o.replica_count; ++i) {
          const Placement& p = shard.replicas[o.replica_begin + i];
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
    }
    // Then the dedup window, in the same chunks (a chunk holds at most `limit` items in all).
    for (const RequestEntry& e : requests_) {
      tandem::v1::RequestRecord* r = chunk.add_requests();
      r->set_request_id(e.request_id);
      r->set_seq(e.applied.seq);
      r->set_op_type(e.applied.op_type);
      if (chunk.objects_size() + chunk.requests_size() >= limit) {
        if (!emit(chunk)) return;
        chunk.Clear();
      }
    }
    if (chunk.objects_size() + chunk.requests_size() > 0) emit(chunk);
  }

  tandem::v1::StateHeader header_;
  std::vector<RequestEntry> requests_;  // the dedup window at the freeze, by seq
  std::vector<ShardCopy> shards_ = std::vector<ShardCopy>(kShardCount);
};

// A state built off-lock by LoadImage.
struct LoadedState {
  SegmentSpace space;
  std::vector<ShardState> shards = std::vector<ShardState>(kShardCount);
  uint64_t objects = 0;
};

// The replicas of the records loaded so far, per mounted segment, allocated in bulk at the end.
using PlacementsBySegment = absl::flat_hash_map<uint32_t, std::vector<ByteRange>>;

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
                  PlacementsBySegment& placed, LoadedState& out) {
  if (r.key().empty() || r.key().size() > UINT32_MAX) return Internal("empty or oversized key");
  if (r.value_size() == 0 || r.replicas_size() == 0) {
    return Internal("key '", r.key(), "' has no value or no replica");
  }
  Placements placements;
  for (int i = 0; i < r.replicas_size(); ++i) {
    const tandem::v1::ReplicaPlacement& p = r.replicas(i);
    if (p.size() != r.value_size()) return Internal("key '", r.key(), "': replica size mismatch");
    auto segment = placed.find(p.segment_handle());
    if (segment == placed.end()) {
      return Internal("key '", r.key(), "': replica on unknown segment handle ",
                      p.segment_handle());
    }
    for (int j = 0; j < i; ++j) {
      if (r.replicas(j).segment_handle() == p.segment_handle()) {
        return Internal("key '", r.key(), "': two replicas on segment handle ", p.segment_handle());
      }
    }
    // Bounds and overlaps are checked per segment once every record is in (AllocatePlacements).
    segment->second.push_back({p.offset(), r.value_size()});
    placements.push_back({p.segment_handle(), p.offset()});
  }
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
  if (!out.shards[MetaStore::ShardOf(r.key())].TryInsert(std::move(node))) {
    return Internal("duplicate key '", r.key(), "'");
  }
  ++out.objects;
  return Status::Ok();
}

// Keys of the loaded objects with a replica at `offset` on segment `handle` (error messages only:
// a scan of the whole state).
std::vector<std::string_view> KeysAt(const LoadedState& state, uint32_t handle, uint64_t offset) {
  std::vector<std::string_view> keys;
  for (const ShardState& shard : state.shards) {
    for (const NodePtr& n : shard.objects) {
      for (const Placement& p : n->replicas) {
        if (p.segment_handle == handle && p.offset == offset) keys.push_back(n->key());
      }
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::string_view KeyOr(const std::vector<std::string_view>& keys, size_t i) {
  return i < keys.size() ? keys[i] : std::string_view("?");
}

// Allocates every segment's replicas at once: sorted by offset, checked for bounds and overlaps in
// one pass, the free ranges built from the gaps.
Status AllocatePlacements(PlacementsBySegment& placed, LoadedState& out) {
  for (const auto& [handle, segment] : out.space.segments()) {
    std::vector<ByteRange>& used = placed[handle];
    if (used.empty()) continue;
    RangeConflict c;
    if (out.space.AllocateAll(handle, used, &c)) continue;
    std::vector<std::string_view> keys = KeysAt(out, handle, c.range.offset);
    switch (c.kind) {
      case RangeConflict::Kind::kEmpty:
        return Internal("key '", KeyOr(keys, 0), "': empty replica on segment '", segment.id, "'");
      case RangeConflict::Kind::kOutOfBounds:
        return Internal("key '", KeyOr(keys, 0), "': allocation [", c.range.offset, ", +",
                        c.range.size, ") leaves segment '", segment.id, "' of ", segment.size,
                        " bytes");
      case RangeConflict::Kind::kOverlap: {
        std::vector<std::string_view> others =
            c.other.offset == c.range.offset ? keys : KeysAt(out, handle, c.other.offset);
        size_t other = c.other.offset == c.range.offset ? 1 : 0;
        return Internal("keys '", KeyOr(keys, 0), "' and '", KeyOr(others, other),
                        "': allocations [", c.range.offset, ", +", c.range.size, ") and [",
                        c.other.offset, ", +", c.other.size, ") overlap on segment '", segment.id,
                        "'");
      }
    }
  }
  return Status::Ok();
}

// Shard tables are reserved from the header's object count (capped: the header is not trusted
// until the records agree with it), so they do not rehash while loading.
constexpr uint64_t kMaxReservedObjects = uint64_t{1} << 24;

Status BuildState(const tandem::v1::StateHeader& header,
                  const std::function<bool(tandem::v1::ObjectChunk*)>& next_chunk, uint64_t now_ms,
                  const Options& options, LoadedState& out, DedupWindow& window) {
  uint64_t requests = 0;
  uint64_t dedup_digest = 0;
  if (Status s = LoadSegments(header, now_ms, out); !s.ok()) return s;
  const uint64_t per_shard =
      std::min(header.object_count(), kMaxReservedObjects) / static_cast<uint64_t>(kShardCount);
  if (per_shard > 0) {
    for (ShardState& shard : out.shards) shard.objects.reserve(per_shard + per_shard / 8 + 8);
  }
  PlacementsBySegment placed;
  for (const auto& [handle, segment] : out.space.segments()) placed[handle];
  tandem::v1::ObjectChunk chunk;
  while (next_chunk(&chunk)) {
    for (const tandem::v1::ObjectRecord& r : chunk.objects()) {
      if (Status s = LoadObject(r, now_ms, options, placed, out); !s.ok()) return s;
    }
    for (const tandem::v1::RequestRecord& r : chunk.requests()) {
      if (r.request_id().empty() || r.seq() == 0 || r.seq() > header.applied_seq()) {
        return Internal("request record '", r.request_id().substr(0, 64), "' at seq ", r.seq(),
                        " does not fit an image at seq ", header.applied_seq());
      }
      const AppliedRequest applied{r.seq(), r.op_type()};
      window.Record(r.request_id(), applied);
      dedup_digest += DedupWindow::RecordDigest(r.request_id(), applied);
      ++requests;
    }
    chunk.Clear();
  }
  if (requests != header.request_count() || dedup_digest != header.dedup_digest()) {
    return Internal("image holds ", requests, " request ids (dedup digest ", dedup_digest,
                    "), its header says ", header.request_count(), " (", header.dedup_digest(),
                    ")");
  }
  if (out.objects != header.object_count()) {
    return Internal("image holds ", out.objects, " objects, its header says ",
                    header.object_count());
  }
  if (Status s = AllocatePlacements(placed, out); !s.ok()) return s;
  std::vector<uint64_t> digests(kShardCount);
  for (int i = 0; i < kShardCount; ++i) digests[i] = out.shards[i].digest;
  uint64_t digest = CombineDigests(digests.data(), out.space.digest());
  if (digest != header.state_digest()) {
    return Internal("image digest ", digest, " != header state_digest ", header.state_digest());
  }
  return Status::Ok();
}

}  // namespace

std::unique_ptr<StateImage> MetaStore::CaptureImage(
    const std::function<void()>& between_shards) const {
  Impl& m = *impl_;
  auto image = std::make_unique<CapturedImage>();  // allocated before any lock
  tandem::v1::StateHeader& h = image->header_;
  uint64_t space_digest = 0;
  {
    std::lock_guard<std::mutex> one_capture(m.capture_mu);
    {
      // The freeze: no entry is half-applied while every shard lock and the space lock are held,
      // so this is the state at applied_seq. Only the header is read here; the shards are marked.
      LockSet locks = m.Locks();
      locks.AllShards();
      locks.Space();
      const SegmentSpace& space = m.space;
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
      space_digest = space.digest();
      for (int i = 0; i < kShardCount; ++i) {
        m.shards[i].state.pending_capture = &image->shards_[i];
      }
      // Every apply that records a request id holds a shard lock or the space lock, so the
      // window is exact at applied_seq here. A copy of at most --dedup-window short strings.
      image->requests_ = m.dedup.Entries();
    }
    // Shard by shard, each under its own lock only: a shard a writer changed since the freeze
    // was copied by that writer, before the change.
    for (Shard& shard : m.shards) {
      {
        std::lock_guard<std::mutex> lock(shard.mu);
        shard.state.FlushCapture();
      }
      if (between_shards) between_shards();
    }
  }
  // Outside every lock.
  std::vector<uint64_t> digests(kShardCount);
  uint64_t objects = 0;
  for (int i = 0; i < kShardCount; ++i) {
    const ShardCopy& shard = image->shards_[i];
    digests[i] = shard.digest;
    objects += shard.objects.size();
  }
  h.set_object_count(objects);
  h.set_state_digest(CombineDigests(digests.data(), space_digest));
  DedupWindow::SortEntries(image->requests_);
  uint64_t dedup_digest = 0;
  for (const RequestEntry& e : image->requests_) {
    dedup_digest += DedupWindow::RecordDigest(e.request_id, e.applied);
  }
  h.set_request_count(image->requests_.size());
  h.set_dedup_digest(dedup_digest);
  return image;
}

Status MetaStore::LoadImage(const tandem::v1::StateHeader& header,
                            const std::function<bool(tandem::v1::ObjectChunk*)>& next_chunk,
                            uint64_t now_ms) {
  Impl& m = *impl_;
  LoadedState loaded;
  DedupWindow window(m.options.dedup_window);
  Status built = BuildState(header, next_chunk, now_ms, m.options, loaded, window);
  if (!built.ok()) {
    loaded = LoadedState();  // the store is left empty, never half-loaded
    window.Clear();
  }
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  for (int i = 0; i < kShardCount; ++i) {
    m.shards[i].state.FlushCapture();  // a concurrent capture gets the state before the load
    std::swap(m.shards[i].state, loaded.shards[i]);
  }
  std::swap(m.space, loaded.space);
  m.dedup.Swap(window);
  m.applied_seq.store(built.ok() ? header.applied_seq() : 0, std::memory_order_release);
  m.applied_epoch.store(built.ok() ? header.applied_epoch() : 0, std::memory_order_release);
  if (!built.ok()) return Internal("image refused: ", built.message());
  return Status::Ok();  // `loaded`, now the old state, is freed after the locks are released
}

}  // namespace tandem::meta
