#include "harness.h"

#include <gtest/gtest.h>

#include <thread>

namespace tandem::replication::testing {

namespace {

PrimaryOptions TestPrimaryOptions(const std::string& node_id,
                                  const std::function<void(PrimaryOptions&)>& tune) {
  PrimaryOptions options{
      .cluster_id = kCluster, .node_id = node_id, .heartbeat_ms = 50, .image_chunk_objects = 64};
  if (tune) tune(options);
  return options;
}

}  // namespace

PrimaryNode::PrimaryNode(uint64_t epoch, oplog::LogBufferOptions log_options, std::string node_id,
                         const std::function<void(PrimaryOptions&)>& tune)
    : log(log_options),
      sequencer(&log, epoch, 1),
      store(meta::Options{}, &sequencer),
      primary(TestPrimaryOptions(node_id, tune), &log, &store, &history) {
  EXPECT_TRUE(history.Begin(epoch, 1).ok());
  sequencer.SetAppendListener([this](uint64_t seq) { primary.NotifyAppended(seq); });
  primary.SetServing(true, epoch);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(primary.service());
  server = builder.BuildAndStart();
  EXPECT_NE(port, 0);
  address = "127.0.0.1:" + std::to_string(port);
}

PrimaryNode::~PrimaryNode() {
  // Graceful order: end the streams (standbys see UNAVAILABLE), then stop the server.
  primary.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
}

StandbyNode::StandbyNode(std::string id)
    : node_id(std::move(id)),
      log(oplog::LogBufferOptions{}),
      sequencer(&log, 0, 1),
      store(meta::Options{}, &sequencer) {
  sequencer.Close(Status(ErrorCode::kNotLeader, "standby"));
}

StandbyNode::~StandbyNode() { StopFollower(); }

FollowerOptions StandbyNode::Options(const std::string& primary_address) const {
  return {.cluster_id = kCluster,
          .node_id = node_id,
          .own_address = node_id + ".test:7000",
          .primary_address = primary_address,
          .reconnect_initial_ms = 20,
          .reconnect_max_ms = 200,
          .error_retry_ms = 200,
          .primary_timeout_ms = 1000};
}

void StandbyNode::StartFollower(const std::string& primary_address) {
  StartFollower(Options(primary_address));
}

void StandbyNode::StartFollower(const FollowerOptions& options) {
  StopFollower();
  follower = std::make_unique<StandbyFollower>(options, &store, &history, &log);
  follower->Start();
}

void StandbyNode::StopFollower() {
  if (follower) follower->Stop();
  follower.reset();
}

void RunWorkload(meta::MetaStore& store, int ops, uint32_t seed) {
  const uint64_t now = WallClockMs();
  for (int i = 0; i < 3; ++i) {
    meta::SegmentSpec spec;
    spec.id = "seg-" + std::to_string(i);
    spec.name = spec.id;
    spec.base = 0x100000000ull * (i + 1);
    spec.size = 1ull << 30;
    spec.endpoint = "10.0.0." + std::to_string(i) + ":9000";
    // Already mounted on a later workload: fine.
    (void)store.MountSegment(spec, "client-" + std::to_string(i), now);
  }
  std::mt19937 rng(seed);
  std::vector<std::string> live;
  for (int i = 0; i < ops; ++i) {
    const uint32_t dice = rng() % 10;
    if (dice < 7 || live.empty()) {
      const std::string key = "key-" + std::to_string(seed) + "-" + std::to_string(i);
      meta::PutStartArgs args;
      args.key = key;
      args.value_size = 1024 + rng() % 65536;
      args.replica_num = 1 + rng() % 2;
      args.client_id = "writer";
      if (!store.PutStart(args, now).ok()) continue;
      if (dice == 0) {
        (void)store.PutRevoke(key, "writer", now);
        continue;
      }
      if (store.PutEnd(key, "writer", now).ok()) live.push_back(key);
    } else {
      const size_t at = rng() % live.size();
      (void)store.Remove(live[at], now);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }
}

void GiveOwnState(StandbyNode& standby, uint64_t epoch, int ops) {
  standby.sequencer.Open(epoch, standby.store.applied_seq() + 1);
  RunWorkload(standby.store, ops, static_cast<uint32_t>(1000 + epoch));
  standby.sequencer.Close(Status(ErrorCode::kNotLeader, "standby"));
}

bool WaitFor(const std::function<bool()>& done, uint64_t timeout_ms) {
  const uint64_t deadline = SteadyClockMs() + timeout_ms;
  while (!done()) {
    if (SteadyClockMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

bool Converged(const PrimaryNode& primary, const StandbyNode& standby) {
  return standby.store.applied_seq() == primary.store.applied_seq() &&
         standby.store.StateDigest() == primary.store.StateDigest();
}

bool Settled(const PrimaryNode& primary, const StandbyNode& standby) {
  if (!Converged(primary, standby)) return false;
  for (const StandbyStatus& s : primary.primary.Standbys()) {
    if (s.standby_id == standby.node_id) return s.acked_seq == primary.store.applied_seq();
  }
  return false;
}

}  // namespace tandem::replication::testing
