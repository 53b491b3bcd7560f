// Internals of EtcdClient shared by etcd_client.cc (unary calls) and etcd_streams.cc (keepalive
// and watch streams). Includes gRPC: include only from those two files.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coord/etcd_client.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace tandem::coord {

struct Endpoint {
  std::string address;  // "host:port" as given (without "http://")
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
};

// "etcd <what> at <endpoint>: <message> (<GRPC_CODE>)" with the ErrorCode the class maps to.
Status FromGrpc(const grpc::Status& status, const std::string& what, const std::string& endpoint);
// Transport-level failures: worth trying another endpoint.
bool IsTransportError(const grpc::Status& status);
std::chrono::system_clock::time_point DeadlineAfterMs(uint32_t ms);
KeyValue FromProto(const mvccpb::KeyValue& kv);
// The range_end that makes [key, range_end) the set of keys starting with `prefix`.
std::string PrefixRangeEnd(std::string_view prefix);

struct EtcdClient::Impl {
  EtcdOptions options;
  std::vector<Endpoint> endpoints;
  std::atomic<size_t> current{0};

  // Runs `call` against endpoints from the current one on, each with a fresh context carrying the
  // per-call deadline, until one answers (even with an etcd error). `what` names the operation in
  // errors.
  using UnaryCall = std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>;
  Status Call(const std::string& what, const UnaryCall& call);

  // Index of the first endpoint (from the current one on) whose channel connects within
  // timeout_ms each; gives up early when *stop becomes true. For streams, which have no deadline.
  StatusOr<size_t> ConnectForStream(uint32_t timeout_ms, const std::atomic<bool>* stop);

  // With the sync API, gRPC polls a connection attempt only while some call or watch waits on
  // the channel; a fail-fast call does not wait in TRANSIENT_FAILURE, so a reconnect to an etcd
  // that came back would never complete (measured: "tcp handshaker shutdown" forever). One
  // thread keeps a connectivity watch armed on every channel (and asks idle ones to connect),
  // which keeps their connection attempts polled and endpoints ready for failover.
  void StartConnectivityWatch();
  void StopConnectivityWatch();
  ~Impl() { StopConnectivityWatch(); }

 private:
  void ArmWatch(size_t index);  // holds watch_mu

  std::mutex watch_mu;
  bool watch_stopping = false;
  grpc::CompletionQueue watch_cq;
  std::thread watch_thread;
};

// Metadata etcd's clientv3 puts on streams so that a member that lost its raft leader ends them
// (instead of leaving the client stuck on a partitioned member).
void RequireLeader(grpc::ClientContext* context);

}  // namespace tandem::coord
