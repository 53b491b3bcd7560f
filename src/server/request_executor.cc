#include "server/request_executor.h"

#include <string>

#include "server/proto_convert.h"

namespace tandem::server {
namespace {

// The request id of item `index` of a batch: "<batch id>#<index>"; empty without a batch id.
std::string ItemRequestId(const std::string& batch_id, int index) {
  if (batch_id.empty()) return {};
  std::string id;
  id.reserve(batch_id.size() + 8);
  id.append(batch_id).push_back('#');
  id.append(std::to_string(index));
  return id;
}

}  // namespace

RequestExecutor::RequestExecutor(const Deps& deps)
    : store_(deps.store),
      sequencer_(deps.sequencer),
      clock_(deps.clock),
      gate_(deps.write_gate),
      metrics_(deps.metrics),
      reporter_(deps.reporter) {}

Completion RequestExecutor::Report(Rpc rpc, Access access, const Status& status, v1::Status* out) {
  ToProto(status, out);
  if (!status.ok()) {
    metrics_->CountError(rpc, status.code());
    return Completion::kNow;
  }
  out->set_served_epoch(sequencer_->epoch());
  if (reporter_ != nullptr) out->set_served_by(reporter_->node_id());
  return access == Access::kWrite ? Completion::kAfterCommit : Completion::kNow;
}

// ---- Segments and clients ----

Completion RequestExecutor::MountSegment(const v1::MountSegmentRequest& request,
                                         v1::MountSegmentResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) {
    status = store_->MountSegment(FromProto(request.segment()), request.client_id(),
                                  clock_->NowMs(), request.request_id());
  }
  return Report(Rpc::kMountSegment, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::UnmountSegment(const v1::UnmountSegmentRequest& request,
                                           v1::UnmountSegmentResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) {
    status = store_->UnmountSegment(request.segment_id(), request.client_id(), clock_->NowMs(),
                                    request.request_id());
  }
  return Report(Rpc::kUnmountSegment, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::Ping(const v1::PingRequest& request, v1::PingResponse* response) {
  // A heartbeat only refreshes soft state (nothing is logged): a read for the gate.
  Status status = gate_->Admit(Access::kRead);
  if (status.ok()) status = store_->Ping(request.client_id(), clock_->NowMs());
  response->set_client_ttl_ms(store_->options().client_ttl_ms);
  return Report(Rpc::kPing, Access::kRead, status, response->mutable_status());
}

// ---- Single-key operations ----

Status RequestExecutor::DoPutStart(const v1::PutStartRequest& request, uint64_t now_ms,
                                   v1::PutStartResponse* response) {
  meta::PutStartArgs args;
  args.key = request.key();
  args.value_size = request.value_size();
  args.replica_num = request.replica_num();
  args.preferred_segment = request.preferred_segment();
  args.client_id = request.client_id();
  args.soft_pin = request.soft_pin();
  args.request_id = request.request_id();
  StatusOr<std::vector<meta::ReplicaView>> replicas = store_->PutStart(args, now_ms);
  if (!replicas.ok()) return replicas.status();
  for (const meta::ReplicaView& replica : replicas.value()) {
    ToProto(replica, response->add_replicas());
  }
  return Status::Ok();
}

Status RequestExecutor::DoGetReplicaList(std::string_view key, uint64_t now_ms,
                                         v1::GetReplicaListResponse* response) {
  StatusOr<meta::GetResult> result = store_->GetReplicaList(key, now_ms);
  if (!result.ok()) return result.status();
  for (const meta::ReplicaView& replica : result->replicas) {
    ToProto(replica, response->add_replicas());
  }
  response->set_lease_ttl_ms(result->lease_ttl_ms);
  return Status::Ok();
}

Completion RequestExecutor::PutStart(Rpc rpc, const v1::PutStartRequest& request,
                                     v1::PutStartResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) status = DoPutStart(request, clock_->NowMs(), response);
  return Report(rpc, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::PutEnd(Rpc rpc, const v1::KeyRequest& request,
                                   v1::PutEndResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) {
    status =
        store_->PutEnd(request.key(), request.client_id(), clock_->NowMs(), request.request_id());
  }
  return Report(rpc, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::PutRevoke(Rpc rpc, const v1::KeyRequest& request,
                                      v1::PutRevokeResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) {
    status = store_->PutRevoke(request.key(), request.client_id(), clock_->NowMs(),
                               request.request_id());
  }
  return Report(rpc, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::GetReplicaList(Rpc rpc, const v1::KeyRequest& request,
                                           v1::GetReplicaListResponse* response) {
  // Granting a read lease is soft state, never logged: a read.
  Status status = gate_->Admit(Access::kRead);
  if (status.ok()) status = DoGetReplicaList(request.key(), clock_->NowMs(), response);
  return Report(rpc, Access::kRead, status, response->mutable_status());
}

Completion RequestExecutor::ExistKey(Rpc rpc, const v1::KeyRequest& request,
                                     v1::ExistKeyResponse* response) {
  Status status = gate_->Admit(Access::kRead);
  if (status.ok()) response->set_exists(store_->ExistKey(request.key()));
  return Report(rpc, Access::kRead, status, response->mutable_status());
}

Completion RequestExecutor::Remove(Rpc rpc, const v1::KeyRequest& request,
                                   v1::RemoveResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (status.ok()) status = store_->Remove(request.key(), clock_->NowMs(), request.request_id());
  return Report(rpc, Access::kWrite, status, response->mutable_status());
}

Completion RequestExecutor::RemoveAll(const v1::RemoveAllRequest& request,
                                      v1::RemoveAllResponse* response) {
  Status status = gate_->Admit(Access::kWrite);
  if (!status.ok())
    return Report(Rpc::kRemoveAll, Access::kWrite, status, response->mutable_status());
  const meta::RemoveAllResult result = store_->RemoveAll(clock_->NowMs(), request.request_id());
  response->set_removed(result.removed);
  response->set_kept(result.kept);
  // Nothing removed means nothing was logged: no commit to wait for (a duplicate waits for the
  // commit of the original).
  const Access access = result.removed > 0 || result.duplicate ? Access::kWrite : Access::kRead;
  return Report(Rpc::kRemoveAll, access, status, response->mutable_status());
}

// ---- Batches ----

Completion RequestExecutor::BatchPutStart(const v1::BatchPutStartRequest& request,
                                          v1::BatchPutStartResponse* response) {
  const Status admitted = gate_->Admit(Access::kWrite);
  const uint64_t now_ms = clock_->NowMs();
  Completion completion = Completion::kNow;
  v1::PutStartRequest with_id;  // an item under its batch request id
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::PutStartRequest* item = &request.items(i);
    if (!request.request_id().empty()) {
      with_id = *item;
      with_id.set_request_id(ItemRequestId(request.request_id(), i));
      item = &with_id;
    }
    v1::PutStartResponse* out = response->add_items();
    const Status status = admitted.ok() ? DoPutStart(*item, now_ms, out) : admitted;
    if (Report(Rpc::kBatchPutStart, Access::kWrite, status, out->mutable_status()) ==
        Completion::kAfterCommit) {
      completion = Completion::kAfterCommit;
    }
  }
  return completion;
}

template <typename KeyWrite>
Completion RequestExecutor::RunStatusBatch(Rpc rpc, const v1::BatchKeyRequest& request,
                                           v1::BatchStatusResponse* response, KeyWrite write) {
  const Status admitted = gate_->Admit(Access::kWrite);
  const uint64_t now_ms = clock_->NowMs();
  Completion completion = Completion::kNow;
  for (int i = 0; i < request.keys_size(); ++i) {
    const Status status =
        admitted.ok() ? write(request.keys(i), now_ms, ItemRequestId(request.request_id(), i))
                      : admitted;
    if (Report(rpc, Access::kWrite, status, response->add_items()) == Completion::kAfterCommit) {
      completion = Completion::kAfterCommit;
    }
  }
  return completion;
}

Completion RequestExecutor::BatchPutEnd(const v1::BatchKeyRequest& request,
                                        v1::BatchStatusResponse* response) {
  return RunStatusBatch(Rpc::kBatchPutEnd, request, response,
                        [&](std::string_view key, uint64_t now_ms, const std::string& id) {
                          return store_->PutEnd(key, request.client_id(), now_ms, id);
                        });
}

Completion RequestExecutor::BatchPutRevoke(const v1::BatchKeyRequest& request,
                                           v1::BatchStatusResponse* response) {
  return RunStatusBatch(Rpc::kBatchPutRevoke, request, response,
                        [&](std::string_view key, uint64_t now_ms, const std::string& id) {
                          return store_->PutRevoke(key, request.client_id(), now_ms, id);
                        });
}

Completion RequestExecutor::BatchRemove(const v1::BatchKeyRequest& request,
                                        v1::BatchStatusResponse* response) {
  return RunStatusBatch(Rpc::kBatchRemove, request, response,
                        [&](std::string_view key, uint64_t now_ms, const std::string& id) {
                          return store_->Remove(key, now_ms, id);
                        });
}

Completion RequestExecutor::BatchGetReplicaList(const v1::BatchKeyRequest& request,
                                                v1::BatchGetReplicaListResponse* response) {
  const Status admitted = gate_->Admit(Access::kRead);
  const uint64_t now_ms = clock_->NowMs();
  for (const std::string& key : request.keys()) {
    v1::GetReplicaListResponse* out = response->add_items();
    const Status status = admitted.ok() ? DoGetReplicaList(key, now_ms, out) : admitted;
    Report(Rpc::kBatchGetReplicaList, Access::kRead, status, out->mutable_status());
  }
  return Completion::kNow;
}

Completion RequestExecutor::BatchExistKey(const v1::BatchKeyRequest& request,
                                          v1::BatchExistKeyResponse* response) {
  const Status admitted = gate_->Admit(Access::kRead);
  for (const std::string& key : request.keys()) {
    v1::ExistKeyResponse* out = response->add_items();
    if (admitted.ok()) out->set_exists(store_->ExistKey(key));
    Report(Rpc::kBatchExistKey, Access::kRead, admitted, out->mutable_status());
  }
  return Completion::kNow;
}

// ---- Introspection ----

namespace {

void FillReplication(const ReplicationStatus& replication, v1::GetStatusResponse* response) {
  response->set_replication_mode(replication.mode);
  for (const replication::StandbyStatus& s : replication.standbys) {
    v1::StandbyInfo* out = response->add_standbys();
    out->set_standby_id(s.standby_id);
    out->set_address(s.address);
    out->set_state(replication::StandbyStateName(s.state));
    out->set_acked_seq(s.acked_seq);
    out->set_lag_entries(s.lag_entries);
    out->set_lag_ms(s.lag_ms);
    out->set_full_syncs(s.full_syncs);
  }
  if (!replication.is_standby) return;
  const replication::FollowerStatus& f = replication.follower;
  v1::FollowerInfo* out = response->mutable_follower();
  out->set_state(replication::FollowerStateName(f.state));
  out->set_primary_address(f.primary_address);
  out->set_lag_entries(f.lag_entries);
  out->set_lag_ms(f.lag_ms);
  out->set_last_error(f.last_error);
  out->set_refused_entries(f.refused_entries);
  out->set_full_syncs(f.full_syncs);
  out->set_reconnects(f.reconnects);
}

}  // namespace

Completion RequestExecutor::GetStatus(const v1::GetStatusRequest&,
                                      v1::GetStatusResponse* response) {
  const NodeStatus status = reporter_->Collect({.digest = true, .segments = true});
  response->set_node_id(status.node_id);
  response->set_role(status.role);
  response->set_epoch(status.epoch);
  response->set_applied_seq(status.stats.applied_seq);
  response->set_object_count(status.stats.object_count);
  response->set_segment_count(status.stats.segment_count);
  response->set_bytes_used(status.stats.bytes_used);
  response->set_bytes_total(status.stats.bytes_total);
  response->set_state_digest(status.state_digest);
  for (const meta::SegmentInfo& segment : status.segments) {
    ToProto(segment.spec, response->add_segments());
  }
  FillReplication(status.replication, response);
  response->set_recovering(status.recovering);
  const DurabilityStatus& d = status.durability;
  v1::DurabilityInfo* durability = response->mutable_durability();
  durability->set_wal_fsync(d.wal_fsync);
  durability->set_recovered_seq(d.recovered_seq);
  durability->set_recovered_epoch(d.recovered_epoch);
  durability->set_recovered_snapshot(d.recovered_snapshot);
  durability->set_recovered_wal_records(d.recovered_wal_records);
  durability->set_skipped_snapshots(d.skipped_snapshots);
  durability->set_recovery_seconds(d.recovery_seconds);
  durability->set_last_snapshot_id(d.last_snapshot_id);
  durability->set_last_snapshot_seq(d.last_snapshot_seq);
  durability->set_last_snapshot_bytes(d.last_snapshot_bytes);
  durability->set_last_snapshot_created_ms(d.last_snapshot_created_ms);
  durability->set_snapshots_taken(d.snapshots_taken);
  durability->set_snapshots_failed(d.snapshots_failed);
  durability->set_wal_durable_seq(d.wal_durable_seq);
  durability->set_wal_bytes(d.wal_bytes);
  durability->set_wal_error(d.wal_error);
  return Report(Rpc::kGetStatus, Access::kRead, Status::Ok(), response->mutable_status());
}

}  // namespace tandem::server
