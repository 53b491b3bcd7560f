// Errors are values: every fallible operation returns a Status (or StatusOr<T>) carrying a typed
// ErrorCode and a human-readable message. Codes have the same numbers as tandem.v1.ErrorCode so
// the gRPC adapters convert by cast (checked there with static_asserts).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tandem {

enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidParams = 1,
  kSegmentAlreadyExists = 2,
  kSegmentNotFound = 3,
  kObjectAlreadyExists = 4,
  kObjectNotFound = 5,
  kObjectNotReady = 6,
  kInvalidState = 7,
  kNoAvailableSpace = 8,
  kObjectHasLease = 9,
  kNotOwner = 10,
  kClientNotFound = 11,
  kNotLeader = 12,
  kReplicationTimeout = 13,
  kFenced = 14,
  kInternal = 15,
  kUnavailable = 16,
};
inline constexpr int kErrorCodeCount = 17;

// Stable upper-case name, as in the proto enum (used in logs, metrics labels and tandemctl).
std::string_view ErrorCodeName(ErrorCode code);

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  // NOT_LEADER / FENCED: where the client should go instead.
  static Status NotLeader(std::string message, std::string leader_address) {
    Status status(ErrorCode::kNotLeader, std::move(message));
    status.leader_address_ = std::move(leader_address);
    return status;
  }
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& leader_address() const { return leader_address_; }
  // "CODE: message", or "OK".
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string leader_address_;
};

// A value or the error that prevented it. Accessing value() of an error is a programming bug.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tandem
