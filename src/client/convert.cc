#include "client/convert.h"

#include <grpcpp/support/status.h>

#include <string>

namespace tandem::client_internal {

static_assert(static_cast<int>(ErrorCode::kUnavailable) == v1::UNAVAILABLE);
static_assert(static_cast<int>(ErrorCode::kInvalidParams) == v1::INVALID_PARAMS);
static_assert(static_cast<int>(ErrorCode::kNotOwner) == v1::NOT_OWNER);
static_assert(kErrorCodeCount == v1::ErrorCode_ARRAYSIZE);

namespace {

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return "GRPC_ERROR";
  }
}

}  // namespace

Client::ServedBy& ThreadServedBy() {
  thread_local Client::ServedBy served;
  return served;
}

void ResetServedBy() {
  Client::ServedBy& served = ThreadServedBy();
  served.node_id.clear();
  served.epoch = 0;
}

Status FromProto(const v1::Status& status) {
  int code = status.code();
  if (code == v1::OK) {
    if (!status.served_by().empty()) {
      Client::ServedBy& served = ThreadServedBy();
      served.node_id = status.served_by();
      served.epoch = status.served_epoch();
    }
    return Status::Ok();
  }
  if (code < 0 || code >= kErrorCodeCount) {
    return Status(ErrorCode::kInternal,
                  "unknown error code " + std::to_string(code) + ": " + status.message());
  }
  std::string message = status.message();
  if (status.leader_address().empty()) return Status(static_cast<ErrorCode>(code), message);
  message += " (leader: " + status.leader_address() + ")";
  if (code == v1::NOT_LEADER) return Status::NotLeader(std::move(message), status.leader_address());
  return Status(static_cast<ErrorCode>(code), std::move(message));
}

Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  std::string message = status.error_message() + " (gRPC ";
  message += GrpcCodeName(status.error_code());
  message += ")";
  return Status(ErrorCode::kUnavailable, std::move(message));
}

Replica FromProto(const v1::Replica& replica) {
  Replica out;
  out.segment_id = replica.segment_id();
  out.segment_name = replica.segment_name();
  out.endpoint = replica.endpoint();
  out.offset = replica.offset();
  out.address = replica.address();
  out.size = replica.size();
  out.complete = replica.status() == v1::COMPLETE;
  return out;
}

std::vector<Replica> FromProto(const google::protobuf::RepeatedPtrField<v1::Replica>& replicas) {
  std::vector<Replica> out;
  out.reserve(replicas.size());
  for (const v1::Replica& r : replicas) out.push_back(FromProto(r));
  return out;
}

Segment FromProto(const v1::Segment& segment) {
  return Segment{segment.id(), segment.name(), segment.base(), segment.size(), segment.endpoint()};
}

void ToProto(const Segment& segment, v1::Segment* out) {
  out->set_id(segment.id);
  out->set_name(segment.name);
  out->set_base(segment.base);
  out->set_size(segment.size);
  out->set_endpoint(segment.endpoint);
}

void ToProto(const PutItem& item, const std::string& client_id, v1::PutStartRequest* out) {
  out->set_key(item.key);
  out->set_value_size(item.value_size);
  out->set_replica_num(item.options.replica_num);
  out->set_preferred_segment(item.options.preferred_segment);
  out->set_client_id(client_id);
  out->set_soft_pin(item.options.soft_pin);
}

StatusOr<std::vector<Replica>> FromProto(const v1::PutStartResponse& response) {
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return FromProto(response.replicas());
}

StatusOr<ReplicaList> FromProto(const v1::GetReplicaListResponse& response) {
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return ReplicaList{FromProto(response.replicas()), response.lease_ttl_ms()};
}

StatusOr<bool> FromProto(const v1::ExistKeyResponse& response) {
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return response.exists();
}

MasterStatus FromProto(const v1::GetStatusResponse& response) {
  MasterStatus out;
  out.node_id = response.node_id();
  out.role = response.role();
  out.epoch = response.epoch();
  out.applied_seq = response.applied_seq();
  out.object_count = response.object_count();
  out.segment_count = response.segment_count();
  out.bytes_used = response.bytes_used();
  out.bytes_total = response.bytes_total();
  out.state_digest = response.state_digest();
  for (const v1::Segment& s : response.segments()) out.segments.push_back(FromProto(s));
  out.replication_mode = response.replication_mode();
  for (const v1::StandbyInfo& s : response.standbys()) {
    out.standbys.push_back(StandbyInfo{s.standby_id(), s.address(), s.state(), s.acked_seq(),
                                       s.lag_entries(), s.lag_ms(), s.full_syncs()});
  }
  if (response.has_follower()) {
    const v1::FollowerInfo& f = response.follower();
    out.follower =
        FollowerInfo{f.state(),      f.primary_address(), f.lag_entries(), f.lag_ms(),
                     f.last_error(), f.refused_entries(), f.full_syncs(),  f.reconnects()};
  }
  return out;
}

Status CheckBatchSize(int got, size_t want) {
  if (got >= 0 && static_cast<size_t>(got) == want) return Status::Ok();
  return Status(ErrorCode::kInternal, "master returned " + std::to_string(got) + " results for " +
                                          std::to_string(want) + " items");
}

}  // namespace tandem::client_internal
