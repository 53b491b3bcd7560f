// Client::Impl, shared by client.cc (single-key and admin calls), client_batch.cc and
// leader.cc (leader discovery, retries). Internal to the client library.
//
// Routing: `Conn` is the set of channels (and the stream mux) to one master address. The current
// Conn is an atomic shared_ptr: a call loads it without a lock; a switch (a NOT_LEADER hint, an
// etcd watch update, a transport failure) swaps in a new Conn under `mu`, and the old one is
// destroyed when its last caller lets go of it (on that caller's thread, never a gRPC thread).
//
// Retries (Call): NOT_LEADER, FENCED and UNAVAILABLE are retried, re-resolving the leader before
// each attempt, with exponential backoff and full jitter, inside a total budget of max_retry_ms
// (no attempt starts after it). A write carries one request id for all its attempts, so the
// master applies it at most once (its dedup window answers a repeat without applying it).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "client/client.h"
#include "client/convert.h"
#include "client/stream_mux.h"
#include "coord/election.h"
#include "coord/etcd_client.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem {

using Stub = v1::Master::Stub;
using client_internal::StreamMux;

namespace client_internal {

// Channels (one per stream) and the stream mux to one address.
struct Conn {
  Conn(std::string address, const ClientOptions& options, uint64_t etcd_generation);
  ~Conn();

  Stub* NextStub() {
    return stubs[next_stub.fetch_add(1, std::memory_order_relaxed) % stubs.size()].get();
  }

  const std::string address;
  std::atomic<uint64_t> etcd_generation;  // the etcd leader updates this Conn has seen
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<Stub>> stubs;  // one per channel, for unary calls
  std::atomic<uint64_t> next_stub{0};
  std::unique_ptr<StreamMux> mux;  // null unless options.use_streams
};

// The status that decides whether a result is retried: the outer status, or for a batch the
// first retriable item (a leader that steps down mid-batch refuses the rest of it).
inline bool Retriable(ErrorCode code) {
  return code == ErrorCode::kNotLeader || code == ErrorCode::kFenced ||
         code == ErrorCode::kUnavailable;
}
inline const Status* RetryStatus(const Status& status) { return &status; }
template <typename T>
const Status* RetryStatus(const StatusOr<T>& result) {
  return &result.status();
}
inline const Status* RetryStatus(const StatusOr<std::vector<Status>>& result) {
  if (!result.ok()) return &result.status();
  for (const Status& item : result.value()) {
    if (Retriable(item.code())) return &item;
  }
  return &result.status();
}
template <typename T>
const Status* RetryStatus(const StatusOr<std::vector<StatusOr<T>>>& result) {
  if (!result.ok()) return &result.status();
  for (const StatusOr<T>& item : result.value()) {
    if (Retriable(item.status().code())) return &item.status();
  }
  return &result.status();
}

}  // namespace client_internal

using client_internal::Conn;

struct Client::Impl {
  explicit Impl(ClientOptions opts);
  ~Impl();

  // ---- Routing (leader.cc) ----
  // The Conn to use now: the current one, switched first if etcd named another leader.
  std::shared_ptr<Conn> Current();
  // After `failed` answered `status`: moves to the leader it names, or etcd's, or (without etcd,
  // after a transport failure on a hinted address) back to options.address. True if it moved.
  bool Reroute(const std::shared_ptr<Conn>& failed, const Status& status);
  void OnLeader(const std::optional<coord::LeaderInfo>& leader);
  uint32_t BackoffMs(uint32_t attempt);
  std::string NewRequestId() {
    return request_prefix + std::to_string(next_request.fetch_add(1, std::memory_order_relaxed));
  }

  // Runs attempt(Conn&) until its result is not retriable or the retry budget is spent.
  template <typename Fn>
  std::invoke_result_t<Fn, Conn&> Call(Fn&& attempt) {
    using Result = std::invoke_result_t<Fn, Conn&>;
    client_internal::ResetServedBy();
    if (!startup.ok()) return Result(startup);
    const auto start = std::chrono::steady_clock::now();
    uint32_t backoffs = 0;
    bool moved_last = false;
    for (;;) {
      std::shared_ptr<Conn> conn = Current();
      Result result = attempt(*conn);
      const Status* status = client_internal::RetryStatus(result);
      if (status->ok() || !client_internal::Retriable(status->code())) return result;
      // A hint naming another node is followed at once (once in a row); anything else waits.
      const bool hinted = status->code() == ErrorCode::kNotLeader &&
                          !status->leader_address().empty() &&
                          status->leader_address() != conn->address;
      const uint32_t delay = hinted && !moved_last ? 0 : BackoffMs(backoffs++);
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count();
      if (static_cast<uint64_t>(elapsed) + delay >= options.max_retry_ms) return result;
      retries.fetch_add(1, std::memory_order_relaxed);
      if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      moved_last = Reroute(conn, *status);
    }
  }

  // ---- Calls on one Conn ----
  std::chrono::system_clock::time_point UnaryDeadline(uint32_t timeout_ms = 0) const {
    // gRPC converts only system_clock time points.
    return std::chrono::system_clock::now() +
           std::chrono::milliseconds(timeout_ms != 0 ? timeout_ms : options.timeout_ms);
  }
  StreamMux::Clock::time_point Deadline() const {
    return StreamMux::Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  }

  v1::KeyRequest KeyRequest(std::string_view key, std::string request_id = {}) const {
    v1::KeyRequest request;
    request.set_key(std::string(key));
    request.set_client_id(options.client_id);
    if (!request_id.empty()) request.set_request_id(std::move(request_id));
    return request;
  }

  void FillBatchKeyRequest(std::span<const std::string> keys, v1::BatchKeyRequest* request) const {
    request->mutable_keys()->Reserve(static_cast<int>(keys.size()));
    for (const std::string& key : keys) request->add_keys(key);
    request->set_client_id(options.client_id);
  }

  // One unary call on the next channel of `conn` (round robin), bounded by timeout_ms.
  template <typename Req, typename Resp>
  Status Unary(Conn& conn, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
               const Req& request, Resp* response, uint32_t timeout_ms = 0) {
    grpc::ClientContext context;
    context.set_deadline(UnaryDeadline(timeout_ms));
    response->Clear();
    return client_internal::FromGrpc((conn.NextStub()->*method)(&context, request, response));
  }

  // One pipelined call; fails with kInternal if the master answered with another operation.
  StatusOr<v1::StreamResponse> Pipelined(Conn& conn, const v1::StreamRequest& request,
                                         v1::StreamResponse::ResultCase expected) {
    StatusOr<v1::StreamResponse> response = conn.mux->Call(request, Deadline());
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
  const std::string request_prefix;  // "<64-bit random, hex>-"
  std::atomic<uint64_t> next_request{1};
  Status startup;  // a bad etcd configuration: every call fails with it

  std::mutex mu;                            // serializes switches of `conn`; guards etcd_leader
  std::atomic<std::shared_ptr<Conn>> conn;  // never null
  std::string etcd_leader;                  // client address from the watch; empty: none
  std::atomic<uint64_t> etcd_generation{0};

  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> redirects{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> leader_changes{0};

  // Declared last: the watch is cancelled first, while everything it touches still exists.
  std::unique_ptr<coord::EtcdClient> etcd;
  std::unique_ptr<coord::LeaderElection> election;
  std::unique_ptr<coord::WatchHandle> watch;
};

}  // namespace tandem
