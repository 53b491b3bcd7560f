// tandemctl: operator and client CLI of a Tandem master.
//
//   tandemctl [--master ADDR] [--json] [--timeout-ms N] CMD ARGS...
//   tandemctl --etcd-endpoints A,B --cluster-id ID CMD ARGS...   (the leader found in etcd;
//       `status` then shows every member of the cluster from etcd)
//
// Exit codes: 0 success, 1 domain error (the master refused), 2 usage error, 3 master
// unreachable. Errors print one line on stderr; with --json, stdout also gets
// {"error": CODE, "message": ...}. Successful commands print one line per fact, or exactly one
// JSON object with --json.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"
#include "client/size.h"
#include "coord/election.h"
#include "coord/etcd_client.h"
#include "coord/keys.h"
#include "coord/membership.h"
#include "tandem/v1/replication.grpc.pb.h"

namespace {

using nlohmann::json;
using tandem::ErrorCode;
using tandem::Status;

constexpr int kExitDomain = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Globals {
  std::string master = "127.0.0.1:50051";
  bool json = false;
  uint32_t timeout_ms = 5000;
  std::string etcd_endpoints;  // comma-separated; with cluster_id: find the leader in etcd
  std::string cluster_id;
  std::vector<std::string> endpoints;  // etcd_endpoints, parsed
};

// Arguments of every subcommand (CLI11 binds options to fields that must outlive parsing).
struct Args {
  std::string name, key, size, client_id, endpoint, base = "0";
  uint32_t replicas = 1;
  bool soft_pin = false;
  std::string preferred;
  std::string to;  // failover target node id
  uint32_t handover_timeout_ms = 0;
};

class Ctl {
 public:
  explicit Ctl(const Globals& g) : g_(g) {}

  // A client for one command; single calls go unary (no point opening streams for one call).
  tandem::Client MakeClient(const std::string& client_id) const {
    tandem::ClientOptions options;
    options.address = g_.master;
    options.timeout_ms = g_.timeout_ms;
    options.use_streams = false;
    options.stream_count = 1;
    options.client_id = client_id;
    options.etcd_endpoints = g_.endpoints;
    options.cluster_id = g_.cluster_id;
    // --master names one node: report its answer as is (NOT_LEADER included). With etcd, follow
    // the leader and retry on it.
    if (g_.endpoints.empty()) options.max_retry_ms = 0;
    return tandem::Client(options);
  }

  int Fail(const Status& status) const {
    std::cerr << "tandemctl: " << status.ToString() << "\n";
    if (g_.json) {
      std::cout << json{{"error", std::string(tandem::ErrorCodeName(status.code()))},
                        {"message", status.message()}}
                       .dump()
                << "\n";
    }
    return status.code() == ErrorCode::kUnavailable ? kExitUnreachable : kExitDomain;
  }

  int UsageError(const std::string& message) const {
    std::cerr << "tandemctl: " << message << "\n";
    if (g_.json) {
      std::cout << json{{"error", "INVALID_PARAMS"}, {"message", message}}.dump() << "\n";
    }
    return kExitUsage;
  }

  // Prints `j` with --json, else `text` (when non-empty).
  int Done(const json& j, const std::string& text) const {
    if (g_.json) {
      std::cout << j.dump() << "\n";
    } else if (!text.empty()) {
      std::cout << text << "\n";
    }
    return 0;
  }

  int Mount(const Args& a) const;
  int Unmount(const Args& a) const;
  int Put(const Args& a) const;
  int Get(const Args& a) const;
  int Exists(const Args& a) const;
  int Rm(const Args& a) const;
  int RmAll() const;
  int Ping(const Args& a) const;
  int StatusCmd() const;
  int ClusterStatusCmd() const;
  int FailoverCmd(const Args& a) const;
  int SnapshotCmd() const;
  int VerifyCmd() const;

 private:
  const Globals& g_;
};

json ReplicaJson(const tandem::Replica& r) {
  return json{{"segment_id", r.segment_id},
              {"segment_name", r.segment_name},
              {"endpoint", r.endpoint},
              {"offset", r.offset},
              {"address", r.address},
              {"size", r.size},
              {"status", r.complete ? "COMPLETE" : "PROCESSING"}};
}

std::string ReplicaText(const tandem::Replica& r) {
  return "  segment=" + r.segment_name + " id=" + r.segment_id + " endpoint=" + r.endpoint +
         " offset=" + std::to_string(r.offset) + " address=" + std::to_string(r.address) +
         " size=" + std::to_string(r.size) + (r.complete ? " COMPLETE" : " PROCESSING");
}

json ReplicasJson(const std::vector<tandem::Replica>& replicas) {
  json out = json::array();
  for (const auto& r : replicas) out.push_back(ReplicaJson(r));
  return out;
}

std::string ReplicasText(const std::vector<tandem::Replica>& replicas) {
  std::string out;
  for (const auto& r : replicas) out += "\n" + ReplicaText(r);
  return out;
}

// Addresses may be given in hex (0x...), otherwise as a size ("0", "4GiB").
tandem::StatusOr<uint64_t> ParseAddress(const std::string& text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    size_t used = 0;
    try {
      uint64_t value = std::stoull(text.substr(2), &used, 16);
      if (used == text.size() - 2) return value;
    } catch (const std::exception&) {
    }
    return Status(ErrorCode::kInvalidParams, "bad address '" + text + "'");
  }
  return tandem::ParseSize(text);
}

int Ctl::Mount(const Args& a) const {
  auto size = tandem::ParseSize(a.size);
  if (!size.ok()) return UsageError(size.status().message());
  auto base = ParseAddress(a.base);
  if (!base.ok()) return UsageError(base.status().message());
  tandem::Segment segment{"", a.name, base.value(), size.value(), a.endpoint};
  if (Status s = MakeClient(a.client_id).MountSegment(segment); !s.ok()) return Fail(s);
  return Done(json{{"mounted", a.name},
                   {"size", segment.size},
                   {"base", segment.base},
                   {"client_id", a.client_id}},
              "mounted segment " + a.name + " (" + std::to_string(segment.size) + " bytes)");
}

int Ctl::Unmount(const Args& a) const {
  if (Status s = MakeClient(a.client_id).UnmountSegment(a.name); !s.ok()) return Fail(s);
  return Done(json{{"unmounted", a.name}}, "unmounted segment " + a.name);
}

int Ctl::Put(const Args& a) const {
  auto size = tandem::ParseSize(a.size);
  if (!size.ok()) return UsageError(size.status().message());
  tandem::Client client = MakeClient(a.client_id);
  tandem::PutOptions options{a.replicas, a.preferred, a.soft_pin};
  auto replicas = client.PutStart(a.key, size.value(), options);
  if (!replicas.ok()) return Fail(replicas.status());
  if (Status s = client.PutEnd(a.key); !s.ok()) {
    client.PutRevoke(a.key);  // best effort: do not leave a PROCESSING put behind
    return Fail(s);
  }
  for (auto& r : replicas.value()) r.complete = true;
  return Done(
      json{{"key", a.key}, {"size", size.value()}, {"replicas", ReplicasJson(replicas.value())}},
      "put " + a.key + " (" + std::to_string(size.value()) + " bytes, " +
          std::to_string(replicas->size()) + " replicas)" + ReplicasText(replicas.value()));
}

int Ctl::Get(const Args& a) const {
  auto list = MakeClient("").GetReplicaList(a.key);
  if (!list.ok()) return Fail(list.status());
  return Done(json{{"key", a.key},
                   {"lease_ttl_ms", list->lease_ttl_ms},
                   {"replicas", ReplicasJson(list->replicas)}},
              a.key + ": " + std::to_string(list->replicas.size()) + " replicas, lease " +
                  std::to_string(list->lease_ttl_ms) + " ms" + ReplicasText(list->replicas));
}

int Ctl::Exists(const Args& a) const {
  auto exists = MakeClient("").ExistKey(a.key);
  if (!exists.ok()) return Fail(exists.status());
  return Done(json{{"key", a.key}, {"exists", exists.value()}}, exists.value() ? "true" : "false");
}

int Ctl::Rm(const Args& a) const {
  if (Status s = MakeClient("").Remove(a.key); !s.ok()) return Fail(s);
  return Done(json{{"removed", a.key}}, "removed " + a.key);
}

int Ctl::RmAll() const {
  auto result = MakeClient("").RemoveAll();
  if (!result.ok()) return Fail(result.status());
  return Done(json{{"removed", result->removed}, {"kept", result->kept}},
              "removed " + std::to_string(result->removed) + " objects, kept " +
                  std::to_string(result->kept));
}

int Ctl::Ping(const Args& a) const {
  auto result = MakeClient(a.client_id).Ping();
  if (!result.ok()) return Fail(result.status());
  return Done(
      json{{"client_id", a.client_id}, {"client_ttl_ms", result->client_ttl_ms}},
      "pong " + a.client_id + " (client ttl " + std::to_string(result->client_ttl_ms) + " ms)");
}

json StatusJson(const tandem::MasterStatus& st) {
  json segments = json::array();
  for (const auto& s : st.segments) {
    segments.push_back(json{{"id", s.id},
                            {"name", s.name},
                            {"base", s.base},
                            {"size", s.size},
                            {"endpoint", s.endpoint}});
  }
  json standbys = json::array();
  for (const auto& s : st.standbys) {
    standbys.push_back(json{{"standby_id", s.standby_id},
                            {"address", s.address},
                            {"state", s.state},
                            {"acked_seq", s.acked_seq},
                            {"lag_entries", s.lag_entries},
                            {"lag_ms", s.lag_ms},
                            {"full_syncs", s.full_syncs}});
  }
  json out{{"node_id", st.node_id},
           {"role", st.role},
           {"epoch", st.epoch},
           {"applied_seq", st.applied_seq},
           {"object_count", st.object_count},
           {"segment_count", st.segment_count},
           {"bytes_used", st.bytes_used},
           {"bytes_total", st.bytes_total},
           {"state_digest", st.state_digest},
           {"segments", segments},
           {"replication_mode", st.replication_mode},
           {"standbys", standbys}};
  if (st.follower) {
    const tandem::FollowerInfo& f = *st.follower;
    out["follower"] = json{{"state", f.state},
                           {"primary_address", f.primary_address},
                           {"lag_entries", f.lag_entries},
                           {"lag_ms", f.lag_ms},
                           {"last_error", f.last_error},
                           {"refused_entries", f.refused_entries},
                           {"full_syncs", f.full_syncs},
                           {"reconnects", f.reconnects}};
  }
  return out;
}

std::string StatusText(const tandem::MasterStatus& st) {
  std::string text = "node " + st.node_id + " role " + st.role + " epoch " +
                     std::to_string(st.epoch) + " applied_seq " + std::to_string(st.applied_seq) +
                     "\nobjects " + std::to_string(st.object_count) + " segments " +
                     std::to_string(st.segment_count) + " bytes " + std::to_string(st.bytes_used) +
                     "/" + std::to_string(st.bytes_total) + "\nstate_digest " + st.state_digest;
  if (!st.replication_mode.empty()) text += "\nreplication " + st.replication_mode;
  for (const auto& s : st.segments) {
    text += "\n  segment " + s.name + " id=" + s.id + " size=" + std::to_string(s.size) +
            " endpoint=" + s.endpoint;
  }
  for (const auto& s : st.standbys) {
    text += "\n  standby " + s.standby_id + " " + s.state + " lag " +
            std::to_string(s.lag_entries) + " entries / " + std::to_string(s.lag_ms) + " ms";
  }
  if (st.follower) {
    text += "\nfollowing " + st.follower->primary_address + " (" + st.follower->state + ", lag " +
            std::to_string(st.follower->lag_entries) + " entries)";
  }
  return text;
}

// `verify --master STANDBY`: one whole verification pass on that standby (issue 6).
int Ctl::VerifyCmd() const {
  if (!g_.endpoints.empty()) {
    return UsageError("verify runs on one standby: give its --master address, not etcd");
  }
  auto channel = grpc::CreateChannel(g_.master, grpc::InsecureChannelCredentials());
  auto stub = tandem::v1::Verification::NewStub(channel);
  grpc::ClientContext context;
  // A whole pass at 1 M objects takes seconds: never less than two minutes.
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(std::max<uint32_t>(g_.timeout_ms, 120000)));
  tandem::v1::RunVerificationRequest request;
  request.set_all_shards(true);
  tandem::v1::RunVerificationResponse r;
  grpc::Status status = stub->RunVerification(&context, request, &r);
  if (!status.ok()) {
    const bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    return Fail(Status(unreachable ? ErrorCode::kUnavailable : ErrorCode::kInvalidState,
                       g_.master + ": " + status.error_message()));
  }
  if (r.status() == "error") return Fail(Status(ErrorCode::kInvalidState, r.message()));
  Done(json{{"status", r.status()},
            {"shards", r.shards()},
            {"keys_checked", r.keys_checked()},
            {"mismatches", r.mismatches()},
            {"repairs", r.repairs()},
            {"duration_ms", r.duration_ms()},
            {"message", r.message()}},
       "verify: " + r.status() + ": " + std::to_string(r.shards()) + " shards, " +
           std::to_string(r.keys_checked()) + " keys checked, " + std::to_string(r.mismatches()) +
           " mismatches, " + std::to_string(r.repairs()) + " repairs in " +
           std::to_string(r.duration_ms()) + " ms" +
           (r.message().empty() ? "" : " (" + r.message() + ")"));
  return r.status() == "full_sync" ? kExitDomain : 0;
}

int Ctl::SnapshotCmd() const {
  auto snap = MakeClient("").Snapshot();
  if (!snap.ok()) return Fail(snap.status());
  const tandem::SnapshotResult& r = snap.value();
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%.3f", r.seconds);
  return Done(json{{"id", r.id},
                   {"epoch", r.epoch},
                   {"seq", r.seq},
                   {"objects", r.object_count},
                   {"bytes", r.bytes},
                   {"seconds", r.seconds}},
              "snapshot " + r.id + ": seq " + std::to_string(r.seq) + ", epoch " +
                  std::to_string(r.epoch) + ", " + std::to_string(r.object_count) + " objects, " +
                  std::to_string(r.bytes) + " bytes in " + seconds + " s");
}

// `status` with etcd: the leader key and every member entry, read from etcd.
int Ctl::ClusterStatusCmd() const {
  tandem::coord::EtcdOptions options;
  options.endpoints = g_.endpoints;
  options.call_timeout_ms = std::min<uint32_t>(g_.timeout_ms, 2000);
  auto etcd = tandem::coord::EtcdClient::Create(options);
  if (!etcd.ok()) {
    return Fail(Status(ErrorCode::kUnavailable, "etcd unreachable at " + g_.etcd_endpoints + ": " +
                                                    etcd.status().message()));
  }
  auto election = tandem::coord::LeaderElection::Create(etcd.value().get(), g_.cluster_id);
  if (!election.ok()) return Fail(election.status());
  auto leader = election.value()->GetLeader();
  if (!leader.ok()) return Fail(leader.status());
  auto kvs = etcd.value()->GetPrefix(tandem::coord::MembersPrefix(g_.cluster_id));
  if (!kvs.ok()) return Fail(kvs.status());
  const std::optional<tandem::coord::LeaderInfo>& lead = leader.value();
  json members = json::array();
  std::string text = "cluster " + g_.cluster_id + ": ";
  text += lead ? "leader " + lead->node_id + " epoch " + std::to_string(lead->epoch) + " at " +
                     lead->client_address
               : std::string("no leader");
  char line[512];
  std::snprintf(line, sizeof(line), "\n%-1s %-16s %-10s %6s %12s %8s %-5s %-22s %s", "", "NODE",
                "ROLE", "EPOCH", "APPLIED_SEQ", "LAG_MS", "READY", "ADDRESS", "STATE");
  text += line;
  for (const tandem::coord::KeyValue& kv : kvs.value()) {
    auto member = tandem::coord::Membership::Parse(kv);
    if (!member.ok()) {
      std::cerr << "tandemctl: skipping unreadable member entry " << kv.key << ": "
                << member.status().message() << "\n";
      continue;
    }
    const tandem::coord::MemberInfo& m = member.value();
    members.push_back(json{{"node_id", m.node_id},
                           {"role", m.role},
                           {"epoch", m.epoch},
                           {"applied_seq", m.applied_seq},
                           {"lag_ms", m.lag_ms},
                           {"ready", m.ready},
                           {"address", m.address}});
    const bool leads = lead && lead->node_id == m.node_id;
    std::snprintf(line, sizeof(line), "\n%-1s %-16s %-10s %6lld %12llu %8llu %-5s %-22s %s",
                  leads ? "*" : "", m.node_id.c_str(), m.role.c_str(),
                  static_cast<long long>(m.epoch), static_cast<unsigned long long>(m.applied_seq),
                  static_cast<unsigned long long>(m.lag_ms), m.ready ? "yes" : "no",
                  m.address.c_str(), m.state.c_str());
    text += line;
  }
  json out{{"leader", lead ? json(lead->node_id) : json(nullptr)},
           {"epoch", lead ? lead->epoch : 0},
           {"members", members}};
  Done(out, text);
  if (!lead) {
    std::cerr << "tandemctl: cluster " << g_.cluster_id << " has no leader\n";
    return kExitDomain;
  }
  return 0;
}

int Ctl::FailoverCmd(const Args& a) const {
  if (!g_.cluster_id.empty()) {  // a clear error when nobody leads (the client would just retry)
    tandem::coord::EtcdOptions options;
    options.endpoints = g_.endpoints;
    options.call_timeout_ms = std::min<uint32_t>(g_.timeout_ms, 2000);
    auto etcd = tandem::coord::EtcdClient::Create(options);
    if (!etcd.ok()) {
      return Fail(Status(ErrorCode::kUnavailable, "etcd unreachable at " + g_.etcd_endpoints +
                                                      ": " + etcd.status().message()));
    }
    auto election = tandem::coord::LeaderElection::Create(etcd.value().get(), g_.cluster_id);
    if (!election.ok()) return Fail(election.status());
    auto leader = election.value()->GetLeader();
    if (!leader.ok()) return Fail(leader.status());
    if (!leader.value()) {
      return Fail(Status(ErrorCode::kNotLeader, "cluster " + g_.cluster_id + " has no leader"));
    }
  }
  tandem::Client client = MakeClient("");
  auto handed = client.Handover(a.to, a.handover_timeout_ms);
  if (!handed.ok()) return Fail(handed.status());
  return Done(
      json{{"new_leader", handed.value()}, {"old_leader_address", client.Stats().address}},
      "handed over to " + handed.value() + " (from the leader at " + client.Stats().address + ")");
}

int Ctl::StatusCmd() const {
  if (!g_.cluster_id.empty()) return ClusterStatusCmd();
  auto st = MakeClient("").GetStatus();
  if (!st.ok()) return Fail(st.status());
  return Done(StatusJson(st.value()), StatusText(st.value()));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tandemctl: operator and client CLI of a Tandem master"};
  app.require_subcommand(1);
  Globals g;
  Args a;
  app.add_option("--master", g.master, "master address host:port")->capture_default_str();
  app.add_flag("--json", g.json, "print one JSON object");
  app.add_option("--timeout-ms", g.timeout_ms, "deadline per call")->capture_default_str();
  app.add_option("--etcd-endpoints", g.etcd_endpoints,
                 "etcd host:port list (comma-separated): find the leader there");
  app.add_option("--cluster-id", g.cluster_id, "cluster id in etcd ([A-Za-z0-9_-]{1,64})");
  Ctl ctl(g);
  std::function<int()> run;
  auto cmd = [&](const char* name, const char* help, std::function<int()> fn) {
    CLI::App* sub = app.add_subcommand(name, help);
    sub->callback([&run, fn] { run = fn; });
    return sub;
  };

  auto* mount = cmd("mount", "mount a segment", [&] { return ctl.Mount(a); });
  mount->add_option("NAME", a.name, "segment name (and id)")->required();
  mount->add_option("SIZE", a.size, "bytes, e.g. 4096, 64KiB, 1GiB")->required();
  mount->add_option("--client-id", a.client_id, "owner (empty: static segment)");
  mount->add_option("--base", a.base, "base address (decimal, size or 0x hex)");
  mount->add_option("--endpoint", a.endpoint, "transport endpoint of the pool");

  auto* unmount = cmd("unmount", "unmount a segment", [&] { return ctl.Unmount(a); });
  unmount->add_option("NAME", a.name, "segment id")->required();
  unmount->add_option("--client-id", a.client_id, "owner");

  auto* put = cmd("put", "allocate and complete an object", [&] { return ctl.Put(a); });
  put->add_option("KEY", a.key)->required();
  put->add_option("SIZE", a.size, "bytes, e.g. 4096, 64KiB")->required();
  put->add_option("--replicas", a.replicas, "replica count")->capture_default_str();
  put->add_option("--client-id", a.client_id, "writer id");
  put->add_option("--preferred-segment", a.preferred, "segment id to try first");
  put->add_flag("--soft-pin", a.soft_pin, "exempt from eviction (for a while)");

  cmd("get", "replica list (grants a read lease)", [&] { return ctl.Get(a); })
      ->add_option("KEY", a.key)
      ->required();
  cmd("exists", "does the key exist", [&] { return ctl.Exists(a); })
      ->add_option("KEY", a.key)
      ->required();
  cmd("rm", "remove an object", [&] { return ctl.Rm(a); })->add_option("KEY", a.key)->required();
  cmd("rm-all", "remove every object not under lease", [&] { return ctl.RmAll(); });
  cmd("ping", "heartbeat for a client", [&] { return ctl.Ping(a); })
      ->add_option("CLIENT_ID", a.client_id)
      ->required();
  cmd("status", "master status", [&] { return ctl.StatusCmd(); });
  cmd("snapshot", "write a snapshot of the node's state now", [&] { return ctl.SnapshotCmd(); });
  cmd("verify",
      "run one whole verification pass on the standby --master names (exit 1 on full_sync)",
      [&] { return ctl.VerifyCmd(); });
  auto* failover = cmd("failover", "hand leadership over to a standby (planned switchover)",
                       [&] { return ctl.FailoverCmd(a); });
  failover->add_option("--to", a.to, "target node id (default: the most advanced standby)");
  failover->add_option("--handover-timeout-ms", a.handover_timeout_ms,
                       "how long the leader may take (0: its default)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "tandemctl: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if (g.etcd_endpoints.empty() != g.cluster_id.empty()) {
    std::cerr << "tandemctl: --etcd-endpoints and --cluster-id go together\n";
    return kExitUsage;
  }
  if (!g.cluster_id.empty()) {
    if (Status s = tandem::coord::ValidateId("cluster id", g.cluster_id); !s.ok()) {
      std::cerr << "tandemctl: " << s.message() << "\n";
      return kExitUsage;
    }
    auto endpoints = tandem::coord::EtcdClient::ParseEndpointList(g.etcd_endpoints);
    if (!endpoints.ok()) {
      std::cerr << "tandemctl: --etcd-endpoints: " << endpoints.status().message() << "\n";
      return kExitUsage;
    }
    g.endpoints = endpoints.value();
  }
  return run ? run() : kExitUsage;
}
