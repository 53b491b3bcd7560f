#include "server/server_metrics.h"

#include <memory>
#include <string>

namespace tandem::server {
namespace {

constexpr std::array<std::string_view, kRpcCount> kRpcNames = {
    "MountSegment",     "UnmountSegment",
    "PutStart",         "PutEnd",
    "PutRevoke",        "GetReplicaList",
    "ExistKey",         "Remove",
    "RemoveAll",        "Ping",
    "BatchPutStart",    "BatchPutEnd",
    "BatchPutRevoke",   "BatchGetReplicaList",
    "BatchExistKey",    "BatchRemove",
    "GetStatus",        "Stream",
    "Stream.PutStart",  "Stream.PutEnd",
    "Stream.PutRevoke", "Stream.GetReplicaList",
    "Stream.ExistKey",  "Stream.Remove",
};

constexpr const char* kErrorsHelp = "Requests (or batch items) that failed, by error code";

}  // namespace

std::string_view RpcName(Rpc rpc) { return kRpcNames[static_cast<size_t>(rpc)]; }

bool IsBatchRpc(Rpc rpc) { return rpc >= Rpc::kBatchPutStart && rpc <= Rpc::kBatchRemove; }

RpcMetrics::RpcMetrics(metrics::Registry* registry) : registry_(registry) {
  for (int i = 0; i < kRpcCount; ++i) {
    const Rpc rpc = static_cast<Rpc>(i);
    const metrics::Labels labels = {{"rpc", std::string(RpcName(rpc))}};
    Series& series = series_[i];
    series.requests = registry->GetCounter("tandem_rpc_requests_total",
                                           "Requests received (Stream: per message)", labels);
    if (IsBatchRpc(rpc)) {
      series.keys =
          registry->GetCounter("tandem_rpc_keys_total", "Keys carried by batch requests", labels);
    }
    if (rpc != Rpc::kStream) {  // a stream lives for the connection: no per-call latency
      series.latency = registry->GetHistogram("tandem_rpc_latency_seconds",
                                              "Server-side time from request to response",
                                              metrics::LatencyBucketsSeconds(), labels);
    }
  }
}

void RpcMetrics::CountRequest(Rpc rpc, uint64_t keys) {
  Series& series = series_[static_cast<size_t>(rpc)];
  series.requests->Inc();
  if (series.keys != nullptr) series.keys->Inc(keys);
}

uint64_t RpcMetrics::TotalRequests() const {
  uint64_t total = 0;
  for (const Series& series : series_) total += series.requests->Value();
  return total;
}

void RpcMetrics::CountError(Rpc rpc, ErrorCode code) {
  std::atomic<metrics::Counter*>& slot =
      series_[static_cast<size_t>(rpc)].errors[static_cast<size_t>(code)];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Racing first errors get the same series back from the registry.
    counter = registry_->GetCounter(
        "tandem_rpc_errors_total", kErrorsHelp,
        {{"rpc", std::string(RpcName(rpc))}, {"code", std::string(ErrorCodeName(code))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Inc();
}

void RpcMetrics::ObserveLatency(Rpc rpc, double seconds) {
  metrics::Histogram* latency = series_[static_cast<size_t>(rpc)].latency;
  if (latency != nullptr) latency->Observe(seconds);
}

void RegisterNodeMetrics(metrics::Registry* registry, const NodeStatusReporter* reporter,
                         const oplog::LogBuffer* buffer) {
  // One snapshot per scrape, shared by the callbacks below (they run right after the collector,
  // under the registry's mutex).
  auto snapshot = std::make_shared<NodeStatus>();
  registry->AddCollector([snapshot, reporter] { *snapshot = reporter->Collect({}); });
  using metrics::MetricType;
  auto add = [&](const char* name, const char* help, MetricType type, auto field) {
    registry->AddCallback(name, help, type,
                          [snapshot, field] { return static_cast<double>(field(*snapshot)); });
  };
  add("tandem_objects", "Objects held (any state)", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.object_count; });
  add("tandem_objects_processing", "Objects whose put has not ended", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.processing_count; });
  add("tandem_segments", "Mounted segments", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.segment_count; });
  add("tandem_bytes_used", "Allocated bytes over all segments", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.bytes_used; });
  add("tandem_bytes_total", "Capacity of all segments", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.bytes_total; });
  add("tandem_evictions_total", "Eviction rounds", MetricType::kCounter,
      [](const NodeStatus& s) { return s.stats.evictions; });
  add("tandem_evicted_objects_total", "Objects evicted", MetricType::kCounter,
      [](const NodeStatus& s) { return s.stats.evicted_objects; });
  add("tandem_reaped_puts_total", "PROCESSING puts discarded by --put-timeout-ms",
      MetricType::kCounter, [](const NodeStatus& s) { return s.stats.reaped_puts; });
  add("tandem_expired_clients_total", "Clients expired by --client-ttl-ms", MetricType::kCounter,
      [](const NodeStatus& s) { return s.stats.expired_clients; });
  add("tandem_applied_seq", "Highest OpLog sequence id applied", MetricType::kGauge,
      [](const NodeStatus& s) { return s.stats.applied_seq; });
  add("tandem_epoch", "Leadership epoch of this node's log", MetricType::kGauge,
      [](const NodeStatus& s) { return s.epoch; });
  registry->AddCallback("tandem_oplog_buffer_entries", "Entries in the in-memory OpLog window",
                        MetricType::kGauge,
                        [buffer] { return static_cast<double>(buffer->size_entries()); });
  registry->AddCallback("tandem_oplog_buffer_bytes", "Bytes in the in-memory OpLog window",
                        MetricType::kGauge,
                        [buffer] { return static_cast<double>(buffer->size_bytes()); });
  registry->AddCallback("tandem_oplog_buffer_first_seq",
                        "Oldest sequence id in the in-memory OpLog window (0: empty)",
                        MetricType::kGauge,
                        [buffer] { return static_cast<double>(buffer->first_seq()); });
  add("tandem_standby_full_syncs_total", "Full syncs this primary started for its standbys",
      MetricType::kCounter, [](const NodeStatus& s) {
        uint64_t total = 0;
        for (const auto& standby : s.replication.standbys) total += standby.full_syncs;
        return total;
      });
  add("tandem_standby_full_syncs_from_snapshot_total",
      "Full syncs this primary streamed from a stored snapshot instead of a live image",
      MetricType::kCounter, [](const NodeStatus& s) {
        uint64_t total = 0;
        for (const auto& standby : s.replication.standbys)
          total += standby.full_syncs_from_snapshot;
        return total;
      });
  registry->AddCallback("tandem_up", "1 while the process serves", MetricType::kGauge,
                        [] { return 1.0; });
  // The role label is fixed at registration; a role change will re-register this series.
  registry
      ->GetGauge(
          "tandem_node_info", "Identity of this node (value 1)",
          {{"node_id", reporter->node_id()}, {"role", std::string(RoleName(reporter->role()))}})
      ->Set(1);
}

}  // namespace tandem::server
