// The metrics tandem-master exports (all named tandem_*), built on the generic registry:
// per-RPC series created up front so a request costs a few relaxed atomic increments, and the
// node/store gauges read from one status snapshot per scrape.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "oplog/log_buffer.h"
#include "server/metrics.h"
#include "server/node_status.h"

namespace tandem::server {

// Every RPC of tandem.v1.Master, plus each operation carried by the Stream RPC (counted
// per message, labelled "Stream.<Op>").
enum class Rpc : uint8_t {
  kMountSegment,
  kUnmountSegment,
  kPutStart,
  kPutEnd,
  kPutRevoke,
  kGetReplicaList,
  kExistKey,
  kRemove,
  kRemoveAll,
  kPing,
  kBatchPutStart,
  kBatchPutEnd,
  kBatchPutRevoke,
  kBatchGetReplicaList,
  kBatchExistKey,
  kBatchRemove,
  kGetStatus,
  kStream,
  kStreamPutStart,
  kStreamPutEnd,
  kStreamPutRevoke,
  kStreamGetReplicaList,
  kStreamExistKey,
  kStreamRemove,
};
inline constexpr int kRpcCount = static_cast<int>(Rpc::kStreamRemove) + 1;
std::string_view RpcName(Rpc rpc);
bool IsBatchRpc(Rpc rpc);

// tandem_rpc_requests_total{rpc}, tandem_rpc_keys_total{rpc} (batch RPCs),
// tandem_rpc_latency_seconds{rpc}, tandem_rpc_errors_total{rpc,code}. Thread-safe.
class RpcMetrics {
 public:
  explicit RpcMetrics(metrics::Registry* registry);

  // One request; for a batch RPC `keys` is its item count.
  void CountRequest(Rpc rpc, uint64_t keys = 1);
  // One failed item (a per-key error of a batch counts once per key).
  void CountError(Rpc rpc, ErrorCode code);
  void ObserveLatency(Rpc rpc, double seconds);
  // Requests counted so far, over every RPC.
  uint64_t TotalRequests() const;

 private:
  struct Series {
    metrics::Counter* requests = nullptr;
    metrics::Counter* keys = nullptr;  // batch RPCs only
    metrics::Histogram* latency = nullptr;
    // Created on the first error of each code, so a scrape lists only codes that happened.
    std::array<std::atomic<metrics::Counter*>, kErrorCodeCount> errors{};
  };

  metrics::Registry* const registry_;
  std::array<Series, kRpcCount> series_;
};

// Registers the node and store gauges (tandem_objects, tandem_bytes_used, tandem_applied_seq,
// tandem_oplog_buffer_*, tandem_up, tandem_node_info{node_id,role}, ...). `reporter` and
// `buffer` must outlive the registry.
void RegisterNodeMetrics(metrics::Registry* registry, const NodeStatusReporter* reporter,
                         const oplog::LogBuffer* buffer);

}  // namespace tandem::server
