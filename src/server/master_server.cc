#include "server/master_server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "node/node_controller.h"
#include "server/data_dir_lock.h"
#include "server/http_server.h"
#include "server/maintenance.h"
#include "server/master_service.h"
#include "server/node_verification.h"
#include "server/proto_convert.h"
#include "server/server_runtime.h"

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
      durability_(std::make_unique<Durability>(
          config_,
          Durability::Deps{
              .store = &store_,
              .log = &log_buffer_,
              .inner_gate = replication_.get(),
              .clock = clock_,
              .current_epoch =
                  [this] {
                    return std::max({sequencer_.epoch(), store_.applied_epoch(),
                                     replication_->Collect().follower.primary_epoch});
                  },
              .min_needed_seq = [this] { return replication_->MinNeededSeq(); },
              .activity = [this] { return rpc_metrics_.TotalRequests() + store_.applied_seq(); }})),
      executor_(RequestExecutor::Deps{.store = &store_,
                                      .sequencer = &sequencer_,
                                      .clock = clock_,
                                      .write_gate = durability_->gate(),
                                      .metrics = &rpc_metrics_,
                                      .reporter = &reporter_}),
      service_(std::make_unique<MasterService>(&executor_)),
      verification_(std::make_unique<NodeVerification>(config_, &store_, replication_.get())),
      maintenance_(std::make_unique<Maintenance>(
          &store_, clock_, std::chrono::milliseconds(config_.maintenance_interval_ms))) {
  reporter_.SetReplication(replication_.get());
  // A standby out of the window full-syncs from this node's newest snapshot plus the log.
  replication_->SetImageSource(durability_->image_source());
  reporter_.set_role(config_.role == "standby"   ? Role::kFollower
                     : config_.role == "primary" ? Role::kLeader
                                                 : Role::kStandalone);
  RegisterNodeMetrics(&registry_, &reporter_, &log_buffer_);
  reporter_.SetDurability([durability = durability_.get()] { return durability->GetStatus(); });
  durability_->RegisterMetrics(&registry_);
  service_->SetSnapshot([durability = durability_.get()](v1::SnapshotResponse* response,
                                                         std::function<void()> finish) {
    durability->RequestSnapshot([response, finish](StatusOr<SnapshotResult> result) {
      ToProto(result.status(), response->mutable_status());
      if (result.ok()) {
        response->set_snapshot_id(result->id);
        response->set_epoch(result->epoch);
        response->set_seq(result->seq);
        response->set_object_count(result->objects);
        response->set_bytes(result->bytes);
        response->set_seconds(result->seconds);
      }
      finish();
    });
  });
  http_ = std::make_unique<HttpServer>(HttpHandlers{
      .metrics_text = [this] { return registry_.Render(); },
      .ready = [this] { return reporter_.ready(); },
      .status_json =
          [this] {
            std::string json = NodeStatusToJson(reporter_.Collect({.digest = true}));
            // The verification block, spliced into the compact object.
            if (!json.empty() && json.back() == '}') {
              json.insert(json.size() - 1, std::string(json.size() > 2 ? "," : "") +
                                               "\"verification\":" + verification_->StatusJson());
            }
            return json;
          },
      .test_fault =
          !config_.enable_test_faults
              ? std::function<std::string(const std::string&, const std::string&)>()
              : [this](const std::string& kind,
                       const std::string& key) { return verification_->InjectFault(kind, key); },
  });
  verification_->RegisterMetrics(&registry_);
}

MasterServer::~MasterServer() { Shutdown(); }

int MasterServer::http_port() const { return http_->port(); }

Status MasterServer::Start() {
  StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(config_.data_dir);
  if (!lock.ok()) return lock.status();
  data_dir_lock_ = std::move(lock).value();
  // HTTP first, so /status and /readyz show the node RECOVERING; gRPC only after recovery.
  Status status = StartHttp();
  if (status.ok()) status = RecoverDurableState();
  if (status.ok()) status = StartGrpc();
  if (!status.ok()) {
    if (grpc_server_ != nullptr) grpc_server_->Shutdown();
    grpc_server_.reset();
    http_->Stop();
    durability_->Stop();
    data_dir_lock_.reset();
    return status;
  }
  reporter_.SetEndpoints(listen_address_, http_address_);
  replication_->Start(listen_address_);
  verification_->Start();
  durability_->Start();
  if (config_.etcd_leadership()) {
    status = StartLeadership();
    if (!status.ok()) {
      replication_->Shutdown();
      grpc_server_->Shutdown(std::chrono::system_clock::now());
      grpc_server_.reset();
      http_->Stop();
      data_dir_lock_.reset();
      return status;
    }
  } else if (!replication_->is_standby()) {
    // Maintenance decides effects (reaping, expiry, eviction): only the node that writes does it.
    maintenance_->Start();
  }
  running_ = true;
  return Status::Ok();
}

void MasterServer::RegisterLeadershipMetrics(node::NodeController* controller) {
  using metrics::MetricType;
  // One series per state, 1 for the current one (the usual Prometheus "state set").
  for (node::NodeState state :
       {node::NodeState::kInitializing, node::NodeState::kFollower, node::NodeState::kCandidate,
        node::NodeState::kLeader, node::NodeState::kRecovering, node::NodeState::kError}) {
    registry_.AddCallback(
        "tandem_node_state", "Node state machine (DESIGN 4): 1 for the current state",
        MetricType::kGauge,
        [controller, state] { return controller->Leadership().state.state == state ? 1.0 : 0.0; },
        {{"state", std::string(node::NodeStateName(state))}});
  }
  auto add = [&](const char* name, const char* help, MetricType type, auto field) {
    registry_.AddCallback(name, help, type, [controller, field] {
      return static_cast<double>(field(controller->Leadership()));
    });
  };
  add("tandem_node_transitions_total", "Node state transitions", MetricType::kCounter,
      [](const node::LeadershipStatus& s) { return s.state.transitions; });
  add("tandem_leader_epoch", "Epoch of the leader this node knows (0: none)", MetricType::kGauge,
      [](const node::LeadershipStatus& s) { return s.leader_epoch; });
  add("tandem_lease_valid", "1 while this node's etcd lease is provably valid", MetricType::kGauge,
      [](const node::LeadershipStatus& s) { return s.lease_valid ? 1 : 0; });
  add("tandem_elections_won_total", "Elections this node won", MetricType::kCounter,
      [](const node::LeadershipStatus& s) { return s.elections_won; });
  add("tandem_step_downs_total", "Times this node stopped leading", MetricType::kCounter,
      [](const node::LeadershipStatus& s) { return s.step_downs; });
  add("tandem_leases_lost_total", "etcd leases this node lost (expired or unconfirmed)",
      MetricType::kCounter, [](const node::LeadershipStatus& s) { return s.leases_lost; });
}

Status MasterServer::StartLeadership() {
  runtime_ = std::make_unique<ServerRuntime>(
      replication_.get(), &store_, &sequencer_, maintenance_.get(), &reporter_,
      [durability = durability_.get()] { return durability->GetStatus().wal_error; });
  node::NodeControllerOptions options;
  options.cluster_id = config_.cluster_id;
  options.node_id = config_.node_id;
  options.etcd_endpoints = config_.etcd_endpoints;
  options.lease_ttl_ms = static_cast<uint32_t>(config_.lease_ttl_ms);
  options.ranking.max_promotion_lag_ms = config_.max_promotion_lag_ms;
  options.handover_timeout_ms = static_cast<uint32_t>(config_.handover_timeout_ms);
  options.client_address = listen_address_;
  controller_ = std::make_unique<node::NodeController>(options, runtime_.get());
  Status status = controller_->Start();
  if (!status.ok()) {
    controller_.reset();
    return status;
  }
  node::NodeController* controller = controller_.get();
  reporter_.SetLeadership([controller] { return controller->Leadership(); });
  RegisterLeadershipMetrics(controller);
  service_->SetHandover([controller](const std::string& target, uint32_t timeout_ms,
                                     std::string* new_leader, uint64_t* last_seq) {
    StatusOr<node::HandoverResult> result = controller->Handover(target, timeout_ms);
    if (!result.ok()) return result.status();
    *new_leader = result->new_leader;
    *last_seq = result->last_seq;
    return Status::Ok();
  });
  return Status::Ok();
}

Status MasterServer::RecoverDurableState() {
  reporter_.set_recovering(true);
  Status status = durability_->Recover();
  reporter_.set_recovering(false);
  if (!status.ok()) return status;
  // The log continues where the recovered state ends, never in an older epoch. The sequencer
  // stays closed on a standby. The EpochHistory needs nothing here: a flag primary's starts at
  // (1, 1) and flag-era entries are all epoch 1; a follower (a standby, any node under etcd)
  // seeds it from the recovered store when it starts following, and a promotion begins its
  // epoch at applied_seq + 1.
  const snapshot::RecoveryReport& report = durability_->report();
  if (report.last_seq > 0) sequencer_.Resume(report.last_epoch, report.last_seq + 1);
  return Status::Ok();
}

Status MasterServer::StartGrpc() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &grpc_port_);
  // gRPC sets SO_REUSEPORT by default, which would let two masters share one port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service_.get());
  builder.RegisterService(replication_->service());
  builder.RegisterService(verification_->service());
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
  // A leader hands over first (planned switchover), then leaves the cluster.
  if (controller_ != nullptr) controller_->Stop(/*handover=*/true);
  verification_->Stop();
  replication_->Shutdown();  // completes held writes and ends replication streams first
  grpc_server_->Shutdown(std::chrono::system_clock::now() + grace);
  maintenance_->Stop();
  durability_->Stop();  // after every writer: flushes and fsyncs the WAL
  http_->Stop();
  data_dir_lock_.reset();
  spdlog::debug("node {} stopped (applied_seq={})", config_.node_id, store_.applied_seq());
}

}  // namespace tandem::server
