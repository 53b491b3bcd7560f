#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "client/client_impl.h"
#include "client/convert.h"

namespace tandem {

using client_internal::FromGrpc;
using client_internal::FromProto;
using client_internal::StreamMux;
using Stub = v1::Master::Stub;

Client::Impl::Impl(ClientOptions opts) : options(std::move(opts)) {
  // One channel per stream, each with its own TCP connection (a local subchannel pool), so the
  // master can read the streams in parallel. Unary calls round-robin over the same channels.
  const uint32_t count = std::max<uint32_t>(1, options.stream_count);
  for (uint32_t i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("tandem.channel_index", static_cast<int>(i));
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Reconnect quickly after a master restart or failover (gRPC's default starts at 1 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channels.push_back(
        grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::Master::NewStub(channels.back()));
  }
  if (options.use_streams) mux = std::make_unique<StreamMux>(channels, options.stream_window);
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

Status Client::MountSegment(const Segment& segment) {
  v1::MountSegmentRequest request;
  client_internal::ToProto(segment, request.mutable_segment());
  request.set_client_id(impl_->options.client_id);
  v1::MountSegmentResponse response;
  if (Status s = impl_->Unary(&Stub::MountSegment, request, &response); !s.ok()) return s;
  return FromProto(response.status());
}

Status Client::UnmountSegment(std::string_view segment_id) {
  v1::UnmountSegmentRequest request;
  request.set_segment_id(std::string(segment_id));
  request.set_client_id(impl_->options.client_id);
  v1::UnmountSegmentResponse response;
  if (Status s = impl_->Unary(&Stub::UnmountSegment, request, &response); !s.ok()) return s;
  return FromProto(response.status());
}

StatusOr<std::vector<Replica>> Client::PutStart(std::string_view key, uint64_t value_size,
                                                const PutOptions& options) {
  v1::PutStartRequest request;
  client_internal::ToProto(PutItem{std::string(key), value_size, options}, impl_->options.client_id,
                           &request);
  if (impl_->mux) {
    v1::StreamRequest stream_request;
    *stream_request.mutable_put_start() = std::move(request);
    auto response = impl_->Pipelined(std::move(stream_request), v1::StreamResponse::kPutStart);
    if (!response.ok()) return response.status();
    return FromProto(response->put_start());
  }
  v1::PutStartResponse response;
  if (Status s = impl_->Unary(&Stub::PutStart, request, &response); !s.ok()) return s;
  return FromProto(response);
}

Status Client::PutEnd(std::string_view key) {
  if (impl_->mux) {
    v1::StreamRequest request;
    *request.mutable_put_end() = impl_->KeyRequest(key);
    auto response = impl_->Pipelined(std::move(request), v1::StreamResponse::kPutEnd);
    return response.ok() ? FromProto(response->put_end().status()) : response.status();
  }
  v1::PutEndResponse response;
  if (Status s = impl_->Unary(&Stub::PutEnd, impl_->KeyRequest(key), &response); !s.ok()) {
    return s;
  }
  return FromProto(response.status());
}

Status Client::PutRevoke(std::string_view key) {
  if (impl_->mux) {
    v1::StreamRequest request;
    *request.mutable_put_revoke() = impl_->KeyRequest(key);
    auto response = impl_->Pipelined(std::move(request), v1::StreamResponse::kPutRevoke);
    return response.ok() ? FromProto(response->put_revoke().status()) : response.status();
  }
  v1::PutRevokeResponse response;
  if (Status s = impl_->Unary(&Stub::PutRevoke, impl_->KeyRequest(key), &response); !s.ok()) {
    return s;
  }
  return FromProto(response.status());
}

StatusOr<ReplicaList> Client::GetReplicaList(std::string_view key) {
  if (impl_->mux) {
    v1::StreamRequest request;
    *request.mutable_get_replica_list() = impl_->KeyRequest(key);
    auto response = impl_->Pipelined(std::move(request), v1::StreamResponse::kGetReplicaList);
    if (!response.ok()) return response.status();
    return FromProto(response->get_replica_list());
  }
  v1::GetReplicaListResponse response;
  if (Status s = impl_->Unary(&Stub::GetReplicaList, impl_->KeyRequest(key), &response); !s.ok()) {
    return s;
  }
  return FromProto(response);
}

StatusOr<bool> Client::ExistKey(std::string_view key) {
  if (impl_->mux) {
    v1::StreamRequest request;
    *request.mutable_exist_key() = impl_->KeyRequest(key);
    auto response = impl_->Pipelined(std::move(request), v1::StreamResponse::kExistKey);
    if (!response.ok()) return response.status();
    return FromProto(response->exist_key());
  }
  v1::ExistKeyResponse response;
  if (Status s = impl_->Unary(&Stub::ExistKey, impl_->KeyRequest(key), &response); !s.ok()) {
    return s;
  }
  return FromProto(response);
}

Status Client::Remove(std::string_view key) {
  if (impl_->mux) {
    v1::StreamRequest request;
    *request.mutable_remove() = impl_->KeyRequest(key);
    auto response = impl_->Pipelined(std::move(request), v1::StreamResponse::kRemove);
    return response.ok() ? FromProto(response->remove().status()) : response.status();
  }
  v1::RemoveResponse response;
  if (Status s = impl_->Unary(&Stub::Remove, impl_->KeyRequest(key), &response); !s.ok()) {
    return s;
  }
  return FromProto(response.status());
}

StatusOr<RemoveAllResult> Client::RemoveAll() {
  v1::RemoveAllResponse response;
  if (Status s = impl_->Unary(&Stub::RemoveAll, v1::RemoveAllRequest(), &response); !s.ok()) {
    return s;
  }
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return RemoveAllResult{response.removed(), response.kept()};
}

StatusOr<PingResult> Client::Ping() {
  v1::PingRequest request;
  request.set_client_id(impl_->options.client_id);
  v1::PingResponse response;
  if (Status s = impl_->Unary(&Stub::Ping, request, &response); !s.ok()) return s;
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return PingResult{response.client_ttl_ms()};
}

StatusOr<MasterStatus> Client::GetStatus() {
  v1::GetStatusResponse response;
  if (Status s = impl_->Unary(&Stub::GetStatus, v1::GetStatusRequest(), &response); !s.ok()) {
    return s;
  }
  if (Status s = FromProto(response.status()); !s.ok()) return s;
  return FromProto(response);
}

}  // namespace tandem
