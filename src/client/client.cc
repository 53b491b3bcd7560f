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

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

Status Client::MountSegment(const Segment& segment) {
  v1::MountSegmentRequest request;
  client_internal::ToProto(segment, request.mutable_segment());
  request.set_client_id(impl_->options.client_id);
  request.set_request_id(impl_->NewRequestId());
  return impl_->Call([&](Conn& conn) {
    v1::MountSegmentResponse response;
    if (Status s = impl_->Unary(conn, &Stub::MountSegment, request, &response); !s.ok()) return s;
    return FromProto(response.status());
  });
}

Status Client::UnmountSegment(std::string_view segment_id) {
  v1::UnmountSegmentRequest request;
  request.set_segment_id(std::string(segment_id));
  request.set_client_id(impl_->options.client_id);
  request.set_request_id(impl_->NewRequestId());
  return impl_->Call([&](Conn& conn) {
    v1::UnmountSegmentResponse response;
    if (Status s = impl_->Unary(conn, &Stub::UnmountSegment, request, &response); !s.ok()) {
      return s;
    }
    return FromProto(response.status());
  });
}

StatusOr<std::vector<Replica>> Client::PutStart(std::string_view key, uint64_t value_size,
                                                const PutOptions& options) {
  v1::PutStartRequest request;
  client_internal::ToProto(PutItem{std::string(key), value_size, options}, impl_->options.client_id,
                           &request);
  request.set_request_id(impl_->NewRequestId());
  v1::StreamRequest stream_request;
  if (impl_->options.use_streams) *stream_request.mutable_put_start() = request;
  return impl_->Call([&](Conn& conn) -> StatusOr<std::vector<Replica>> {
    if (conn.mux) {
      auto response = impl_->Pipelined(conn, stream_request, v1::StreamResponse::kPutStart);
      if (!response.ok()) return response.status();
      return FromProto(response->put_start());
    }
    v1::PutStartResponse response;
    if (Status s = impl_->Unary(conn, &Stub::PutStart, request, &response); !s.ok()) return s;
    return FromProto(response);
  });
}

namespace {

// A single-key KeyRequest op answered with a bare status, on the stream or unary.
template <typename Impl, typename Resp>
Status KeyStatusCall(Impl& impl, std::string_view key, bool write,
                     v1::KeyRequest* (v1::StreamRequest::*mutable_field)(),
                     v1::StreamResponse::ResultCase expected,
                     const Resp& (v1::StreamResponse::*field)() const,
                     grpc::Status (Stub::*method)(grpc::ClientContext*, const v1::KeyRequest&,
                                                  Resp*)) {
  const v1::KeyRequest request = impl.KeyRequest(key, write ? impl.NewRequestId() : std::string());
  v1::StreamRequest stream_request;
  if (impl.options.use_streams) *(stream_request.*mutable_field)() = request;
  return impl.Call([&](Conn& conn) {
    if (conn.mux) {
      auto response = impl.Pipelined(conn, stream_request, expected);
      return response.ok() ? FromProto((response.value().*field)().status()) : response.status();
    }
    Resp response;
    if (Status s = impl.Unary(conn, method, request, &response); !s.ok()) return s;
    return FromProto(response.status());
  });
}

}  // namespace

Status Client::PutEnd(std::string_view key) {
  return KeyStatusCall(*impl_, key, true, &v1::StreamRequest::mutable_put_end,
                       v1::StreamResponse::kPutEnd, &v1::StreamResponse::put_end, &Stub::PutEnd);
}

Status Client::PutRevoke(std::string_view key) {
  return KeyStatusCall(*impl_, key, true, &v1::StreamRequest::mutable_put_revoke,
                       v1::StreamResponse::kPutRevoke, &v1::StreamResponse::put_revoke,
                       &Stub::PutRevoke);
}

Status Client::Remove(std::string_view key) {
  return KeyStatusCall(*impl_, key, true, &v1::StreamRequest::mutable_remove,
                       v1::StreamResponse::kRemove, &v1::StreamResponse::remove, &Stub::Remove);
}

StatusOr<ReplicaList> Client::GetReplicaList(std::string_view key) {
  const v1::KeyRequest request = impl_->KeyRequest(key);
  v1::StreamRequest stream_request;
  if (impl_->options.use_streams) *stream_request.mutable_get_replica_list() = request;
  return impl_->Call([&](Conn& conn) -> StatusOr<ReplicaList> {
    if (conn.mux) {
      auto response = impl_->Pipelined(conn, stream_request, v1::StreamResponse::kGetReplicaList);
      if (!response.ok()) return response.status();
      return FromProto(response->get_replica_list());
    }
    v1::GetReplicaListResponse response;
    if (Status s = impl_->Unary(conn, &Stub::GetReplicaList, request, &response); !s.ok()) {
      return s;
    }
    return FromProto(response);
  });
}

StatusOr<bool> Client::ExistKey(std::string_view key) {
  const v1::KeyRequest request = impl_->KeyRequest(key);
  v1::StreamRequest stream_request;
  if (impl_->options.use_streams) *stream_request.mutable_exist_key() = request;
  return impl_->Call([&](Conn& conn) -> StatusOr<bool> {
    if (conn.mux) {
      auto response = impl_->Pipelined(conn, stream_request, v1::StreamResponse::kExistKey);
      if (!response.ok()) return response.status();
      return FromProto(response->exist_key());
    }
    v1::ExistKeyResponse response;
    if (Status s = impl_->Unary(conn, &Stub::ExistKey, request, &response); !s.ok()) return s;
    return FromProto(response);
  });
}

StatusOr<RemoveAllResult> Client::RemoveAll() {
  v1::RemoveAllRequest request;
  request.set_request_id(impl_->NewRequestId());
  return impl_->Call([&](Conn& conn) -> StatusOr<RemoveAllResult> {
    v1::RemoveAllResponse response;
    if (Status s = impl_->Unary(conn, &Stub::RemoveAll, request, &response); !s.ok()) return s;
    if (Status s = FromProto(response.status()); !s.ok()) return s;
    return RemoveAllResult{response.removed(), response.kept()};
  });
}

StatusOr<PingResult> Client::Ping() {
  v1::PingRequest request;
  request.set_client_id(impl_->options.client_id);
  return impl_->Call([&](Conn& conn) -> StatusOr<PingResult> {
    v1::PingResponse response;
    if (Status s = impl_->Unary(conn, &Stub::Ping, request, &response); !s.ok()) return s;
    if (Status s = FromProto(response.status()); !s.ok()) return s;
    return PingResult{response.client_ttl_ms()};
  });
}

StatusOr<MasterStatus> Client::GetStatus() {
  // Any node answers (a standby with its own view): asked where the client points now.
  return impl_->Call([&](Conn& conn) -> StatusOr<MasterStatus> {
    v1::GetStatusResponse response;
    if (Status s = impl_->Unary(conn, &Stub::GetStatus, v1::GetStatusRequest(), &response);
        !s.ok()) {
      return s;
    }
    if (Status s = FromProto(response.status()); !s.ok()) return s;
    return FromProto(response);
  });
}

StatusOr<SnapshotResult> Client::Snapshot() {
  const uint32_t deadline_ms = impl_->options.timeout_ms + 60000;
  return impl_->Call([&](Conn& conn) -> StatusOr<SnapshotResult> {
    v1::SnapshotResponse response;
    if (Status s =
            impl_->Unary(conn, &Stub::Snapshot, v1::SnapshotRequest(), &response, deadline_ms);
        !s.ok()) {
      return s;
    }
    if (Status s = FromProto(response.status()); !s.ok()) return s;
    return SnapshotResult{response.snapshot_id(),  response.epoch(), response.seq(),
                          response.object_count(), response.bytes(), response.seconds()};
  });
}

StatusOr<std::string> Client::Handover(std::string_view target_node_id, uint32_t timeout_ms) {
  v1::HandoverRequest request;
  request.set_target_node_id(std::string(target_node_id));
  request.set_timeout_ms(timeout_ms);
  // The server may wait up to timeout_ms (its default when 0) before answering.
  const uint32_t deadline_ms = impl_->options.timeout_ms + (timeout_ms != 0 ? timeout_ms : 10000);
  return impl_->Call([&](Conn& conn) -> StatusOr<std::string> {
    v1::HandoverResponse response;
    if (Status s = impl_->Unary(conn, &Stub::Handover, request, &response, deadline_ms); !s.ok()) {
      // A timeout is not retried: the old leader may have handed over before the answer was
      // lost, and a retry would hand over again.
      if (s.message().find("DEADLINE_EXCEEDED") == std::string::npos) return s;
      return Status(ErrorCode::kInternal,
                    "handover: " + s.message() + " (it may have happened; check status)");
    }
    if (Status s = FromProto(response.status()); !s.ok()) return s;
    return response.new_leader_node_id();
  });
}

Status Client::StartupStatus() const { return impl_->startup; }

Client::ServedBy Client::LastServedBy() { return client_internal::ThreadServedBy(); }

ClientStats Client::Stats() const {
  ClientStats stats;
  stats.retries = impl_->retries.load(std::memory_order_relaxed);
  stats.redirects = impl_->redirects.load(std::memory_order_relaxed);
  stats.reconnects = impl_->reconnects.load(std::memory_order_relaxed);
  stats.leader_changes = impl_->leader_changes.load(std::memory_order_relaxed);
  stats.address = impl_->conn.load(std::memory_order_acquire)->address;
  return stats;
}

}  // namespace tandem
