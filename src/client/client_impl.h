// Client::Impl, shared by client.cc (single-key and admin calls) and client_batch.cc.
// Internal to the client library.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/convert.h"
#include "client/stream_mux.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem {

using Stub = v1::Master::Stub;
using client_internal::StreamMux;

struct Client::Impl {
  explicit Impl(ClientOptions opts);

  StreamMux::Clock::time_point Deadline() const {
    return StreamMux::Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  }

  v1::KeyRequest KeyRequest(std::string_view key) const {
    v1::KeyRequest request;
    request.set_key(std::string(key));
    request.set_client_id(options.client_id);
    return request;
  }

  void FillBatchKeyRequest(std::span<const std::string> keys, v1::BatchKeyRequest* request) const {
    request->mutable_keys()->Reserve(static_cast<int>(keys.size()));
    for (const std::string& key : keys) request->add_keys(key);
    request->set_client_id(options.client_id);
  }

  // One unary call on the next channel (round robin), bounded by timeout_ms.
  template <typename Req, typename Resp>
  Status Unary(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
               const Req& request, Resp* response) {
    grpc::ClientContext context;
    // gRPC converts only system_clock time points.
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options.timeout_ms));
    Stub* stub = stubs[next_stub.fetch_add(1, std::memory_order_relaxed) % stubs.size()].get();
    return client_internal::FromGrpc((stub->*method)(&context, request, response));
  }

  // One pipelined call; fails with kInternal if the master answered with another operation.
  StatusOr<v1::StreamResponse> Pipelined(v1::StreamRequest request,
                                         v1::StreamResponse::ResultCase expected) {
    StatusOr<v1::StreamResponse> response = mux->Call(std::move(request), Deadline());
    if (response.ok() && response->result_case() != expected) {
      return Status(ErrorCode::kInternal, "master answered a stream request with another op");
    }
    return response;
  }

  // The unary BatchKeyRequest -> BatchStatusResponse calls (PutEnd, PutRevoke, Remove).
  StatusOr<std::vector<Status>> BatchStatus(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                         const v1::BatchKeyRequest&,
                                                                         v1::BatchStatusResponse*),
                                            std::span<const std::string> keys);

  const ClientOptions options;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<Stub>> stubs;  // one per channel, for unary calls
  std::atomic<uint64_t> next_stub{0};
  std::unique_ptr<StreamMux> mux;  // null unless options.use_streams
};

}  // namespace tandem
