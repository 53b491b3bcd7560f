#include "coord/membership.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "coord/keys.h"

namespace tandem::coord {

namespace {

// The JSON without updated_ms: what decides whether anything changed.
std::string Content(const MemberInfo& info, const std::string& node_id) {
  MemberInfo copy = info;
  copy.node_id = node_id;
  copy.updated_ms = 0;
  return Membership::Encode(copy);
}

std::string Describe(const KeyValue& kv) {
  StatusOr<MemberInfo> info = Membership::Parse(kv);
  if (!info.ok()) return "unparsable entry";
  return "address '" + info->address + "', role '" + info->role + "'";
}

}  // namespace

StatusOr<std::unique_ptr<Membership>> Membership::Create(EtcdClient* client,
                                                         MembershipOptions options) {
  Status valid = ValidateId("cluster id", options.cluster_id);
  if (valid.ok()) valid = ValidateId("node id", options.node_id);
  if (!valid.ok()) return valid;
  if (!options.wall_clock) options.wall_clock = WallClockMs;
  std::string key = MemberKey(options.cluster_id, options.node_id);
  return std::unique_ptr<Membership>(new Membership(client, std::move(options), std::move(key)));
}

Membership::Membership(EtcdClient* client, MembershipOptions options, std::string key)
    : client_(client), options_(std::move(options)), key_(std::move(key)) {
  publisher_ = std::thread([this] { PublishLoop(); });
}

Membership::~Membership() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  publisher_.join();
}

std::string Membership::Encode(const MemberInfo& info) {
  nlohmann::json j = {{"node_id", info.node_id},
                      {"role", info.role},
                      {"epoch", info.epoch},
                      {"applied_seq", info.applied_seq},
                      {"applied_epoch", info.applied_epoch},
                      {"lag_ms", info.lag_ms},
                      {"ready", info.ready},
                      {"state", info.state},
                      {"address", info.address},
                      {"replication_address", info.replication_address},
                      {"updated_ms", info.updated_ms}};
  return j.dump();
}

StatusOr<MemberInfo> Membership::Parse(const KeyValue& kv) {
  nlohmann::json j = nlohmann::json::parse(kv.value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("node_id") || !j["node_id"].is_string()) {
    return Status(ErrorCode::kInvalidParams, "member entry " + kv.key + " is not a member JSON");
  }
  MemberInfo info;
  try {  // value() throws on a field of the wrong type; keep that inside
    info.node_id = j["node_id"].get<std::string>();
    info.role = j.value("role", "");
    info.epoch = j.value("epoch", int64_t{0});
    info.applied_seq = j.value("applied_seq", uint64_t{0});
    info.applied_epoch = j.value("applied_epoch", int64_t{0});
    info.lag_ms = j.value("lag_ms", uint64_t{0});
    info.ready = j.value("ready", false);
    info.state = j.value("state", "");
    info.address = j.value("address", "");
    info.replication_address = j.value("replication_address", "");
    info.updated_ms = j.value("updated_ms", uint64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return Status(ErrorCode::kInvalidParams, "member entry " + kv.key + ": " + e.what());
  }
  info.lease = kv.lease;
  return info;
}

Status Membership::Join(const MemberInfo& info, int64_t lease_id) {
  if (lease_id == 0) return Status(ErrorCode::kInvalidParams, "member " + key_ + " needs a lease");
  ClaimState claim;
  claim.deadline_ms = SteadyClockMs() + options_.claim_wait_ms;
  std::lock_guard<std::mutex> lock(write_mu_);
  create_revision_ = 0;
  while (true) {
    bool done = false;
    Status status = ClaimOnce(info, lease_id, &claim, &done);
    if (!status.ok() || done) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// A lease nobody renews counts down: seen with ttl0 (whole seconds, truncated) at t0, its TTL at
// t0 + elapsed is below ttl0 + 1 - elapsed. More than that (with slack for the round trips)
// means somebody renewed it: a live member.
bool Membership::ClaimState::Renewed(int64_t lease, int64_t ttl_s, uint64_t now_ms) {
  if (lease != holder_lease) {
    holder_lease = lease;
    first_ttl_s = ttl_s;
    first_seen_ms = now_ms;
    return false;
  }
  double elapsed_s = static_cast<double>(now_ms - first_seen_ms) / 1000.0;
  return static_cast<double>(ttl_s) > static_cast<double>(first_ttl_s) + 1.0 - elapsed_s + 0.3;
}

// One attempt of Join: claims the entry, or decides to fail, or (done == false) to wait.
Status Membership::ClaimOnce(const MemberInfo& info, int64_t lease_id, ClaimState* claim,
                             bool* done) {
  MemberInfo mine = info;
  mine.node_id = options_.node_id;
  mine.updated_ms = options_.wall_clock();
  StatusOr<CreateResult> created = client_->CreateIfAbsent(key_, Encode(mine), lease_id);
  if (!created.ok()) return created.status();
  const KeyValue& kv = created.value().kv;
  if (created.value().created || kv.lease == lease_id) {
    *done = true;
    lease_id_ = lease_id;
    create_revision_ = kv.create_revision;
    written_content_ = Content(mine, options_.node_id);
    written_at_ms_ = SteadyClockMs();
    // Found under our own lease (a retried Join): rewrite it with this state.
    Status status = created.value().created ? Status::Ok() : Write(mine, ++written_generation_);
    if (status.ok()) spdlog::info("membership: joined as {} (lease {:x})", key_, lease_id);
    return status;
  }
  if (kv.lease == 0) {  // written by hand, not by a node: nobody's live claim
    spdlog::warn("membership: {} exists without a lease; replacing it", key_);
    StatusOr<bool> deleted = client_->DeleteIfCreateRevision(key_, kv.create_revision);
    return deleted.ok() ? Status::Ok() : deleted.status();
  }
  StatusOr<LeaseInfo> holder = client_->LeaseTimeToLive(kv.lease);
  if (!holder.ok()) return holder.status();
  uint64_t now = SteadyClockMs();
  bool first_sight = claim->holder_lease != kv.lease;
  bool renewed = claim->Renewed(kv.lease, holder.value().ttl_s, now);
  if (renewed || (holder.value().ttl_s > 0 && now >= claim->deadline_ms)) {
    return Status(
        ErrorCode::kInvalidParams,
        "node id " + options_.node_id + " is already in use by a live member (" + Describe(kv) +
            ", lease " + std::to_string(kv.lease) +
            (renewed ? ", being renewed)"
                     : ", still alive after " + std::to_string(options_.claim_wait_ms) + " ms)"));
  }
  if (first_sight && holder.value().ttl_s > 0) {
    spdlog::info(
        "membership: {} is held by lease {:x} (TTL {} s left): waiting for it to expire "
        "unless it is renewed (a previous run of this node?)",
        key_, kv.lease, holder.value().ttl_s);
  }
  if (now >= claim->deadline_ms + 2000) {  // an expired lease whose key never goes away
    return Status(ErrorCode::kInternal, "member entry " + key_ + " outlives its lease");
  }
  return Status::Ok();
}

Status Membership::Write(const MemberInfo& info, uint64_t generation) {
  if (generation < written_generation_) return Status::Ok();  // a newer state was written
  if (create_revision_ == 0) {
    return Status(ErrorCode::kInvalidState, "membership " + key_ + ": not joined");
  }
  MemberInfo mine = info;
  mine.node_id = options_.node_id;
  mine.updated_ms = options_.wall_clock();
  StatusOr<bool> put =
      client_->PutIfCreateRevision(key_, Encode(mine), lease_id_, create_revision_);
  if (!put.ok()) return put.status();
  if (!put.value()) {
    create_revision_ = 0;
    return Status(ErrorCode::kInvalidState,
                  "membership " + key_ + " is no longer ours (lease expired?): join again");
  }
  written_generation_ = generation;
  written_content_ = Content(mine, options_.node_id);
  written_at_ms_ = SteadyClockMs();
  return Status::Ok();
}

void Membership::Update(const MemberInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_ = info;
  pending_generation_ = ++generation_;
  cv_.notify_all();
}

Status Membership::PublishNow(const MemberInfo& info) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++generation_;
    pending_.reset();  // older than this one
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  return Write(info, generation);
}

Status Membership::Leave() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.reset();
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  int64_t revision = create_revision_;
  create_revision_ = 0;
  if (revision == 0) return Status::Ok();
  StatusOr<bool> deleted = client_->DeleteIfCreateRevision(key_, revision);
  if (!deleted.ok()) return deleted.status();
  spdlog::info("membership: left ({} {})", key_, deleted.value() ? "deleted" : "was already gone");
  return Status::Ok();
}

void Membership::PublishLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!pending_.has_value()) {
      cv_.wait(lock);
      continue;
    }
    MemberInfo info = *pending_;
    uint64_t generation = pending_generation_;
    pending_.reset();
    lock.unlock();
    uint64_t wait_ms = 0;
    {
      std::lock_guard<std::mutex> write_lock(write_mu_);
      uint64_t next = written_at_ms_ + options_.min_publish_interval_ms;
      uint64_t now = SteadyClockMs();
      if (create_revision_ == 0 || Content(info, options_.node_id) == written_content_) {
        // Not joined (Join publishes itself) or nothing new.
      } else if (now < next) {
        wait_ms = next - now;
      } else if (Status status = Write(info, generation); !status.ok()) {
        spdlog::warn("membership: publishing {} failed: {}", key_, status.message());
        wait_ms = options_.min_publish_interval_ms;  // retry this state after a pause
      }
    }
    lock.lock();
    if (wait_ms > 0) {
      if (!pending_.has_value()) {  // keep the newest state: ours unless a newer one came
        pending_ = std::move(info);
        pending_generation_ = generation;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stop_; });
    }
  }
}

StatusOr<std::vector<MemberInfo>> Membership::ListMembers() {
  StatusOr<std::vector<KeyValue>> kvs = client_->GetPrefix(MembersPrefix(options_.cluster_id));
  if (!kvs.ok()) return kvs.status();
  std::vector<MemberInfo> members;
  for (const KeyValue& kv : kvs.value()) {
    StatusOr<MemberInfo> info = Parse(kv);
    if (!info.ok()) {
      spdlog::warn("membership: skipping {}", info.status().message());
      continue;
    }
    members.push_back(std::move(info.value()));
  }
  return members;  // in key order, i.e. by node id
}

CandidateState CandidateFromMember(const MemberInfo& member) {
  return CandidateState{member.node_id, member.applied_epoch, member.applied_seq, member.lag_ms,
                        member.ready};
}

}  // namespace tandem::coord
