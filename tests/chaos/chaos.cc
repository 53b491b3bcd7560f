// tandem-chaos: the fault-injection campaign of issue 7 (run it through tests/chaos/run.sh).
//
//   tandem-chaos [--trials N] [--fault F[,F...]|all] [--mode sync|async] [--report FILE]
//                [--work-dir DIR] [--seed S]
//
// Each trial starts a real etcd (3 members, 127.0.0.1, tmpfs) and three tandem-master processes
// whose etcd connections each go through their own TcpProxy (so one node can be cut off from
// etcd but not from clients), runs the recording workload (workload.h), injects one fault,
// heals, lets the workload run on, quiesces, and checks the history (history.h): acknowledged
// writes survive, one node per epoch and no ack after a term ended, every node's state digest
// equals the leader's, no phantom or stale reads. One line per trial, a per-fault table, and a
// one-line summary last; exit 1 when any check is violated, 2 on a usage or setup error.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "coord/election.h"
#include "coord/etcd_client.h"
#include "failover_util.h"
#include "history.h"
#include "tcp_proxy.h"
#include "workload.h"

namespace tandem::chaos {
namespace {

using testing::EtcdTandemCluster;
using testing::ReplNode;
using testing::TcpProxy;

const std::vector<std::string> kAllFaults = {
    "kill-primary", "kill-standby",      "pause-primary", "restart-all",     "kill-etcd-leader",
    "pause-etcd",   "partition-primary", "slow-standby",  "corrupt-snapshot"};

constexpr uint32_t kLeaseTtlMs = 3000;

struct Args {
  std::vector<std::string> faults = kAllFaults;
  int trials = 1;
  std::string mode = "sync";
  std::string report;
  std::string work_dir;
  uint64_t seed = 1;
};

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Polls the leader key (linearizable reads, every 20 ms) and records the terms it sees.
class TermPoller {
 public:
  TermPoller(const std::string& endpoints, const std::string& cluster_id) {
    coord::EtcdOptions options;
    options.endpoints = EtcdTandemCluster::SplitEndpoints(endpoints);
    options.call_timeout_ms = 300;
    options.connect_timeout_ms = 300;
    options.probe = false;
    auto client = coord::EtcdClient::Create(options);
    if (!client.ok()) return;
    client_ = std::move(client.value());
    auto election = coord::LeaderElection::Create(client_.get(), cluster_id);
    if (!election.ok()) return;
    election_ = std::move(election.value());
    thread_ = std::thread([this] { Loop(); });
  }
  ~TermPoller() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<LeaderTerm> Terms() {
    std::lock_guard<std::mutex> lock(mu_);
    return terms_;
  }

 private:
  void Loop() {
    for (int i = 0; i < 100000 && !stop_; ++i) {
      auto leader = election_->GetLeader();
      const uint64_t now = NowMs();
      if (leader.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        const uint64_t epoch = leader.value() ? static_cast<uint64_t>(leader.value()->epoch) : 0;
        if (!terms_.empty() && terms_.back().gone_seen_ms == 0 && terms_.back().epoch != epoch) {
          terms_.back().gone_seen_ms = now;
        }
        if (epoch != 0 && (terms_.empty() || terms_.back().epoch != epoch)) {
          terms_.push_back({epoch, leader.value()->node_id, now, 0});
        }
      }
      Sleep(20);
    }
  }

  std::unique_ptr<coord::EtcdClient> client_;
  std::unique_ptr<coord::LeaderElection> election_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<LeaderTerm> terms_;
  std::thread thread_;
};

int PortOf(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

// The cluster of one trial: etcd x3, three nodes, a proxy per (node, etcd member).
class ChaosCluster {
 public:
  ChaosCluster(const std::string& work_dir, const std::string& mode)
      // Sync mode is the zero-loss configuration, WAL fsync included: restart-all kills every
      // copy at once, and only `always` promises that nothing acknowledged is lost then.
      : cluster_(work_dir, 3,
                 {"--replication", mode, "--wal-fsync", mode == "sync" ? "always" : "interval",
                  "--lease-ttl-ms", std::to_string(kLeaseTtlMs), "--snapshot-interval-s", "0"},
                 /*etcd_members=*/3, "chaos") {
    for (int node = 0; node < 3; ++node) {
      proxies_.emplace_back();
      for (size_t m = 0; m < cluster_.etcd().size(); ++m) {
        proxies_.back().push_back(std::make_unique<TcpProxy>(PortOf(cluster_.etcd().Endpoint(m))));
      }
    }
    cluster_.SetNodeEtcdEndpoints([this](size_t node) {
      std::string out;
      for (auto& proxy : proxies_[node]) out += (out.empty() ? "" : ",") + proxy->endpoint();
      return out;
    });
  }

  bool Start(std::string* error) { return cluster_.Start(error); }
  // Cuts node i off from etcd (connections stay open, silent) or heals it.
  void FreezeEtcd(int node, bool frozen) {
    for (auto& proxy : proxies_[static_cast<size_t>(node)]) proxy->Freeze(frozen);
  }
  ClientOptions Options(const std::string& client_id) const {
    ClientOptions options = cluster_.ClientOptionsForCluster(client_id);
    options.timeout_ms = 2000;
    options.max_retry_ms = 10000;
    return options;
  }
  EtcdTandemCluster& nodes() { return cluster_; }
  ReplNode& node(int i) { return cluster_.node(i); }
  int Standby(int leader) const { return leader == 0 ? 1 : 0; }

 private:
  std::vector<std::vector<std::unique_ptr<TcpProxy>>> proxies_;
  EtcdTandemCluster cluster_;  // after the proxies: its nodes stop first
};

struct TrialResult {
  std::string fault;
  bool setup_ok = true;
  std::string setup_error;
  CheckReport report;
  bool converged = false;
  std::string converge_detail;
};

// Flips one byte in the middle of the newest snapshot file of `dir`; returns its name.
std::string CorruptNewestSnapshot(const std::string& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> snaps;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".snap") snaps.push_back(e.path());
  }
  if (snaps.empty()) return "";
  std::sort(snaps.begin(), snaps.end());  // zero-padded seq in the name
  const std::filesystem::path& newest = snaps.back();
  std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = std::filesystem::file_size(newest, ec);
  if (!f || ec || size < 64) return "";
  f.seekg(static_cast<std::streamoff>(size / 2));
  char c = 0;
  f.read(&c, 1);
  f.seekp(static_cast<std::streamoff>(size / 2));
  c = static_cast<char>(c ^ 0x5a);
  f.write(&c, 1);
  return newest.filename().string();
}

// Injects `fault` and heals it; returns false (with *error) when the harness itself could not do
// it (not a Tandem violation: a broken trial).
bool InjectAndHeal(const std::string& fault, ChaosCluster& c, int leader, uint64_t* fault_start,
                   std::vector<std::string>* notes, std::string* error) {
  const int standby = c.Standby(leader);
  *fault_start = NowMs();
  if (fault == "kill-primary") {
    c.node(leader).Kill9();
    if (c.nodes().WaitLeader(leader, 15000) < 0) notes->push_back("no new leader within 15 s");
    return c.node(leader).Start(error, /*keep_data=*/true);
  }
  if (fault == "kill-standby") {
    c.node(standby).Kill9();
    Sleep(2000);
    return c.node(standby).Start(error, true);
  }
  if (fault == "pause-primary") {
    c.node(leader).Signal(SIGSTOP);
    if (c.nodes().WaitLeader(leader, 15000) < 0) notes->push_back("no new leader within 15 s");
    Sleep(500);
    c.node(leader).Signal(SIGCONT);
    return true;
  }
  if (fault == "restart-all") {
    for (size_t i = 0; i < c.nodes().size(); ++i) c.node(static_cast<int>(i)).Kill9();
    for (size_t i = 0; i < c.nodes().size(); ++i) {
      if (!c.node(static_cast<int>(i)).Start(error, true)) return false;
    }
    return true;
  }
  if (fault == "kill-etcd-leader" || fault == "pause-etcd") {
    const int member = c.nodes().etcd().LeaderIndex();
    if (member < 0) {
      *error = "no etcd leader found";
      return false;
    }
    notes->push_back("etcd member " + std::to_string(member));
    if (fault == "pause-etcd") {
      c.nodes().etcd().member(static_cast<size_t>(member))->Signal(SIGSTOP);
      Sleep(4000);
      c.nodes().etcd().member(static_cast<size_t>(member))->Signal(SIGCONT);
      return true;
    }
    c.nodes().etcd().member(static_cast<size_t>(member))->Signal(SIGKILL);
    Sleep(3000);
    return c.nodes().etcd().Restart(static_cast<size_t>(member), error);
  }
  if (fault == "partition-primary") {
    c.FreezeEtcd(leader, true);
    if (c.nodes().WaitLeader(leader, 15000) < 0) notes->push_back("no new leader within 15 s");
    Sleep(1000);
    c.FreezeEtcd(leader, false);
    return true;
  }
  if (fault == "slow-standby") {
    // SIGSTOP 150 ms of every 200 ms for 5 s: a standby that applies and acks at a quarter of
    // its speed, with stalls (a proxy cannot sit between one standby and the primary: standbys
    // dial the address the primary publishes in etcd).
    for (int i = 0; i < 25; ++i) {
      c.node(standby).Signal(SIGSTOP);
      Sleep(150);
      c.node(standby).Signal(SIGCONT);
      Sleep(50);
    }
    return true;
  }
  if (fault == "corrupt-snapshot") {
    // Two snapshots on the leader, the newest damaged, then a restart: it must recover from the
    // previous one plus its WAL, and say so.
    for (int i = 0; i < 2; ++i) {
      auto snap = testing::ClientOf(c.node(leader).address(), "", false, 30000)->Snapshot();
      if (!snap.ok()) {
        *error = "snapshot on the leader failed: " + snap.status().ToString();
        return false;
      }
      Sleep(300);
    }
    const std::string damaged = CorruptNewestSnapshot(c.node(leader).data_dir() + "/snapshots");
    if (damaged.empty()) {
      *error = "no snapshot file to corrupt in " + c.node(leader).data_dir() + "/snapshots";
      return false;
    }
    *fault_start = NowMs();
    c.node(leader).Kill9();
    if (!c.node(leader).Start(error, true)) return false;
    if (c.node(leader).LogTail(200000).find("skipping snapshot " + damaged) == std::string::npos) {
      notes->push_back("VIOLATION: the restarted node did not report the damaged snapshot " +
                       damaged);
    }
    return true;
  }
  *error = "unknown fault " + fault;
  return false;
}

// Keys a put was invoked for, asked of the leader in batches.
bool PresentKeys(ChaosCluster& c, const std::vector<Op>& ops, std::set<std::string>* present,
                 std::string* error) {
  std::vector<std::string> keys;
  for (const Op& op : ops) {
    if (op.kind == OpKind::kPut) keys.push_back(op.key);
  }
  Client client(c.Options("chaos-final"));
  for (size_t i = 0; i < keys.size(); i += 1000) {
    std::vector<std::string> batch(
        keys.begin() + static_cast<ptrdiff_t>(i),
        keys.begin() + static_cast<ptrdiff_t>(std::min(keys.size(), i + 1000)));
    auto result = client.BatchExistKey(batch);
    if (!result.ok()) {
      *error = "final read failed: " + result.status().ToString();
      return false;
    }
    for (size_t j = 0; j < batch.size(); ++j) {
      const auto& r = result.value()[j];
      if (!r.ok()) {
        *error = "final read of " + batch[j] + " failed: " + r.status().ToString();
        return false;
      }
      if (r.value()) present->insert(batch[j]);
    }
  }
  return true;
}

TrialResult RunTrial(const Args& args, const std::string& fault, int trial) {
  TrialResult result;
  result.fault = fault;
  auto fail = [&](const std::string& why) {
    result.setup_ok = false;
    result.setup_error = why;
    return result;
  };
  const std::string dir = args.work_dir + "/" + fault + "-" + std::to_string(trial);
  std::filesystem::create_directories(dir);
  ChaosCluster c(dir, args.mode);
  std::string error;
  if (!c.Start(&error)) return fail("cluster start: " + error);
  int leader = c.nodes().WaitLeader(-1, 15000);
  if (leader < 0) return fail("no leader within 15 s");
  {
    Client admin(c.Options(""));
    Segment segment{"", "chaos-pool", 0, 64ull << 30, "pool.node:7000"};
    Status mounted = admin.MountSegment(segment);
    if (!mounted.ok()) return fail("mount: " + mounted.ToString());
  }
  TermPoller poller(c.nodes().etcd().Endpoints(), c.nodes().cluster_id());
  Workload workload([&](const std::string& id) { return c.Options(id); }, 3,
                    "t" + std::to_string(trial) + "-",
                    args.seed * 1000 + static_cast<uint64_t>(trial));
  Sleep(1500);
  uint64_t fault_start = 0;
  std::vector<std::string> notes;
  if (!InjectAndHeal(fault, c, leader, &fault_start, &notes, &error)) {
    workload.Stop();
    return fail("fault " + fault + ": " + error);
  }
  const uint64_t fault_end = NowMs();
  // Run on after healing until writes flow again (bounded), then 1.5 s more.
  const uint64_t acked_at_heal = workload.AckedWrites();
  testing::WaitUntil([&] { return workload.AckedWrites() > acked_at_heal + 50; }, 300,
                     std::chrono::milliseconds(50));
  Sleep(1500);
  workload.Stop();
  const uint64_t end = NowMs();
  poller.Stop();
  result.converged = c.nodes().WaitConverged(30000, &result.converge_detail);

  CheckInput in;
  in.ops = workload.Ops();
  in.terms = poller.Terms();
  in.sync_mode = args.mode == "sync";
  in.fault_start_ms = fault_start;
  in.fault_end_ms = fault_end;
  in.end_ms = end;
  in.lease_ttl_ms = kLeaseTtlMs;
  if (!PresentKeys(c, in.ops, &in.present_at_end, &error)) return fail(error);
  result.report = Check(in);
  if (!result.converged) {
    result.report.violations.push_back("states differ after quiescing: " + result.converge_detail);
  }
  for (const std::string& note : notes) {
    if (note.rfind("VIOLATION: ", 0) == 0) result.report.violations.push_back(note.substr(11));
  }
  return result;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t index = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

bool ParseArgs(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--trials") {
      const std::string v = next();
      args->trials = std::atoi(v.c_str());
      if (args->trials < 1 || args->trials > 1000) {
        *error = "--trials wants 1..1000, got '" + v + "'";
        return false;
      }
    } else if (a == "--fault") {
      const std::string v = next();
      args->faults.clear();
      if (v == "all") {
        args->faults = kAllFaults;
        continue;
      }
      std::stringstream ss(v);
      std::string f;
      while (std::getline(ss, f, ',')) {
        if (std::find(kAllFaults.begin(), kAllFaults.end(), f) == kAllFaults.end()) {
          *error = "unknown fault '" + f + "'";
          return false;
        }
        args->faults.push_back(f);
      }
      if (args->faults.empty()) {
        *error = "--fault wants a fault name";
        return false;
      }
    } else if (a == "--mode") {
      args->mode = next();
      if (args->mode != "sync" && args->mode != "async") {
        *error = "--mode wants sync or async";
        return false;
      }
    } else if (a == "--report") {
      args->report = next();
    } else if (a == "--work-dir") {
      args->work_dir = next();
    } else if (a == "--seed") {
      args->seed = std::strtoull(next().c_str(), nullptr, 10);
    } else {
      *error = "unknown argument '" + a + "'";
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  // The clients' retry warnings would bury the trial lines; errors still show.
  spdlog::set_level(spdlog::level::err);
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::cerr << "tandem-chaos: " << error << "\nusage: tandem-chaos [--trials N] [--fault "
              << "F[,F...]|all] [--mode sync|async] [--report FILE] [--work-dir DIR] [--seed S]\n"
              << "faults:";
    for (const std::string& f : kAllFaults) std::cerr << " " << f;
    std::cerr << "\n";
    return 2;
  }
  const bool own_dir = args.work_dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/tandem-chaos-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::cerr << "tandem-chaos: cannot create a work dir in /tmp\n";
      return 2;
    }
    args.work_dir = tmpl;
  }
  std::map<std::string, std::vector<TrialResult>> results;
  uint64_t violations = 0, broken = 0;
  for (const std::string& fault : args.faults) {
    for (int trial = 1; trial <= args.trials; ++trial) {
      const uint64_t started = NowMs();
      TrialResult r = RunTrial(args, fault, trial);
      const double seconds = static_cast<double>(NowMs() - started) / 1000.0;
      if (!r.setup_ok) {
        ++broken;
        std::printf("%-18s trial %d: HARNESS ERROR (%.1f s): %s\n", fault.c_str(), trial, seconds,
                    r.setup_error.c_str());
      } else {
        const CheckReport& k = r.report;
        violations += k.violations.size();
        std::printf(
            "%-18s trial %d: rto %5llu ms, %llu acked writes, lost acked %llu, lost unacked %llu, "
            "unknown %llu, reads %llu, unverified acks %llu, acks after key gone %llu, violations "
            "%zu "
            "(%.1f s)\n",
            fault.c_str(), trial, static_cast<unsigned long long>(k.rto_ms),
            static_cast<unsigned long long>(k.acked_writes),
            static_cast<unsigned long long>(k.lost_acked),
            static_cast<unsigned long long>(k.lost_unacked),
            static_cast<unsigned long long>(k.unknown_writes),
            static_cast<unsigned long long>(k.reads),
            static_cast<unsigned long long>(k.unverified_acks),
            static_cast<unsigned long long>(k.acks_after_key_gone), k.violations.size(), seconds);
        if (k.lost_acked > 0) {
          std::printf("    lost acked writes completed from %lld ms before the fault on\n",
                      static_cast<long long>(k.loss_window_ms));
        }
        for (size_t i = 0; i < k.violations.size() && i < 10; ++i) {
          std::printf("    VIOLATION: %s\n", k.violations[i].c_str());
        }
      }
      std::fflush(stdout);
      results[fault].push_back(std::move(r));
    }
  }
  std::ostringstream table;
  table << "| fault | trials | RTO min | p50 | p99 | max (ms) | lost acked | loss window (ms) | "
           "lost unacked | violations |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& fault : args.faults) {
    std::vector<double> rto;
    uint64_t lost = 0, lost_unacked = 0, v = 0;
    int64_t window = 0;  // the earliest lost ack, in ms before the fault (0: none lost)
    int ok = 0;
    for (const TrialResult& r : results[fault]) {
      if (!r.setup_ok) continue;
      ++ok;
      rto.push_back(static_cast<double>(r.report.rto_ms));
      if (r.report.lost_acked > 0 && (lost == 0 || r.report.loss_window_ms > window)) {
        window = r.report.loss_window_ms;
      }
      lost += r.report.lost_acked;
      lost_unacked += r.report.lost_unacked;
      v += r.report.violations.size();
    }
    char line[256];
    const std::string window_text = lost == 0 ? "-" : std::to_string(window);
    std::snprintf(
        line, sizeof(line), "| %s | %d | %.0f | %.0f | %.0f | %.0f | %llu | %s | %llu | %llu |\n",
        fault.c_str(), ok, rto.empty() ? 0 : *std::min_element(rto.begin(), rto.end()),
        Percentile(rto, 0.5), Percentile(rto, 0.99),
        rto.empty() ? 0 : *std::max_element(rto.begin(), rto.end()),
        static_cast<unsigned long long>(lost), window_text.c_str(),
        static_cast<unsigned long long>(lost_unacked), static_cast<unsigned long long>(v));
    table << line;
  }
  std::cout << "\nmode " << args.mode << " (--wal-fsync "
            << (args.mode == "sync" ? "always" : "interval") << "), lease TTL " << kLeaseTtlMs
            << " ms\n"
            << table.str();
  if (!args.report.empty()) {
    std::ofstream out(args.report, std::ios::app);
    out << "mode " << args.mode << " (--wal-fsync " << (args.mode == "sync" ? "always" : "interval")
        << "), " << args.trials << " trial(s) per fault\n\n"
        << table.str() << "\n";
  }
  const bool pass = violations == 0 && broken == 0;
  if (own_dir && pass) {
    std::error_code ec;
    std::filesystem::remove_all(args.work_dir, ec);
  } else {
    std::cout << "logs and data dirs kept in " << args.work_dir << "\n";
  }
  std::printf(
      "chaos: %zu fault(s) x %d trial(s), mode %s: %llu violation(s), %llu broken "
      "trial(s): %s\n",
      args.faults.size(), args.trials, args.mode.c_str(),
      static_cast<unsigned long long>(violations), static_cast<unsigned long long>(broken),
      pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace tandem::chaos

int main(int argc, char** argv) { return tandem::chaos::Main(argc, argv); }
