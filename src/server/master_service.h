// MasterService: tandem.v1.Master on gRPC's callback API. A thin transport adapter: every unary
// handler runs inline on a gRPC thread through the RequestExecutor and finishes its reactor
// either at once or, for a write, when the WriteGate reports the commit. Stream hands off to
// the stream reactor. Includes gRPC: include this header only where the server is built.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <thread>

#include "server/request_executor.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem::server {

class MasterService final : public tandem::v1::Master::CallbackService {
 public:
  // `executor` is borrowed and must outlive the service.
  explicit MasterService(RequestExecutor* executor) : executor_(executor) {}

  using Context = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* MountSegment(Context* context, const v1::MountSegmentRequest* request,
                        v1::MountSegmentResponse* response) override;
  Reactor* UnmountSegment(Context* context, const v1::UnmountSegmentRequest* request,
                          v1::UnmountSegmentResponse* response) override;
  Reactor* PutStart(Context* context, const v1::PutStartRequest* request,
                    v1::PutStartResponse* response) override;
  Reactor* PutEnd(Context* context, const v1::KeyRequest* request,
                  v1::PutEndResponse* response) override;
  Reactor* PutRevoke(Context* context, const v1::KeyRequest* request,
                     v1::PutRevokeResponse* response) override;
  Reactor* GetReplicaList(Context* context, const v1::KeyRequest* request,
                          v1::GetReplicaListResponse* response) override;
  Reactor* ExistKey(Context* context, const v1::KeyRequest* request,
                    v1::ExistKeyResponse* response) override;
  Reactor* Remove(Context* context, const v1::KeyRequest* request,
                  v1::RemoveResponse* response) override;
  Reactor* RemoveAll(Context* context, const v1::RemoveAllRequest* request,
                     v1::RemoveAllResponse* response) override;
  Reactor* Ping(Context* context, const v1::PingRequest* request,
                v1::PingResponse* response) override;

  Reactor* BatchPutStart(Context* context, const v1::BatchPutStartRequest* request,
                         v1::BatchPutStartResponse* response) override;
  Reactor* BatchPutEnd(Context* context, const v1::BatchKeyRequest* request,
                       v1::BatchStatusResponse* response) override;
  Reactor* BatchPutRevoke(Context* context, const v1::BatchKeyRequest* request,
                          v1::BatchStatusResponse* response) override;
  Reactor* BatchGetReplicaList(Context* context, const v1::BatchKeyRequest* request,
                               v1::BatchGetReplicaListResponse* response) override;
  Reactor* BatchExistKey(Context* context, const v1::BatchKeyRequest* request,
                         v1::BatchExistKeyResponse* response) override;
  Reactor* BatchRemove(Context* context, const v1::BatchKeyRequest* request,
                       v1::BatchStatusResponse* response) override;

  Reactor* GetStatus(Context* context, const v1::GetStatusRequest* request,
                     v1::GetStatusResponse* response) override;

  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(Context* context) override;

  // Planned switchover (tandemctl failover): runs on its own thread, it waits for a standby.
  using HandoverFn = std::function<Status(const std::string& target, uint32_t timeout_ms,
                                          std::string* new_leader, uint64_t* last_seq)>;
  // Set once before serving; without it Handover answers INVALID_STATE (no etcd leadership).
  void SetHandover(HandoverFn handover) { handover_ = std::move(handover); }
  Reactor* Handover(Context* context, const v1::HandoverRequest* request,
                    v1::HandoverResponse* response) override;

  // tandemctl snapshot: `snapshot` fills the response and calls `finish` (from any thread).
  using SnapshotFn =
      std::function<void(v1::SnapshotResponse* response, std::function<void()> finish)>;
  // Set once before serving; without it Snapshot answers INVALID_STATE.
  void SetSnapshot(SnapshotFn snapshot) { snapshot_ = std::move(snapshot); }
  Reactor* Snapshot(Context* context, const v1::SnapshotRequest* request,
                    v1::SnapshotResponse* response) override;

 private:
  // Counts the request, runs `execute`, and finishes the reactor now or after the commit.
  template <typename Response, typename Execute>
  Reactor* Run(Context* context, Rpc rpc, uint64_t keys, Response* response, Execute execute);

  RequestExecutor* const executor_;
  HandoverFn handover_;
  SnapshotFn snapshot_;
};

}  // namespace tandem::server
