#include "server/proto_convert.h"

namespace tandem::server {
namespace {

constexpr bool SameNumber(ErrorCode ours, v1::ErrorCode theirs) {
  return static_cast<int>(ours) == static_cast<int>(theirs);
}
static_assert(SameNumber(ErrorCode::kOk, v1::OK));
static_assert(SameNumber(ErrorCode::kInvalidParams, v1::INVALID_PARAMS));
static_assert(SameNumber(ErrorCode::kSegmentAlreadyExists, v1::SEGMENT_ALREADY_EXISTS));
static_assert(SameNumber(ErrorCode::kSegmentNotFound, v1::SEGMENT_NOT_FOUND));
static_assert(SameNumber(ErrorCode::kObjectAlreadyExists, v1::OBJECT_ALREADY_EXISTS));
static_assert(SameNumber(ErrorCode::kObjectNotFound, v1::OBJECT_NOT_FOUND));
static_assert(SameNumber(ErrorCode::kObjectNotReady, v1::OBJECT_NOT_READY));
static_assert(SameNumber(ErrorCode::kInvalidState, v1::INVALID_STATE));
static_assert(SameNumber(ErrorCode::kNoAvailableSpace, v1::NO_AVAILABLE_SPACE));
static_assert(SameNumber(ErrorCode::kObjectHasLease, v1::OBJECT_HAS_LEASE));
static_assert(SameNumber(ErrorCode::kNotOwner, v1::NOT_OWNER));
static_assert(SameNumber(ErrorCode::kClientNotFound, v1::CLIENT_NOT_FOUND));
static_assert(SameNumber(ErrorCode::kNotLeader, v1::NOT_LEADER));
static_assert(SameNumber(ErrorCode::kReplicationTimeout, v1::REPLICATION_TIMEOUT));
static_assert(SameNumber(ErrorCode::kFenced, v1::FENCED));
static_assert(SameNumber(ErrorCode::kInternal, v1::INTERNAL));
static_assert(SameNumber(ErrorCode::kUnavailable, v1::UNAVAILABLE));
static_assert(v1::ErrorCode_ARRAYSIZE == kErrorCodeCount, "a code was added on one side only");

static_assert(static_cast<int>(meta::ReplicaState::kProcessing) == v1::PROCESSING);
static_assert(static_cast<int>(meta::ReplicaState::kComplete) == v1::COMPLETE);

}  // namespace

void ToProto(const Status& status, v1::Status* out) {
  out->set_code(static_cast<v1::ErrorCode>(status.code()));
  out->set_message(status.message());
  if (!status.leader_address().empty()) out->set_leader_address(status.leader_address());
  if (!status.ok()) {  // a write that failed after being admitted must not look served
    out->clear_served_epoch();
    out->clear_served_by();
  }
}

Status FromProto(const v1::Status& status) {
  if (status.code() < 0 || status.code() >= kErrorCodeCount) {
    return Status(ErrorCode::kInternal, "unknown error code " + std::to_string(status.code()));
  }
  return Status(static_cast<ErrorCode>(status.code()), status.message());
}

void ToProto(const meta::ReplicaView& replica, v1::Replica* out) {
  out->set_segment_id(replica.segment_id);
  out->set_segment_name(replica.segment_name);
  out->set_endpoint(replica.endpoint);
  out->set_offset(replica.offset);
  out->set_address(replica.address);
  out->set_size(replica.size);
  out->set_status(static_cast<v1::ReplicaStatus>(replica.state));
}

void ToProto(const meta::SegmentSpec& segment, v1::Segment* out) {
  out->set_id(segment.id);
  out->set_name(segment.name);
  out->set_base(segment.base);
  out->set_size(segment.size);
  out->set_endpoint(segment.endpoint);
}

meta::SegmentSpec FromProto(const v1::Segment& segment) {
  meta::SegmentSpec spec;
  spec.id = segment.id();
  spec.name = segment.name();
  spec.base = segment.base();
  spec.size = segment.size();
  spec.endpoint = segment.endpoint();
  return spec;
}

}  // namespace tandem::server
