#include "server/node_status.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace tandem::server {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kStandalone:
      return "standalone";
    case Role::kLeader:
      return "leader";
    case Role::kFollower:
      return "follower";
    case Role::kCandidate:
      return "candidate";
  }
  return "unknown";
}

NodeStatusReporter::NodeStatusReporter(std::string node_id, const meta::MetaStore* store,
                                       const oplog::Sequencer* sequencer, Clock* clock)
    : node_id_(std::move(node_id)),
      store_(store),
      sequencer_(sequencer),
      clock_(clock),
      start_ms_(clock->NowMs()) {}

bool NodeStatusReporter::ready() const {
  if (recovering()) return false;
  const Role current = role();
  return current == Role::kStandalone || current == Role::kLeader;
}

void NodeStatusReporter::SetEndpoints(std::string listen, std::string http) {
  std::lock_guard<std::mutex> lock(endpoints_mu_);
  listen_ = std::move(listen);
  http_ = std::move(http);
}

NodeStatus NodeStatusReporter::Collect(Detail detail) const {
  NodeStatus status;
  status.node_id = node_id_;
  status.role = std::string(RoleName(role()));
  {
    std::lock_guard<std::mutex> lock(endpoints_mu_);
    status.listen = listen_;
    status.http = http_;
  }
  // A standby's own sequencer is closed; the epoch it follows is that of what it applied.
  status.epoch = role() == Role::kFollower ? store_->applied_epoch() : sequencer_->epoch();
  if (replication_ != nullptr) status.replication = replication_->Collect();
  if (leadership_) status.leadership = leadership_();
  status.recovering = recovering();
  if (durability_) status.durability = durability_();
  status.stats = store_->GetStats();
  if (detail.digest) status.state_digest = DigestToHex(store_->StateDigest());
  if (detail.segments) status.segments = store_->ListSegments();
  const uint64_t now_ms = clock_->NowMs();
  status.uptime_s = now_ms > start_ms_ ? (now_ms - start_ms_) / 1000 : 0;
  return status;
}

std::string DigestToHex(uint64_t digest) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016" PRIx64, digest);
  return buffer;
}

namespace {

nlohmann::json ReplicationToJson(const ReplicationStatus& replication) {
  nlohmann::json out = {{"mode", replication.mode}};
  if (replication.is_standby) {
    const replication::FollowerStatus& f = replication.follower;
    out["follower"] = {{"state", replication::FollowerStateName(f.state)},
                       {"primary_address", f.primary_address},
                       {"primary_id", f.primary_id},
                       {"primary_epoch", f.primary_epoch},
                       {"applied_seq", f.applied_seq},
                       {"primary_last_seq", f.primary_last_seq},
                       {"lag_entries", f.lag_entries},
                       {"lag_ms", f.lag_ms},
                       {"last_error", f.last_error},
                       {"refused_entries", f.refused_entries},
                       {"full_syncs", f.full_syncs},
                       {"reconnects", f.reconnects}};
    return out;
  }
  nlohmann::json standbys = nlohmann::json::array();
  for (const replication::StandbyStatus& s : replication.standbys) {
    standbys.push_back({{"standby_id", s.standby_id},
                        {"address", s.address},
                        {"state", replication::StandbyStateName(s.state)},
                        {"acked_seq", s.acked_seq},
                        {"lag_entries", s.lag_entries},
                        {"lag_ms", s.lag_ms},
                        {"full_syncs", s.full_syncs},
                        {"full_syncs_from_snapshot", s.full_syncs_from_snapshot},
                        {"last_sync_reason", s.last_sync_reason},
                        {"last_image", s.last_image}});
  }
  out["standbys"] = std::move(standbys);
  out["sync"] = {{"waits", replication.acks.waits},
                 {"timeouts", replication.acks.timeouts},
                 {"degraded", replication.acks.degraded},
                 {"is_degraded", replication.acks.is_degraded}};
  return out;
}

nlohmann::json DurabilityToJson(const DurabilityStatus& d) {
  return {{"enabled", d.enabled},
          {"wal_fsync", d.wal_fsync},
          {"wal_dir", d.wal_dir},
          {"snapshot_dir", d.snapshot_dir},
          {"recovery",
           {{"seq", d.recovered_seq},
            {"epoch", d.recovered_epoch},
            {"snapshot", d.recovered_snapshot},
            {"wal_records", d.recovered_wal_records},
            {"skipped_snapshots", d.skipped_snapshots},
            {"seconds", d.recovery_seconds},
            {"summary", d.recovery_summary}}},
          {"snapshot",
           {{"id", d.last_snapshot_id},
            {"seq", d.last_snapshot_seq},
            {"bytes", d.last_snapshot_bytes},
            {"seconds", d.last_snapshot_seconds},
            {"created_ms", d.last_snapshot_created_ms},
            {"taken", d.snapshots_taken},
            {"failed", d.snapshots_failed},
            {"last_error", d.last_snapshot_error}}},
          {"wal",
           {{"appended_seq", d.wal_appended_seq},
            {"durable_seq", d.wal_durable_seq},
            {"bytes", d.wal_bytes},
            {"segments", d.wal_segments},
            {"fsyncs", d.wal_fsyncs},
            {"error", d.wal_error}}},
          {"oplog",
           {{"first_seq", d.oplog_first_seq},
            {"last_seq", d.oplog_last_seq},
            {"truncated_before", d.oplog_truncated_before},
            {"truncated_entries", d.oplog_truncated_entries},
            {"refilled_entries", d.oplog_refilled_entries}}}};
}

}  // namespace

std::string NodeStatusToJson(const NodeStatus& status) {
  const nlohmann::json document = {
      {"node_id", status.node_id},
      {"role", status.role},
      {"epoch", status.epoch},
      {"applied_seq", status.stats.applied_seq},
      {"object_count", status.stats.object_count},
      {"processing_count", status.stats.processing_count},
      {"segment_count", status.stats.segment_count},
      {"bytes_used", status.stats.bytes_used},
      {"bytes_total", status.stats.bytes_total},
      {"state_digest", status.state_digest},
      {"uptime_s", status.uptime_s},
      {"listen", status.listen},
      {"http", status.http},
      {"replication", ReplicationToJson(status.replication)},
  };
  nlohmann::json out = document;
  if (status.leadership.has_value()) {
    const node::LeadershipStatus& l = *status.leadership;
    out["state"] = l.state.Name();
    out["leadership"] = {{"state", l.state.Name()},
                         {"reason", l.state.reason},
                         {"since_ms", l.state.since_ms},
                         {"transitions", l.state.transitions},
                         {"leader_id", l.leader_id},
                         {"leader_address", l.leader_address},
                         {"leader_epoch", l.leader_epoch},
                         {"lease_valid", l.lease_valid},
                         {"lease_valid_for_ms", l.lease_valid_for_ms},
                         {"elections_won", l.elections_won},
                         {"step_downs", l.step_downs},
                         {"leases_lost", l.leases_lost}};
  }
  out["recovering"] = status.recovering;
  out["durability"] = DurabilityToJson(status.durability);
  // Replace rather than throw on a non-UTF-8 node id.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tandem::server
