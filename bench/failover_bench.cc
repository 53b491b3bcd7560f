// tandem-failover-bench: failover under write load on a real local cluster (one etcd, three
// tandem-master processes on 127.0.0.1), trial after trial on the same cluster.
//
//   tandem-failover-bench --fault kill|switchover --mode async|sync --trials N [--tsv]
//
// A writer (tandem::Client following the leader through etcd, retries on) writes unique keys
// (PutStart + PutEnd) without pause. Each trial injects the fault into the current leader:
// kill -9 it, or ask it to hand over (Handover RPC, like `tandemctl failover`). Then:
// - RTO: the longest gap between two consecutive acknowledged writes around the fault (writes
//   run back to back about a millisecond apart, so this is "first failed write to first
//   successful write on the new leader");
// - lost: writes acknowledged before the fault that the new leader does not have (expected 0 in
//   sync mode and for switchovers; async kill -9 may lose the last moments);
// - failed: operations that failed even after the client's retries.
// A killed node is restarted (it rejoins as a standby, full-syncing) and the cluster converges
// before the next trial. Prints one line per trial and a summary (min/p50/p99/max).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "failover_util.h"

using namespace tandem;
using namespace tandem::testing;

namespace {

struct Args {
  std::string fault = "kill";
  std::string mode = "async";
  int trials = 20;
  bool tsv = false;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--fault")
      args.fault = next();
    else if (a == "--mode")
      args.mode = next();
    else if (a == "--trials")
      args.trials = std::atoi(next().c_str());
    else if (a == "--tsv")
      args.tsv = true;
    else {
      std::cerr << "usage: tandem-failover-bench --fault kill|switchover --mode async|sync "
                   "--trials N [--tsv]\n";
      return 2;
    }
  }
  if ((args.fault != "kill" && args.fault != "switchover") ||
      (args.mode != "async" && args.mode != "sync") || args.trials <= 0 || args.trials > 1000) {
    std::cerr << "tandem-failover-bench: bad arguments\n";
    return 2;
  }
  TempDir dir("tandem-failover-bench");
  EtcdTandemCluster cluster(dir.path(), 3, {"--replication", args.mode});
  std::string error;
  if (!cluster.Start(&error)) {
    std::cerr << "cluster did not start: " << error << "\n";
    return 1;
  }
  int leader = cluster.WaitLeader(-1, 10000);
  if (leader < 0) {
    std::cerr << "no leader\n";
    return 1;
  }
  ClientOf(cluster.node(leader).address())->MountSegment(Segment{"", "pool", 0, 1ull << 44, "h:0"});
  RecordingWriter writer(cluster.ClientOptionsForCluster("bench"), "f");
  WaitUntil([&] { return writer.acked() >= 200; }, 200);

  std::vector<double> rtos;
  uint64_t total_lost = 0, total_failed = 0, total_acked_checked = 0;
  size_t checked_upto = 0;
  uint64_t failed_seen = 0;
  if (!args.tsv) {
    std::printf("%-6s %-10s %-6s %10s %8s %8s\n", "trial", "fault", "mode", "rto_ms", "lost",
                "failed");
  }
  for (int trial = 1; trial <= args.trials; ++trial) {
    std::string detail;
    cluster.WaitConverged(20000, &detail);
    leader = cluster.Leader();
    if (leader < 0) leader = cluster.WaitLeader(-1, 10000);
    if (leader < 0) {
      std::cerr << "trial " << trial << ": no leader\n";
      return 1;
    }
    // Writes acknowledged before the fault: they must survive it.
    RecordingWriter::Outcome before = writer.Result();
    const uint64_t fault_ms = SteadyMs();
    if (args.fault == "kill") {
      cluster.node(leader).Kill9();
    } else {
      auto admin = std::make_unique<Client>(cluster.ClientOptionsForCluster());
      auto handed = admin->Handover("", 2000);
      if (!handed.ok()) std::cerr << "handover: " << handed.status().ToString() << "\n";
    }
    const int next = cluster.WaitLeader(leader, 15000);
    if (next < 0) {
      std::cerr << "trial " << trial << ": no new leader\n";
      return 1;
    }
    // The client-visible outage: the longest gap between two consecutive acknowledged writes
    // around the fault (writes run back to back, about a millisecond apart, so this is "first
    // failed write to first successful write on the new leader").
    const uint64_t acked_at_election = writer.acked();
    WaitUntil([&] { return writer.acked() >= acked_at_election + 200; }, 1000,
              std::chrono::milliseconds(5));
    double rto = -1;
    {
      RecordingWriter::Outcome now = writer.Result();
      const std::vector<uint64_t>& t = now.success_ms;
      for (size_t i = before.success_ms.empty() ? 1 : before.success_ms.size(); i < t.size(); ++i) {
        if (t[i - 1] + 2000 < fault_ms) continue;
        rto = std::max(rto, static_cast<double>(t[i] - t[i - 1]));
      }
    }
    // Which acknowledged writes (from the previous check up to the fault) does the new leader
    // have?
    std::vector<std::string> keys(before.acked.begin() + static_cast<long>(checked_upto),
                                  before.acked.end());
    checked_upto = before.acked.size();
    uint64_t lost = 0;
    auto client = ClientOf(cluster.node(next).address(), "", false, 10000);
    for (size_t start = 0; start < keys.size(); start += 1000) {
      std::vector<std::string> batch(
          keys.begin() + static_cast<long>(start),
          keys.begin() + static_cast<long>(std::min(start + 1000, keys.size())));
      auto exists = client->BatchExistKey(batch);
      if (!exists.ok()) {
        std::cerr << "check: " << exists.status().ToString() << "\n";
        return 1;
      }
      for (const auto& e : exists.value()) {
        if (!e.ok() || !e.value()) ++lost;
      }
    }
    total_acked_checked += keys.size();
    RecordingWriter::Outcome after = writer.Result();
    const uint64_t failed = after.failed.size() - failed_seen;
    failed_seen = after.failed.size();
    total_lost += lost;
    total_failed += failed;
    if (rto >= 0) rtos.push_back(rto);
    if (args.tsv) {
      std::printf("%d\t%s\t%s\t%.0f\t%lu\t%lu\n", trial, args.fault.c_str(), args.mode.c_str(), rto,
                  static_cast<unsigned long>(lost), static_cast<unsigned long>(failed));
    } else {
      std::printf("%-6d %-10s %-6s %10.0f %8lu %8lu\n", trial, args.fault.c_str(),
                  args.mode.c_str(), rto, static_cast<unsigned long>(lost),
                  static_cast<unsigned long>(failed));
    }
    std::fflush(stdout);
    if (args.fault == "kill") {
      if (!cluster.node(leader).Start(&error)) {
        std::cerr << "restart: " << error << "\n";
        return 1;
      }
    }
  }
  writer.Stop();
  std::printf(
      "SUMMARY fault=%s mode=%s trials=%d rto_ms min=%.0f p50=%.0f p99=%.0f max=%.0f "
      "lost_acked=%lu (of %lu checked) failed_after_retries=%lu\n",
      args.fault.c_str(), args.mode.c_str(), args.trials,
      rtos.empty() ? 0 : *std::min_element(rtos.begin(), rtos.end()), Percentile(rtos, 0.5),
      Percentile(rtos, 0.99), rtos.empty() ? 0 : *std::max_element(rtos.begin(), rtos.end()),
      static_cast<unsigned long>(total_lost), static_cast<unsigned long>(total_acked_checked),
      static_cast<unsigned long>(total_failed));
  return 0;
}
