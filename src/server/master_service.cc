#include "server/master_service.h"

#include <chrono>

#include "server/proto_convert.h"
#include "server/stream_reactor.h"

namespace tandem::server {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

template <typename Response, typename Execute>
MasterService::Reactor* MasterService::Run(Context* context, Rpc rpc, uint64_t keys,
                                           Response* response, Execute execute) {
  const auto start = std::chrono::steady_clock::now();
  RpcMetrics* metrics = executor_->metrics();
  metrics->CountRequest(rpc, keys);
  Reactor* reactor = context->DefaultReactor();
  if (execute() == Completion::kNow) {
    metrics->ObserveLatency(rpc, SecondsSince(start));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // The response stays valid until Finish, however late the gate calls back.
  executor_->write_gate()->AwaitCommit(executor_->CommitPosition(),
                                       [reactor, response, metrics, rpc, start](Status committed) {
                                         if (!committed.ok()) {
                                           ReplaceOkStatuses(committed, response);
                                           metrics->CountError(rpc, committed.code());
                                         }
                                         metrics->ObserveLatency(rpc, SecondsSince(start));
                                         reactor->Finish(grpc::Status::OK);
                                       });
  return reactor;
}

MasterService::Reactor* MasterService::MountSegment(Context* context,
                                                    const v1::MountSegmentRequest* request,
                                                    v1::MountSegmentResponse* response) {
  return Run(context, Rpc::kMountSegment, 1, response,
             [&] { return executor_->MountSegment(*request, response); });
}

MasterService::Reactor* MasterService::UnmountSegment(Context* context,
                                                      const v1::UnmountSegmentRequest* request,
                                                      v1::UnmountSegmentResponse* response) {
  return Run(context, Rpc::kUnmountSegment, 1, response,
             [&] { return executor_->UnmountSegment(*request, response); });
}

MasterService::Reactor* MasterService::PutStart(Context* context,
                                                const v1::PutStartRequest* request,
                                                v1::PutStartResponse* response) {
  return Run(context, Rpc::kPutStart, 1, response,
             [&] { return executor_->PutStart(Rpc::kPutStart, *request, response); });
}

MasterService::Reactor* MasterService::PutEnd(Context* context, const v1::KeyRequest* request,
                                              v1::PutEndResponse* response) {
  return Run(context, Rpc::kPutEnd, 1, response,
             [&] { return executor_->PutEnd(Rpc::kPutEnd, *request, response); });
}

MasterService::Reactor* MasterService::PutRevoke(Context* context, const v1::KeyRequest* request,
                                                 v1::PutRevokeResponse* response) {
  return Run(context, Rpc::kPutRevoke, 1, response,
             [&] { return executor_->PutRevoke(Rpc::kPutRevoke, *request, response); });
}

MasterService::Reactor* MasterService::GetReplicaList(Context* context,
                                                      const v1::KeyRequest* request,
                                                      v1::GetReplicaListResponse* response) {
  return Run(context, Rpc::kGetReplicaList, 1, response,
             [&] { return executor_->GetReplicaList(Rpc::kGetReplicaList, *request, response); });
}

MasterService::Reactor* MasterService::ExistKey(Context* context, const v1::KeyRequest* request,
                                                v1::ExistKeyResponse* response) {
  return Run(context, Rpc::kExistKey, 1, response,
             [&] { return executor_->ExistKey(Rpc::kExistKey, *request, response); });
}

MasterService::Reactor* MasterService::Remove(Context* context, const v1::KeyRequest* request,
                                              v1::RemoveResponse* response) {
  return Run(context, Rpc::kRemove, 1, response,
             [&] { return executor_->Remove(Rpc::kRemove, *request, response); });
}

MasterService::Reactor* MasterService::RemoveAll(Context* context,
                                                 const v1::RemoveAllRequest* request,
                                                 v1::RemoveAllResponse* response) {
  return Run(context, Rpc::kRemoveAll, 1, response,
             [&] { return executor_->RemoveAll(*request, response); });
}

MasterService::Reactor* MasterService::Ping(Context* context, const v1::PingRequest* request,
                                            v1::PingResponse* response) {
  return Run(context, Rpc::kPing, 1, response, [&] { return executor_->Ping(*request, response); });
}

MasterService::Reactor* MasterService::BatchPutStart(Context* context,
                                                     const v1::BatchPutStartRequest* request,
                                                     v1::BatchPutStartResponse* response) {
  return Run(context, Rpc::kBatchPutStart, request->items_size(), response,
             [&] { return executor_->BatchPutStart(*request, response); });
}

MasterService::Reactor* MasterService::BatchPutEnd(Context* context,
                                                   const v1::BatchKeyRequest* request,
                                                   v1::BatchStatusResponse* response) {
  return Run(context, Rpc::kBatchPutEnd, request->keys_size(), response,
             [&] { return executor_->BatchPutEnd(*request, response); });
}

MasterService::Reactor* MasterService::BatchPutRevoke(Context* context,
                                                      const v1::BatchKeyRequest* request,
                                                      v1::BatchStatusResponse* response) {
  return Run(context, Rpc::kBatchPutRevoke, request->keys_size(), response,
             [&] { return executor_->BatchPutRevoke(*request, response); });
}

MasterService::Reactor* MasterService::BatchGetReplicaList(
    Context* context, const v1::BatchKeyRequest* request,
    v1::BatchGetReplicaListResponse* response) {
  return Run(context, Rpc::kBatchGetReplicaList, request->keys_size(), response,
             [&] { return executor_->BatchGetReplicaList(*request, response); });
}

MasterService::Reactor* MasterService::BatchExistKey(Context* context,
                                                     const v1::BatchKeyRequest* request,
                                                     v1::BatchExistKeyResponse* response) {
  return Run(context, Rpc::kBatchExistKey, request->keys_size(), response,
             [&] { return executor_->BatchExistKey(*request, response); });
}

MasterService::Reactor* MasterService::BatchRemove(Context* context,
                                                   const v1::BatchKeyRequest* request,
                                                   v1::BatchStatusResponse* response) {
  return Run(context, Rpc::kBatchRemove, request->keys_size(), response,
             [&] { return executor_->BatchRemove(*request, response); });
}

MasterService::Reactor* MasterService::GetStatus(Context* context,
                                                 const v1::GetStatusRequest* request,
                                                 v1::GetStatusResponse* response) {
  return Run(context, Rpc::kGetStatus, 1, response,
             [&] { return executor_->GetStatus(*request, response); });
}

MasterService::Reactor* MasterService::Handover(Context* context,
                                                const v1::HandoverRequest* request,
                                                v1::HandoverResponse* response) {
  Reactor* reactor = context->DefaultReactor();
  if (!handover_) {
    ToProto(Status(ErrorCode::kInvalidState,
                   "this node runs without etcd leadership: there is nothing to hand over"),
            response->mutable_status());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // The handover waits for a standby to catch up: not on a gRPC callback thread.
  std::thread([handover = handover_, reactor, request, response] {
    std::string new_leader;
    uint64_t last_seq = 0;
    Status status =
        handover(request->target_node_id(), request->timeout_ms(), &new_leader, &last_seq);
    response->set_new_leader_node_id(new_leader);
    response->set_last_seq(last_seq);
    ToProto(status, response->mutable_status());
    reactor->Finish(grpc::Status::OK);
  }).detach();
  return reactor;
}

MasterService::Reactor* MasterService::Snapshot(Context* context, const v1::SnapshotRequest*,
                                                v1::SnapshotResponse* response) {
  Reactor* reactor = context->DefaultReactor();
  if (!snapshot_) {
    ToProto(Status(ErrorCode::kInvalidState, "snapshots are not enabled on this node"),
            response->mutable_status());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // Taken on the durability thread; the reactor finishes from there.
  snapshot_(response, [reactor] { reactor->Finish(grpc::Status::OK); });
  return reactor;
}

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* MasterService::Stream(Context*) {
  return NewStreamReactor(executor_);
}

}  // namespace tandem::server
