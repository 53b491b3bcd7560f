#include "server/master_server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "server/data_dir_lock.h"
#include "server/http_server.h"
#include "server/maintenance.h"
#include "server/master_service.h"

namespace tandem::server {
namespace {

// The first term of a standalone master; leadership will start later epochs.
constexpr uint64_t kStandaloneEpoch = 1;

std::string JoinHostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Clock* ChooseClock(Clock* given, std::unique_ptr<Clock>* owned) {
  if (given != nullptr) return given;
  *owned = std::make_unique<SystemClock>();
  return owned->get();
}

}  // namespace

MasterServer::MasterServer(MasterConfig config, Clock* clock)
    : config_(std::move(config)),
      clock_(ChooseClock(clock, &owned_clock_)),
      log_buffer_(ToLogBufferOptions(config_)),
      sequencer_(&log_buffer_, kStandaloneEpoch, /*next_seq=*/1),
      store_(ToMetaOptions(config_), &sequencer_),
      rpc_metrics_(&registry_),
      reporter_(config_.node_id, &store_, &sequencer_, clock_),
      replication_(std::make_unique<ReplicationGate>(config_, &store_, &log_buffer_, &sequencer_)),
      executor_(RequestExecutor::Deps{.store = &store_,
                                      .sequencer = &sequencer_,
                                      .clock = clock_,
                                      .write_gate = replication_.get(),
                                      .metrics = &rpc_metrics_,
                                      .reporter = &reporter_}),
      service_(std::make_unique<MasterService>(&executor_)),
      maintenance_(std::make_unique<Maintenance>(
          &store_, clock_, std::chrono::milliseconds(config_.maintenance_interval_ms))) {
  reporter_.SetReplication(replication_.get());
  reporter_.set_role(config_.role == "standby"   ? Role::kFollower
                     : config_.role == "primary" ? Role::kLeader
                                                 : Role::kStandalone);
  RegisterNodeMetrics(&registry_, &reporter_, &log_buffer_);
  http_ = std::make_unique<HttpServer>(HttpHandlers{
      .metrics_text = [this] { return registry_.Render(); },
      .ready = [this] { return reporter_.ready(); },
      .status_json = [this] { return NodeStatusToJson(reporter_.Collect({.digest = true})); },
  });
}

MasterServer::~MasterServer() { Shutdown(); }

int MasterServer::http_port() const { return http_->port(); }

Status MasterServer::Start() {
  StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(config_.data_dir);
  if (!lock.ok()) return lock.status();
  data_dir_lock_ = std::move(lock).value();
  Status status = StartGrpc();
  if (status.ok()) status = StartHttp();
  if (!status.ok()) {
    if (grpc_server_ != nullptr) grpc_server_->Shutdown();
    grpc_server_.reset();
    data_dir_lock_.reset();
    return status;
  }
  reporter_.SetEndpoints(listen_address_, http_address_);
  replication_->Start(listen_address_);
  // Maintenance decides effects (reaping, expiry, eviction): only the node that writes does it.
  if (!replication_->is_standby()) maintenance_->Start();
  running_ = true;
  return Status::Ok();
}

Status MasterServer::StartGrpc() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &grpc_port_);
  // gRPC sets SO_REUSEPORT by default, which would let two masters share one port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service_.get());
  builder.RegisterService(replication_->service());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    return Status(ErrorCode::kUnavailable, "cannot listen on " + config_.listen +
                                               " for gRPC (in use, or not a local address)");
  }
  std::string host;
  int port = 0;
  SplitHostPort(config_.listen, &host, &port);
  listen_address_ = JoinHostPort(host, grpc_port_);
  return Status::Ok();
}

Status MasterServer::StartHttp() {
  Status status = http_->Start(config_.http);
  if (!status.ok()) return status;
  std::string host;
  int port = 0;
  SplitHostPort(config_.http, &host, &port);
  http_address_ = JoinHostPort(host, http_->port());
  return Status::Ok();
}

void MasterServer::Shutdown(std::chrono::milliseconds grace) {
  if (!running_) return;
  running_ = false;
  replication_->Shutdown();  // completes held writes and ends replication streams first
  grpc_server_->Shutdown(std::chrono::system_clock::now() + grace);
  maintenance_->Stop();
  http_->Stop();
  data_dir_lock_.reset();
  spdlog::debug("node {} stopped (applied_seq={})", config_.node_id, store_.applied_seq());
}

}  // namespace tandem::server
