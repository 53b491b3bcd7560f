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
  status.epoch = sequencer_->epoch();
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
  };
  // Replace rather than throw on a non-UTF-8 node id.
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tandem::server
