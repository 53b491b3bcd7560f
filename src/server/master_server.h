// MasterServer: one Tandem master node (standalone, primary or standby by --role). Owns the state
// machine, its log and every endpoint, and wires them: Start() brings them up in order (data-dir
// lock, gRPC, HTTP, maintenance) and Shutdown() takes them down in reverse. Start and Shutdown are
// called from one thread; everything they start is thread-safe. gRPC stays out of this header.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "meta/meta_store.h"
#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/durability.h"
#include "server/metrics.h"
#include "server/node_status.h"
#include "server/replication_gate.h"
#include "server/request_executor.h"
#include "server/server_metrics.h"
#include "server/write_gate.h"

namespace grpc {
class Server;
}

namespace tandem::node {
class NodeController;
}

namespace tandem::server {

class DataDirLock;
class HttpServer;
class Maintenance;
class MasterService;
class NodeVerification;
class ServerRuntime;

class MasterServer {
 public:
  // `clock` may be null (system clock); when given it is borrowed and must outlive this.
  explicit MasterServer(MasterConfig config, Clock* clock = nullptr);
  ~MasterServer();  // shuts down
  MasterServer(const MasterServer&) = delete;
  MasterServer& operator=(const MasterServer&) = delete;

  // INVALID_STATE when the data dir is locked by another master, UNAVAILABLE when an address
  // cannot be bound; the message says which. On error nothing is left running.
  Status Start();
  // Stops accepting, gives in-flight RPCs up to `grace`, cancels the rest, then stops HTTP and
  // maintenance and releases the data dir. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // Bound addresses (a requested port 0 is resolved); valid after Start.
  const std::string& listen_address() const { return listen_address_; }
  const std::string& http_address() const { return http_address_; }
  int grpc_port() const { return grpc_port_; }
  int http_port() const;

  const MasterConfig& config() const { return config_; }
  meta::MetaStore& store() { return store_; }
  metrics::Registry& registry() { return registry_; }
  Durability& durability() { return *durability_; }

 private:
  Status StartGrpc();
  Status StartHttp();
  // Cold start (snapshot + WAL) into the empty store; positions the sequencer after it.
  Status RecoverDurableState();
  Status StartLeadership();
  void RegisterLeadershipMetrics(node::NodeController* controller);

  const MasterConfig config_;
  std::unique_ptr<Clock> owned_clock_;
  Clock* const clock_;
  std::unique_ptr<DataDirLock> data_dir_lock_;

  oplog::LogBuffer log_buffer_;
  oplog::Sequencer sequencer_;
  meta::MetaStore store_;

  metrics::Registry registry_;
  RpcMetrics rpc_metrics_;
  NodeStatusReporter reporter_;
  std::unique_ptr<ReplicationGate> replication_;  // the WriteGate of the client path
  // Snapshots + WAL; its gate() wraps replication_ (and waits for the WAL fsync in always mode).
  std::unique_ptr<Durability> durability_;
  RequestExecutor executor_;

  // Declared before the gRPC server so the server is destroyed first.
  std::unique_ptr<MasterService> service_;
  std::unique_ptr<NodeVerification> verification_;  // issue 6
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<Maintenance> maintenance_;
  // etcd leadership only: what leading/following means here, and who decides it.
  std::unique_ptr<ServerRuntime> runtime_;
  std::unique_ptr<node::NodeController> controller_;

  std::string listen_address_;
  std::string http_address_;
  int grpc_port_ = 0;
  bool running_ = false;
};

}  // namespace tandem::server
