#include "common/status.h"

namespace tandem {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kInvalidParams:
      return "INVALID_PARAMS";
    case ErrorCode::kSegmentAlreadyExists:
      return "SEGMENT_ALREADY_EXISTS";
    case ErrorCode::kSegmentNotFound:
      return "SEGMENT_NOT_FOUND";
    case ErrorCode::kObjectAlreadyExists:
      return "OBJECT_ALREADY_EXISTS";
    case ErrorCode::kObjectNotFound:
      return "OBJECT_NOT_FOUND";
    case ErrorCode::kObjectNotReady:
      return "OBJECT_NOT_READY";
    case ErrorCode::kInvalidState:
      return "INVALID_STATE";
    case ErrorCode::kNoAvailableSpace:
      return "NO_AVAILABLE_SPACE";
    case ErrorCode::kObjectHasLease:
      return "OBJECT_HAS_LEASE";
    case ErrorCode::kNotOwner:
      return "NOT_OWNER";
    case ErrorCode::kClientNotFound:
      return "CLIENT_NOT_FOUND";
    case ErrorCode::kNotLeader:
      return "NOT_LEADER";
    case ErrorCode::kReplicationTimeout:
      return "REPLICATION_TIMEOUT";
    case ErrorCode::kFenced:
      return "FENCED";
    case ErrorCode::kInternal:
      return "INTERNAL";
    case ErrorCode::kUnavailable:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(ErrorCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace tandem
