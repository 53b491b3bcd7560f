// Client::Impl routing: connections per address, leader discovery through etcd, rerouting after
// NOT_LEADER / FENCED / UNAVAILABLE, retry backoff (see client_impl.h).
#include <algorithm>
#include <random>
#include <utility>

#include "client/client_impl.h"
#include "coord/keys.h"

namespace tandem {
namespace client_internal {

Conn::Conn(std::string addr, const ClientOptions& options, uint64_t generation)
    : address(std::move(addr)), etcd_generation(generation) {
  // One channel per stream, each with its own TCP connection (a local subchannel pool), so the
  // master can read the streams in parallel. Unary calls round-robin over the same channels.
  const uint32_t count = std::max<uint32_t>(1, options.stream_count);
  for (uint32_t i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("tandem.channel_index", static_cast<int>(i));
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Reconnect quickly after a master restart or failover (gRPC's default starts at 1 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channels.push_back(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::Master::NewStub(channels.back()));
  }
  if (options.use_streams) mux = std::make_unique<StreamMux>(channels, options.stream_window);
}

Conn::~Conn() = default;  // the mux (its streams) goes first, then stubs and channels

}  // namespace client_internal

namespace {

std::string RandomPrefix() {
  std::random_device device;
  const uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "%016llx-", static_cast<unsigned long long>(value));
  return buffer;
}

std::string JoinEndpoints(const std::vector<std::string>& endpoints) {
  std::string out;
  for (const std::string& e : endpoints) out += (out.empty() ? "" : ",") + e;
  return out;
}

}  // namespace

Client::Impl::Impl(ClientOptions opts) : options(std::move(opts)), request_prefix(RandomPrefix()) {
  std::string initial = options.address;
  const bool use_etcd = !options.etcd_endpoints.empty() || !options.cluster_id.empty();
  if (use_etcd) {
    if (options.etcd_endpoints.empty() || options.cluster_id.empty()) {
      startup = Status(ErrorCode::kInvalidParams, "etcd_endpoints and cluster_id go together");
    } else if (Status s = coord::ValidateId("cluster id", options.cluster_id); !s.ok()) {
      startup = s;
    }
    if (startup.ok()) {
      coord::EtcdOptions etcd_options;
      etcd_options.endpoints = options.etcd_endpoints;
      etcd_options.call_timeout_ms = std::clamp<uint32_t>(options.timeout_ms, 200, 2000);
      auto client = coord::EtcdClient::Create(etcd_options);
      if (!client.ok()) {
        startup = Status(ErrorCode::kUnavailable, "etcd unreachable at " +
                                                      JoinEndpoints(options.etcd_endpoints) + ": " +
                                                      client.status().message());
      } else {
        etcd = std::move(client.value());
      }
    }
    if (startup.ok()) {
      auto created = coord::LeaderElection::Create(etcd.get(), options.cluster_id);
      if (created.ok()) {
        election = std::move(created.value());
      } else {
        startup = created.status();
      }
    }
    if (startup.ok()) {
      // The leader now, so the first call goes straight to it; the watch keeps it current.
      auto leader = election->GetLeader();
      if (leader.ok() && leader.value().has_value() && !leader.value()->client_address.empty()) {
        initial = leader.value()->client_address;
        etcd_leader = initial;
      }
    }
  }
  conn.store(std::make_shared<Conn>(initial, options, 0));
  if (election) {
    auto handle = election->WatchLeader(
        [this](const std::optional<coord::LeaderInfo>& leader) { OnLeader(leader); });
    if (handle.ok()) {
      watch = std::move(handle.value());
    } else {
      startup = Status(ErrorCode::kUnavailable,
                       "cannot watch the leader key in etcd: " + handle.status().message());
    }
  }
}

Client::Impl::~Impl() {
  if (watch) watch->Cancel();  // joins the watch thread: OnLeader is not running after this
}

void Client::Impl::OnLeader(const std::optional<coord::LeaderInfo>& leader) {
  std::string address = leader.has_value() ? leader->client_address : std::string();
  std::lock_guard<std::mutex> lock(mu);
  if (address == etcd_leader) return;
  etcd_leader = std::move(address);
  leader_changes.fetch_add(1, std::memory_order_relaxed);
  etcd_generation.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<Conn> Client::Impl::Current() {
  std::shared_ptr<Conn> current = conn.load(std::memory_order_acquire);
  if (current->etcd_generation.load(std::memory_order_acquire) ==
      etcd_generation.load(std::memory_order_acquire)) {
    return current;  // the common case: no lock
  }
  std::shared_ptr<Conn> old;  // released after the lock
  std::lock_guard<std::mutex> lock(mu);
  current = conn.load(std::memory_order_acquire);
  const uint64_t generation = etcd_generation.load(std::memory_order_acquire);
  if (!etcd_leader.empty() && etcd_leader != current->address) {
    old = std::move(current);
    current = std::make_shared<Conn>(etcd_leader, options, generation);
    conn.store(current, std::memory_order_release);
    reconnects.fetch_add(1, std::memory_order_relaxed);
  } else {
    current->etcd_generation.store(generation, std::memory_order_release);
  }
  return current;
}

bool Client::Impl::Reroute(const std::shared_ptr<Conn>& failed, const Status& status) {
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<Conn> current = conn.load(std::memory_order_acquire);
  if (current != failed) return current->address != failed->address;  // someone moved already
  std::string target;
  if (status.code() == ErrorCode::kNotLeader && !status.leader_address().empty()) {
    target = status.leader_address();
    redirects.fetch_add(1, std::memory_order_relaxed);
  } else if (etcd) {
    target = etcd_leader;  // may still name the failed node: the watch has not caught up yet
  } else if (status.code() == ErrorCode::kUnavailable && failed->address != options.address) {
    target = options.address;  // the node a hint sent us to is gone: start over
  }
  if (target.empty() || target == failed->address) return false;
  conn.store(
      std::make_shared<Conn>(target, options, etcd_generation.load(std::memory_order_acquire)),
      std::memory_order_release);
  reconnects.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint32_t Client::Impl::BackoffMs(uint32_t attempt) {
  // Exponential from retry_initial_ms, capped at retry_max_ms, with jitter in [d/2, d].
  const uint64_t initial = std::max<uint32_t>(1, options.retry_initial_ms);
  const uint64_t cap = std::max<uint64_t>(initial, options.retry_max_ms);
  const uint64_t d = std::min<uint64_t>(cap, initial << std::min<uint32_t>(attempt, 20));
  thread_local std::mt19937_64 rng(std::random_device{}());
  return static_cast<uint32_t>(d / 2 + rng() % (d - d / 2 + 1));
}

}  // namespace tandem
