// Conversions between tandem.v1 protobuf messages and the client library's C++ types.
// Internal to the client library (includes generated protobuf headers).
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"
#include "tandem/v1/master.pb.h"

namespace grpc {
class Status;
}

namespace tandem::client_internal {

// A domain status from a response. Codes this library does not know map to kInternal. An OK
// status naming the node that served it is recorded for Client::LastServedBy.
Status FromProto(const v1::Status& status);
// Forgets the calling thread's last served-by (at the start of every client call).
void ResetServedBy();
Client::ServedBy& ThreadServedBy();
// Any non-OK gRPC status is a transport failure: kUnavailable, "<message> (gRPC <CODE>)".
Status FromGrpc(const grpc::Status& status);

Replica FromProto(const v1::Replica& replica);
std::vector<Replica> FromProto(const google::protobuf::RepeatedPtrField<v1::Replica>& replicas);
Segment FromProto(const v1::Segment& segment);
void ToProto(const Segment& segment, v1::Segment* out);
void ToProto(const PutItem& item, const std::string& client_id, v1::PutStartRequest* out);

StatusOr<std::vector<Replica>> FromProto(const v1::PutStartResponse& response);
StatusOr<ReplicaList> FromProto(const v1::GetReplicaListResponse& response);
StatusOr<bool> FromProto(const v1::ExistKeyResponse& response);
MasterStatus FromProto(const v1::GetStatusResponse& response);

// Checks that a batch response has one item per request item.
Status CheckBatchSize(int got, size_t want);

}  // namespace tandem::client_internal
