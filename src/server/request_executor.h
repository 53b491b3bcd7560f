// RequestExecutor: runs one decoded client request against the MetaStore and fills its
// response. Shared by the unary handlers and the Stream reactor, and free of gRPC (messages
// only) so the transport stays thin and this stays cheap to compile. Thread-safe.
//
// Each request is first admitted by the WriteGate; a refused request never touches the store.
// Every domain error goes into the response's Status (and tandem_rpc_errors_total); the
// transport status stays OK.
#pragma once

#include <cstdint>

#include "meta/meta_store.h"
#include "oplog/sequencer.h"
#include "server/clock.h"
#include "server/node_status.h"
#include "server/server_metrics.h"
#include "server/write_gate.h"
#include "tandem/v1/master.pb.h"

namespace tandem::server {

// When a response may be sent. kAfterCommit: the request changed the store; hold the response
// until WriteGate::AwaitCommit(CommitPosition(), ...) reports.
enum class Completion : uint8_t { kNow, kAfterCommit };

class RequestExecutor {
 public:
  // Everything is borrowed and must outlive the executor.
  struct Deps {
    meta::MetaStore* store = nullptr;
    const oplog::Sequencer* sequencer = nullptr;
    Clock* clock = nullptr;
    WriteGate* write_gate = nullptr;
    RpcMetrics* metrics = nullptr;
    const NodeStatusReporter* reporter = nullptr;
  };
  explicit RequestExecutor(const Deps& deps);

  // The log position a write that just returned must wait for (see write_gate.h).
  uint64_t CommitPosition() const { return sequencer_->last_seq(); }
  WriteGate* write_gate() const { return gate_; }
  RpcMetrics* metrics() const { return metrics_; }

  Completion MountSegment(const v1::MountSegmentRequest& request,
                          v1::MountSegmentResponse* response);
  Completion UnmountSegment(const v1::UnmountSegmentRequest& request,
                            v1::UnmountSegmentResponse* response);
  // Single-key operations take the Rpc they count under (unary, or Stream.<Op>).
  Completion PutStart(Rpc rpc, const v1::PutStartRequest& request, v1::PutStartResponse* response);
  Completion PutEnd(Rpc rpc, const v1::KeyRequest& request, v1::PutEndResponse* response);
  Completion PutRevoke(Rpc rpc, const v1::KeyRequest& request, v1::PutRevokeResponse* response);
  Completion GetReplicaList(Rpc rpc, const v1::KeyRequest& request,
                            v1::GetReplicaListResponse* response);
  Completion ExistKey(Rpc rpc, const v1::KeyRequest& request, v1::ExistKeyResponse* response);
  Completion Remove(Rpc rpc, const v1::KeyRequest& request, v1::RemoveResponse* response);
  Completion RemoveAll(const v1::RemoveAllRequest& request, v1::RemoveAllResponse* response);
  Completion Ping(const v1::PingRequest& request, v1::PingResponse* response);

  // Batches: admitted once, then one result per item in request order.
  Completion BatchPutStart(const v1::BatchPutStartRequest& request,
                           v1::BatchPutStartResponse* response);
  Completion BatchPutEnd(const v1::BatchKeyRequest& request, v1::BatchStatusResponse* response);
  Completion BatchPutRevoke(const v1::BatchKeyRequest& request, v1::BatchStatusResponse* response);
  Completion BatchGetReplicaList(const v1::BatchKeyRequest& request,
                                 v1::BatchGetReplicaListResponse* response);
  Completion BatchExistKey(const v1::BatchKeyRequest& request, v1::BatchExistKeyResponse* response);
  Completion BatchRemove(const v1::BatchKeyRequest& request, v1::BatchStatusResponse* response);

  Completion GetStatus(const v1::GetStatusRequest& request, v1::GetStatusResponse* response);

 private:
  // Writes the status into `out`, counts an error, and says whether to wait for the commit.
  Completion Report(Rpc rpc, Access access, const Status& status, v1::Status* out);
  Status DoPutStart(const v1::PutStartRequest& request, uint64_t now_ms,
                    v1::PutStartResponse* response);
  Status DoGetReplicaList(std::string_view key, uint64_t now_ms,
                          v1::GetReplicaListResponse* response);
  // A batch of key writes that answer a bare Status per key.
  template <typename KeyWrite>
  Completion RunStatusBatch(Rpc rpc, const v1::BatchKeyRequest& request,
                            v1::BatchStatusResponse* response, KeyWrite write);

  meta::MetaStore* const store_;
  const oplog::Sequencer* const sequencer_;
  Clock* const clock_;
  WriteGate* const gate_;
  RpcMetrics* const metrics_;
  const NodeStatusReporter* const reporter_;
};

}  // namespace tandem::server
