// Conversions between the state machine's types and the tandem.v1 client API messages.
// Error codes convert by cast: proto_convert.cc static_asserts that every number matches.
#pragma once

#include <type_traits>

#include "common/status.h"
#include "meta/meta_store.h"
#include "tandem/v1/master.pb.h"

namespace tandem::server {

void ToProto(const Status& status, tandem::v1::Status* out);
Status FromProto(const tandem::v1::Status& status);
void ToProto(const meta::ReplicaView& replica, tandem::v1::Replica* out);
void ToProto(const meta::SegmentSpec& segment, tandem::v1::Segment* out);
meta::SegmentSpec FromProto(const tandem::v1::Segment& segment);

// Replaces every OK status a response carries (one, or one per batch item) with `failure`:
// used when a write was applied but could not be committed (e.g. REPLICATION_TIMEOUT).
template <typename Message>
void ReplaceOkStatuses(const Status& failure, Message* message) {
  if constexpr (std::is_same_v<Message, tandem::v1::Status>) {
    if (message->code() == tandem::v1::OK) ToProto(failure, message);
  } else if constexpr (requires { message->mutable_items(); }) {
    for (auto& item : *message->mutable_items()) ReplaceOkStatuses(failure, &item);
  } else {
    ReplaceOkStatuses(failure, message->mutable_status());
  }
}

}  // namespace tandem::server
