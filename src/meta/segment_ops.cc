// Segment and client operations of the leader: MountSegment, UnmountSegment, Ping and the
// ExpireClients timer. Those that change the segment set take every shard lock (ascending) and
// then the space lock (they are rare; see segment_space.h for why); Ping takes the space lock.
#include "meta/errors.h"
#include "meta/store_impl.h"

namespace tandem::meta {
namespace {

using tandem::v1::OpType;

Status CheckIdLength(std::string_view what, std::string_view value) {
  if (value.size() > kMaxIdBytes) {
    return Error(ErrorCode::kInvalidParams, what, " of ", value.size(), " bytes exceeds ",
                 kMaxIdBytes);
  }
  return Status::Ok();
}

Status CheckSegmentSpec(const SegmentSpec& spec, std::string_view client_id,
                        const Options& options) {
  if (spec.name.empty()) return Error(ErrorCode::kInvalidParams, "segment name is empty");
  for (auto [what, value] :
       {std::pair<std::string_view, std::string_view>{"segment name", spec.name},
        {"segment id", spec.id},
        {"endpoint", spec.endpoint},
        {"client_id", client_id}}) {
    if (Status s = CheckIdLength(what, value); !s.ok()) return s;
  }
  if (spec.size == 0 || spec.size > options.max_segment_size) {
    return Error(ErrorCode::kInvalidParams, "segment size ", spec.size,
                 " is outside [1, max_segment_size ", options.max_segment_size, "]");
  }
  if (spec.base + spec.size < spec.base) {
    return Error(ErrorCode::kInvalidParams, "segment base ", spec.base, " + size ", spec.size,
                 " overflows 64 bits");
  }
  return Status::Ok();
}

}  // namespace

Status MetaStore::MountSegment(const SegmentSpec& spec, std::string_view client_id, uint64_t now_ms,
                               std::string_view request_id) {
  Impl& m = *impl_;
  if (Status s = CheckSegmentSpec(spec, client_id, m.options); !s.ok()) return s;
  const std::string& id = spec.id.empty() ? spec.name : spec.id;
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  if (auto dup = m.CheckDuplicate(request_id, OpType::MOUNT_SEGMENT)) return *dup;
  if (m.space.FindById(id) != nullptr) {
    return Error(ErrorCode::kSegmentAlreadyExists, "segment id '", id, "' is already mounted");
  }
  if (m.space.HasName(spec.name)) {
    return Error(ErrorCode::kSegmentAlreadyExists, "segment name '", spec.name,
                 "' is already mounted");
  }
  if (m.space.next_handle() == UINT32_MAX) {
    return Error(ErrorCode::kNoAvailableSpace, "segment handles are exhausted");
  }
  tandem::v1::MountSegmentEffect effect;
  effect.set_segment_handle(m.space.next_handle());
  effect.set_segment_id(id);
  effect.set_name(spec.name);
  effect.set_base(spec.base);
  effect.set_size(spec.size);
  effect.set_endpoint(spec.endpoint);
  effect.set_owner_client_id(std::string(client_id));
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::MOUNT_SEGMENT, "", &effect, now_ms);
  entry.set_request_id(std::string(request_id));
  return m.Commit(entry);
}

Status MetaStore::UnmountSegment(std::string_view segment_id, std::string_view client_id,
                                 uint64_t now_ms, std::string_view request_id) {
  Impl& m = *impl_;
  if (segment_id.empty()) return Error(ErrorCode::kInvalidParams, "segment id is empty");
  if (Status s = CheckIdLength("segment id", segment_id); !s.ok()) return s;
  if (Status s = CheckIdLength("client_id", client_id); !s.ok()) return s;
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  if (auto dup = m.CheckDuplicate(request_id, OpType::UNMOUNT_SEGMENT)) return *dup;
  const Segment* segment = m.space.FindById(segment_id);
  if (segment == nullptr) {
    return Error(ErrorCode::kSegmentNotFound, "segment '", segment_id, "' is not mounted");
  }
  // An empty client id is the operator, who may unmount anything.
  if (!segment->owner_client_id.empty() && !client_id.empty() &&
      client_id != segment->owner_client_id) {
    return Error(ErrorCode::kNotOwner, "segment '", segment_id, "' belongs to client '",
                 segment->owner_client_id, "', not '", client_id, "'");
  }
  tandem::v1::UnmountSegmentEffect effect;
  effect.set_segment_handle(segment->handle);
  tandem::v1::OpLogEntry entry = MakeEntry(OpType::UNMOUNT_SEGMENT, "", &effect, now_ms);
  entry.set_request_id(std::string(request_id));
  return m.Commit(entry);
}

Status MetaStore::Ping(std::string_view client_id, uint64_t now_ms) {
  Impl& m = *impl_;
  if (client_id.empty()) return Error(ErrorCode::kInvalidParams, "client_id is empty");
  if (Status s = CheckIdLength("client_id", client_id); !s.ok()) return s;
  std::lock_guard<std::mutex> space_lock(m.space_mu);
  ClientEntry* client = m.space.FindClient(client_id);
  if (client == nullptr) {
    return Error(ErrorCode::kClientNotFound, "client '", client_id,
                 "' owns no mounted segment; mount again");
  }
  client->heartbeat_ms = std::max(client->heartbeat_ms, now_ms);
  return Status::Ok();
}

uint64_t MetaStore::ExpireClients(uint64_t now_ms) {
  Impl& m = *impl_;
  auto expired = [&](const ClientEntry& c) {
    return c.heartbeat_ms + m.options.client_ttl_ms < now_ms;
  };
  {
    // Cheap check first: the timer runs often, expiries are rare.
    std::lock_guard<std::mutex> space_lock(m.space_mu);
    const auto& clients = m.space.clients();
    if (std::none_of(clients.begin(), clients.end(),
                     [&](const auto& entry) { return expired(entry.second); })) {
      return 0;
    }
  }
  LockSet locks = m.Locks();
  locks.AllShards();
  locks.Space();
  std::vector<std::string> ids;
  for (const auto& [id, client] : m.space.clients()) {
    if (expired(client)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());  // deterministic entry order
  uint64_t count = 0;
  for (const std::string& id : ids) {
    tandem::v1::ClientExpiredEffect effect;
    effect.set_client_id(id);
    for (uint32_t handle : m.space.HandlesOwnedBy(id)) effect.add_segment_handles(handle);
    tandem::v1::OpLogEntry entry = MakeEntry(OpType::CLIENT_EXPIRED, "", &effect, now_ms);
    if (!m.Commit(entry).ok()) break;  // not leader any more: the next leader retries
    ++count;
  }
  m.expired_clients.fetch_add(count, std::memory_order_relaxed);
  return count;
}

}  // namespace tandem::meta
