// NodeVerification: verification (issue 6, DESIGN.md §6) wired into a tandem-master node.
//
// One thread, every --verify-interval-s (0: none): on a standby it runs a sampled pass of the
// StandbyVerifier against the primary it follows; on a leader it appends a DIGEST entry (every
// shard's digest at that seq, compared by each standby as it applies it). The Verification gRPC
// service (tandemctl verify) runs a whole pass on demand; metrics and the /status block read the
// verifier's counters. The test-only fault hook (--enable-test-faults) also lives here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "meta/meta_store.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/replication_gate.h"
#include "verification/verifier.h"

namespace grpc {
class Service;
}

namespace tandem::server {

class NodeVerification {
 public:
  // Borrowed pointers must outlive this.
  NodeVerification(const MasterConfig& config, meta::MetaStore* store, ReplicationGate* gate);
  ~NodeVerification();  // Stop()

  grpc::Service* service();
  void RegisterMetrics(metrics::Registry* registry);
  void Start();
  void Stop();

  // The /status "verification" block (compact JSON object).
  std::string StatusJson() const;
  // TEST ONLY (--enable-test-faults): injects divergence into this node's store without a log
  // entry. kind: change_replica | drop_key | add_key. Returns "" or an error line.
  std::string InjectFault(const std::string& kind, const std::string& key);

 private:
  void Loop();

  const MasterConfig config_;
  meta::MetaStore* const store_;
  ReplicationGate* const gate_;
  verification::StandbyVerifier verifier_;
  verification::VerificationService service_;
  std::atomic<uint64_t> digests_appended_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tandem::server
