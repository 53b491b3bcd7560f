// Snapshots, the local write-ahead log and cold start with real tandem-master processes on
// 127.0.0.1 (issue 5, "Tests"): kill -9 under load and restart on the same data dir (standalone
// in always mode; primary + standby), a damaged newest snapshot, a WAL cut mid-record, a snapshot
// taken while writing loaded into fresh nodes, tandemctl snapshot and bad durability flags; the
// OpLog window refilled from the WAL at restart (standbys resume incrementally, new ones sync
// from the snapshot) and truncated by snapshots except what a connected standby still needs.
// Every process is stopped by PID; every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "replication_util.h"
#include "status_macros.h"
#include "test_cluster.h"

#ifndef TANDEM_MASTER_BIN
#error "TANDEM_MASTER_BIN must be defined by CMake"
#endif
#ifndef TANDEMCTL_BIN
#error "TANDEMCTL_BIN must be defined by CMake"
#endif

namespace tandem::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr char kCluster[] = "dur-it";
constexpr int kWaitTries = 200;  // x 50 ms = 10 s, the bound of every "eventually"

std::unique_ptr<Client> ClientFor(MasterProcess& node, const std::string& id = "",
                                  bool streams = false) {
  return ClientOf(node.address(), id, streams, 3000);
}

MasterStatus StatusOfNode(MasterProcess& node) {
  auto status = ClientFor(node)->GetStatus();
  EXPECT_TRUE(status.ok()) << status.status().ToString();
  return status.ok() ? status.value() : MasterStatus{};
}

std::optional<json> StatusJson(MasterProcess& node) {
  auto response = HttpGet(node.http_port(), "/status", 2000);
  if (!response || response->status != 200) return std::nullopt;
  json j = json::parse(response->body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void Kill9(MasterProcess& node) {
  ASSERT_NE(node.process(), nullptr);
  node.process()->Signal(SIGKILL);
  ASSERT_TRUE(node.process()->WaitExit(milliseconds(5000)));
}

// Snapshot files of a data dir, oldest first.
std::vector<std::string> Snapshots(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir + "/snapshots", ec)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".snap")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Waits until every write the WAL holds is durable (interval mode flushes within ms).
bool WaitWalDurable(MasterProcess& node) {
  return WaitUntil(
      [&] {
        auto j = StatusJson(node);
        return j && (*j)["durability"]["wal"]["durable_seq"] == (*j)["applied_seq"];
      },
      kWaitTries);
}

// Writers that remember exactly which keys were acknowledged (PutEnd OK).
class AckedWriters {
 public:
  AckedWriters(const std::string& address, const std::string& prefix, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, address, prefix, t] {
        auto client = ClientOf(address, "", true, 1000);
        for (int i = 0; i < 1000000 && !stop_; ++i) {
          const std::string key = prefix + "-" + std::to_string(t) + "-" + std::to_string(i);
          if (client->PutStart(key, 1024).ok() && client->PutEnd(key).ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            acked_.push_back(key);
          } else {
            ++errors_;
            std::this_thread::sleep_for(milliseconds(5));
          }
        }
      });
    }
  }
  ~AckedWriters() { Stop(); }
  // Asks the writers to stop after their current operation (e.g. right before a kill -9, so
  // they do not keep retrying against a dead node).
  void RequestStop() { stop_ = true; }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> errors_{0};
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::vector<std::thread> threads_;
};

class DurabilityIt : public ::testing::Test {
 protected:
  MasterProcess& AddNode(const std::string& node_id, std::vector<std::string> args) {
    MasterOptions options;
    options.node_id = node_id;
    options.extra_args = {"--cluster-id", kCluster};
    options.extra_args.insert(options.extra_args.end(), args.begin(), args.end());
    nodes_.push_back(std::make_unique<MasterProcess>(TANDEM_MASTER_BIN, dir_.path(), options));
    return *nodes_.back();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (auto& node : nodes_) {
        std::cerr << "---- log tail of " << node->log_path() << " ----\n"
                  << ReadFile(node->log_path())
                         .substr(std::max<size_t>(ReadFile(node->log_path()).size(), 4000) - 4000)
                  << "\n";
      }
    }
    for (auto& node : nodes_) node->Stop();
  }

  static void Mount(MasterProcess& node) {
    ASSERT_OK(ClientFor(node)->MountSegment(Segment{"", "pool", 0, 1ull << 40, "pool:1"}));
  }
  static void PutKeys(MasterProcess& node, const std::string& prefix, int n) {
    auto client = ClientFor(node);
    for (int i = 0; i < n; ++i) {
      const std::string key = prefix + std::to_string(i);
      ASSERT_OK(client->PutStart(key, 4096));
      ASSERT_OK(client->PutEnd(key));
    }
  }

  TempDir dir_{"tandem-dur-it"};
  std::vector<std::unique_ptr<MasterProcess>> nodes_;
};

// (a) Standalone, --wal-fsync always: kill -9 under load, restart on the same data dir. Every
// acknowledged write is there, and the recovered state is stable (a second restart gives the
// same seq and digest).
TEST_F(DurabilityIt, StandaloneKill9UnderLoadLosesNoAcknowledgedWrite) {
  MasterProcess& node = AddNode("a1", {"--wal-fsync", "always", "--snapshot-interval-s", "1"});
  std::string error;
  ASSERT_TRUE(node.Start(&error)) << error;
  Mount(node);
  auto writers = std::make_unique<AckedWriters>(node.address(), "load", 3);
  std::this_thread::sleep_for(milliseconds(2500));  // spans at least one periodic snapshot
  writers->RequestStop();                           // operations in flight still race the kill
  Kill9(node);
  // Restart while the writers wind down (their clients retry for a while); a write that lands
  // on the restarted node is acknowledged and checked like the others.
  ASSERT_TRUE(node.Restart(&error)) << error;
  writers->Stop();
  const std::vector<std::string> acked = writers->acked();
  ASSERT_GT(acked.size(), 50u);
  auto client = ClientFor(node);
  for (size_t begin = 0; begin < acked.size(); begin += 500) {
    std::vector<std::string> keys(acked.begin() + begin,
                                  acked.begin() + std::min(acked.size(), begin + 500));
    auto exists = client->BatchExistKey(keys);
    ASSERT_OK(exists);
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(exists.value()[i].ok() && exists.value()[i].value())
          << "acknowledged key " << keys[i] << " lost";
    }
  }
  const MasterStatus first = StatusOfNode(node);
  auto j = StatusJson(node);
  ASSERT_TRUE(j);
  // Late writes of the winding-down writers may have landed after the recovery.
  EXPECT_LE((*j)["durability"]["recovery"]["seq"].get<uint64_t>(), first.applied_seq);
  EXPECT_GT((*j)["durability"]["recovery"]["seq"].get<uint64_t>(), 0u);
  EXPECT_FALSE((*j)["recovering"].get<bool>());
  EXPECT_NE((*j)["durability"]["recovery"]["snapshot"], "") << j->dump();

  Kill9(node);
  ASSERT_TRUE(node.Restart(&error)) << error;
  const MasterStatus second = StatusOfNode(node);
  EXPECT_EQ(second.applied_seq, first.applied_seq);
  EXPECT_EQ(second.state_digest, first.state_digest);
  EXPECT_EQ(second.object_count, first.object_count);
}

// (b) Primary + standby, both killed -9 under load and restarted on their data dirs: each
// recovers its own state, the standby resumes, and both converge (and keep converging).
TEST_F(DurabilityIt, PrimaryAndStandbyKill9BothRecoverAndResume) {
  MasterProcess& primary = AddNode("p1", {"--role", "primary", "--snapshot-interval-s", "1"});
  std::string error;
  ASSERT_TRUE(primary.Start(&error)) << error;
  MasterProcess& standby = AddNode(
      "s1", {"--role", "standby", "--primary", primary.address(), "--snapshot-interval-s", "1"});
  ASSERT_TRUE(standby.Start(&error)) << error;
  Mount(primary);
  {
    AckedWriters writers(primary.address(), "b", 2);
    std::this_thread::sleep_for(milliseconds(2000));
    writers.RequestStop();
    Kill9(standby);
    Kill9(primary);
  }
  ASSERT_TRUE(primary.Restart(&error)) << error;
  ASSERT_TRUE(standby.Restart(&error)) << error;
  auto pj = StatusJson(primary);
  auto sj = StatusJson(standby);
  ASSERT_TRUE(pj && sj);
  EXPECT_GT((*pj)["durability"]["recovery"]["seq"].get<uint64_t>(), 0u) << pj->dump();
  EXPECT_GT((*sj)["durability"]["recovery"]["seq"].get<uint64_t>(), 0u) << sj->dump();
  auto converged = [&] {
    auto p = ClientFor(primary)->GetStatus();
    auto s = ClientFor(standby)->GetStatus();
    return p.ok() && s.ok() && p->applied_seq > 0 && p->applied_seq == s->applied_seq &&
           p->state_digest == s->state_digest;
  };
  ASSERT_TRUE(WaitUntil(converged, kWaitTries)) << "standby did not catch up after restart";
  const uint64_t before = StatusOfNode(primary).applied_seq;
  PutKeys(primary, "after-", 50);
  ASSERT_TRUE(WaitUntil(converged, kWaitTries)) << "standby did not follow new writes";
  EXPECT_EQ(StatusOfNode(standby).applied_seq, before + 100);
}

// (c) A damaged newest snapshot: the previous snapshot plus the WAL recover the same state, and
// the log names the skipped file and why.
TEST_F(DurabilityIt, DamagedNewestSnapshotFallsBackToPreviousPlusWal) {
  MasterProcess& node =
      AddNode("c1", {"--snapshot-interval-s", "0", "--wal-segment-bytes", "8192"});
  std::string error;
  ASSERT_TRUE(node.Start(&error)) << error;
  Mount(node);
  PutKeys(node, "first-", 200);
  ASSERT_OK(ClientFor(node)->Snapshot());
  PutKeys(node, "second-", 200);
  auto newest = ClientFor(node)->Snapshot();
  ASSERT_OK(newest);
  PutKeys(node, "third-", 50);
  const MasterStatus before = StatusOfNode(node);
  node.Stop();
  const std::vector<std::string> files = Snapshots(node.data_dir());
  ASSERT_EQ(files.size(), 2u);
  ASSERT_TRUE(files.back().ends_with(newest->id));
  {
    std::fstream f(files.back(), std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(fs::file_size(files.back()) / 2);
    f.seekg(middle);
    const char byte = static_cast<char>(f.get());
    f.seekp(middle);
    f.put(static_cast<char>(byte ^ 0x40));
  }
  ASSERT_TRUE(node.Restart(&error)) << error;
  const MasterStatus after = StatusOfNode(node);
  EXPECT_EQ(after.applied_seq, before.applied_seq);
  EXPECT_EQ(after.state_digest, before.state_digest);
  const std::string log = ReadFile(node.log_path());
  EXPECT_NE(log.find("skipping snapshot " + newest->id), std::string::npos) << log;
  auto j = StatusJson(node);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["durability"]["recovery"]["skipped_snapshots"], 1);
  EXPECT_EQ((*j)["durability"]["recovery"]["snapshot"],
            fs::path(files.front()).filename().string());
}

// (d) The WAL cut mid-record (a torn write): recovery stops at the last whole record, and the
// node continues the log from there.
TEST_F(DurabilityIt, WalCutMidRecordRecoversToTheLastWholeRecord) {
  MasterProcess& node = AddNode("d1", {"--snapshot-interval-s", "0"});
  std::string error;
  ASSERT_TRUE(node.Start(&error)) << error;
  Mount(node);
  PutKeys(node, "k", 40);
  const uint64_t last = StatusOfNode(node).applied_seq;  // 1 mount + 80 entries
  node.Stop();
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(node.data_dir() + "/wal")) {
    if (e.path().extension() == ".log") segments.push_back(e.path());
  }
  ASSERT_FALSE(segments.empty());
  std::sort(segments.begin(), segments.end());
  fs::resize_file(segments.back(), fs::file_size(segments.back()) - 5);
  ASSERT_TRUE(node.Restart(&error)) << error;
  EXPECT_EQ(StatusOfNode(node).applied_seq, last - 1);
  // k39's PutEnd was the torn record: the object is there, still PROCESSING; a new write takes
  // seq `last` and survives the next restart (the WAL continues cleanly after the cut).
  auto torn = ClientFor(node)->ExistKey("k39");
  EXPECT_TRUE(torn.ok() && torn.value());
  PutKeys(node, "more", 1);
  const MasterStatus before = StatusOfNode(node);
  EXPECT_EQ(before.applied_seq, last + 1);
  ASSERT_TRUE(WaitWalDurable(node));  // interval mode: durable within --wal-fsync-interval-ms
  Kill9(node);
  ASSERT_TRUE(node.Restart(&error)) << error;
  EXPECT_EQ(StatusOfNode(node).applied_seq, before.applied_seq);
  EXPECT_EQ(StatusOfNode(node).state_digest, before.state_digest);
}

// (e) A snapshot taken while writing is the exact state at its seq: a fresh node loaded from it
// alone is at that seq, and that node plus the primary's WAL equals the primary. A snapshot taken
// with writes paused loads into a node whose digest equals the primary's at that very seq.
TEST_F(DurabilityIt, SnapshotWhileWritingEqualsThePrimaryAtItsSeq) {
  MasterProcess& primary = AddNode("e1", {"--snapshot-interval-s", "0"});
  std::string error;
  ASSERT_TRUE(primary.Start(&error)) << error;
  Mount(primary);
  PutKeys(primary, "base-", 300);
  StatusOr<SnapshotResult> during = Status(ErrorCode::kInternal, "not taken");
  {
    BackgroundWriter writer(primary.address(), "w", 4);
    std::this_thread::sleep_for(milliseconds(500));
    during = ClientFor(primary)->Snapshot();
    std::this_thread::sleep_for(milliseconds(300));
    writer.Stop();
  }
  ASSERT_OK(during);
  const MasterStatus final_state = StatusOfNode(primary);
  ASSERT_GT(final_state.applied_seq, during->seq) << "no write landed after the snapshot";
  ASSERT_TRUE(WaitWalDurable(primary));

  auto seed = [&](const std::string& node_id, const std::string& snapshot_id, bool with_wal) {
    const std::string data = dir_.path() + "/" + node_id + "-data";
    fs::create_directories(data + "/snapshots");
    fs::copy_file(primary.data_dir() + "/snapshots/" + snapshot_id,
                  data + "/snapshots/" + snapshot_id);
    if (with_wal) fs::copy(primary.data_dir() + "/wal", data + "/wal", fs::copy_options::recursive);
  };
  // From the snapshot alone: exactly its seq.
  seed("e2", during->id, false);
  MasterProcess& alone = AddNode("e2", {"--snapshot-interval-s", "0"});
  ASSERT_TRUE(alone.Start(&error)) << error;
  const MasterStatus at_snapshot = StatusOfNode(alone);
  EXPECT_EQ(at_snapshot.applied_seq, during->seq);
  EXPECT_EQ(at_snapshot.object_count, during->object_count);
  // Snapshot + the primary's WAL: the primary's final state.
  seed("e3", during->id, true);
  MasterProcess& replayed = AddNode("e3", {"--snapshot-interval-s", "0"});
  ASSERT_TRUE(replayed.Start(&error)) << error;
  const MasterStatus replayed_state = StatusOfNode(replayed);
  EXPECT_EQ(replayed_state.applied_seq, final_state.applied_seq);
  EXPECT_EQ(replayed_state.state_digest, final_state.state_digest);
  // Writes paused: the primary's digest at the snapshot's seq is its current digest.
  auto quiet = ClientFor(primary)->Snapshot();
  ASSERT_OK(quiet);
  const MasterStatus primary_now = StatusOfNode(primary);
  ASSERT_EQ(quiet->seq, primary_now.applied_seq);
  seed("e4", quiet->id, false);
  MasterProcess& exact = AddNode("e4", {"--snapshot-interval-s", "0"});
  ASSERT_TRUE(exact.Start(&error)) << error;
  const MasterStatus exact_state = StatusOfNode(exact);
  EXPECT_EQ(exact_state.applied_seq, primary_now.applied_seq);
  EXPECT_EQ(exact_state.state_digest, primary_now.state_digest);
}

// (f) tandemctl snapshot, and bad durability settings fail with a clear message and exit code.
TEST_F(DurabilityIt, TandemctlSnapshotAndBadInput) {
  MasterProcess& node = AddNode("f1", {});
  std::string error;
  ASSERT_TRUE(node.Start(&error)) << error;
  Mount(node);
  PutKeys(node, "k", 10);
  CommandResult text = RunCommand(TANDEMCTL_BIN, {"--master", node.address(), "snapshot"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("snapshot snapshot-"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("10 objects"), std::string::npos) << text.out;
  CommandResult js = RunCommand(TANDEMCTL_BIN, {"--master", node.address(), "--json", "snapshot"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  json j = json::parse(js.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.out;
  EXPECT_EQ(j["seq"], 21);
  EXPECT_EQ(j["objects"], 10);
  EXPECT_GT(j["bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(j.contains("id") && j.contains("seconds") && j.contains("epoch"));
  EXPECT_TRUE(fs::exists(node.data_dir() + "/snapshots/" + j["id"].get<std::string>()));
  auto metrics = HttpGet(node.http_port(), "/metrics", 2000);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tandem_snapshots_taken_total 2"), std::string::npos);
  EXPECT_NE(metrics->body.find("tandem_wal_durable_seq"), std::string::npos);

  const int unreachable = PickFreePort();
  CommandResult down = RunCommand(
      TANDEMCTL_BIN,
      {"--master", "127.0.0.1:" + std::to_string(unreachable), "--timeout-ms", "500", "snapshot"});
  EXPECT_EQ(down.exit_code, 3) << down.err;

  // Bad flags: exit 2 with a one-line reason. An unusable directory: exit 1, and the log says
  // which flag and why.
  const std::string base = dir_.path() + "/bad";
  fs::create_directories(base);
  std::ofstream(base + "/a-file") << "x";
  auto master = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--listen",   "127.0.0.1:" + std::to_string(PickFreePort()),
                                     "--http",     "127.0.0.1:" + std::to_string(PickFreePort()),
                                     "--data-dir", base + "/data"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCommand(TANDEM_MASTER_BIN, args, milliseconds(10000));
  };
  CommandResult fsync = master({"--wal-fsync", "sometimes"});
  EXPECT_EQ(fsync.exit_code, 2);
  EXPECT_NE(fsync.err.find("invalid --wal-fsync 'sometimes'"), std::string::npos) << fsync.err;
  CommandResult interval = master({"--snapshot-interval-s", "-5"});
  EXPECT_EQ(interval.exit_code, 2);
  EXPECT_NE(interval.err.find("--snapshot-interval-s"), std::string::npos) << interval.err;
  CommandResult dir = master({"--snapshot-dir", base + "/a-file/snapshots"});
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_NE((dir.out + dir.err).find("--snapshot-dir"), std::string::npos) << dir.out << dir.err;
  EXPECT_NE((dir.out + dir.err).find("a-file"), std::string::npos) << dir.out << dir.err;
}

// The primary's /status entry for standby `id` (null when it has none).
json StandbyEntry(MasterProcess& primary, const std::string& id) {
  auto j = StatusJson(primary);
  if (!j) return json();
  for (const json& standby : (*j)["replication"]["standbys"]) {
    if (standby["standby_id"] == id) return standby;
  }
  return json();
}

bool Converged(MasterProcess& primary, MasterProcess& standby) {
  auto p = ClientFor(primary)->GetStatus();
  auto s = ClientFor(standby)->GetStatus();
  return p.ok() && s.ok() && p->applied_seq > 0 && p->applied_seq == s->applied_seq &&
         p->state_digest == s->state_digest;
}

// The primary saw `id` acknowledge its last seq.
bool Acked(MasterProcess& primary, const std::string& id) {
  json standby = StandbyEntry(primary, id);
  auto p = ClientFor(primary)->GetStatus();
  return p.ok() && !standby.is_null() && standby["acked_seq"] == p->applied_seq;
}

// (g) A primary restarted on its data dir refills its OpLog window from the WAL tail: a standby
// that stopped inside that tail resumes incrementally (no full sync), and a new standby, out of
// the window, full-syncs from the primary's snapshot plus the log after it.
TEST_F(DurabilityIt, RestartedPrimaryResumesStandbysFromItsWalTail) {
  MasterProcess& primary = AddNode("g1", {"--role", "primary", "--snapshot-interval-s", "0"});
  std::string error;
  ASSERT_TRUE(primary.Start(&error)) << error;
  const std::vector<std::string> standby_flags = {
      "--role", "standby", "--primary", primary.address(), "--snapshot-interval-s", "0"};
  MasterProcess& standby = AddNode("g2", standby_flags);
  ASSERT_TRUE(standby.Start(&error)) << error;
  Mount(primary);
  PutKeys(primary, "a-", 50);
  ASSERT_TRUE(WaitUntil([&] { return Converged(primary, standby); }, kWaitTries));
  auto snap = ClientFor(primary)->Snapshot();
  ASSERT_OK(snap);
  PutKeys(primary, "b-", 20);
  ASSERT_TRUE(WaitUntil([&] { return Converged(primary, standby); }, kWaitTries));
  const uint64_t standby_at = StatusOfNode(standby).applied_seq;
  ASSERT_GT(standby_at, snap->seq);
  standby.Stop();
  PutKeys(primary, "c-", 30);
  const MasterStatus before = StatusOfNode(primary);
  primary.Stop();  // graceful: the WAL is flushed and fsynced
  ASSERT_TRUE(primary.Restart(&error)) << error;

  auto pj = StatusJson(primary);
  ASSERT_TRUE(pj);
  const json& oplog = (*pj)["durability"]["oplog"];
  EXPECT_EQ(oplog["first_seq"], snap->seq + 1) << pj->dump();
  EXPECT_EQ(oplog["last_seq"], before.applied_seq) << pj->dump();
  EXPECT_EQ(oplog["refilled_entries"], before.applied_seq - snap->seq) << pj->dump();

  ASSERT_TRUE(standby.Restart(&error)) << error;
  ASSERT_TRUE(WaitUntil([&] { return Converged(primary, standby); }, kWaitTries))
      << "the standby did not catch up with the restarted primary";
  json seen = StandbyEntry(primary, "g2");
  ASSERT_FALSE(seen.is_null());
  EXPECT_EQ(seen["full_syncs"], 0) << seen.dump();
  EXPECT_NE(seen["last_sync_reason"].get<std::string>().find("resumes after seq " +
                                                             std::to_string(standby_at)),
            std::string::npos)
      << seen.dump();
  EXPECT_NE(ReadFile(primary.log_path())
                .find("standby g2 (epoch 1, seq " + std::to_string(standby_at) +
                      ") resumes incrementally"),
            std::string::npos);

  // A new standby: seq 1 left the window long ago; the snapshot plus the window serve it.
  MasterProcess& fresh = AddNode("g3", standby_flags);
  ASSERT_TRUE(fresh.Start(&error)) << error;
  ASSERT_TRUE(WaitUntil([&] { return Converged(primary, fresh); }, kWaitTries));
  json fresh_seen = StandbyEntry(primary, "g3");
  EXPECT_EQ(fresh_seen["full_syncs"], 1) << fresh_seen.dump();
  EXPECT_EQ(fresh_seen["full_syncs_from_snapshot"], 1) << fresh_seen.dump();
  EXPECT_EQ(fresh_seen["last_image"],
            "snapshot " + snap->id + " at seq " + std::to_string(snap->seq))
      << fresh_seen.dump();
  PutKeys(primary, "d-", 5);
  ASSERT_TRUE(WaitUntil([&] { return Converged(primary, fresh) && Converged(primary, standby); },
                        kWaitTries));
  auto metrics = HttpGet(primary.http_port(), "/metrics", 2000);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tandem_standby_full_syncs_from_snapshot_total 1"),
            std::string::npos);
}

// (h) A snapshot truncates the primary's OpLog window, but never past what a connected standby
// still needs: a standby stalled (SIGSTOP, its stream stays open) keeps its entries and catches
// up incrementally after SIGCONT. Once it is caught up, the next snapshot truncates to itself.
TEST_F(DurabilityIt, SnapshotSparesTheLogAConnectedLaggingStandbyNeeds) {
  MasterProcess& primary = AddNode("h1", {"--role", "primary", "--snapshot-interval-s", "0"});
  std::string error;
  ASSERT_TRUE(primary.Start(&error)) << error;
  MasterProcess& standby = AddNode(
      "h2", {"--role", "standby", "--primary", primary.address(), "--snapshot-interval-s", "0"});
  ASSERT_TRUE(standby.Start(&error)) << error;
  Mount(primary);
  PutKeys(primary, "a-", 30);
  ASSERT_TRUE(
      WaitUntil([&] { return Converged(primary, standby) && Acked(primary, "h2"); }, kWaitTries));
  const uint64_t acked = StandbyEntry(primary, "h2")["acked_seq"].get<uint64_t>();

  standby.process()->Signal(SIGSTOP);
  PutKeys(primary, "lag-", 40);  // async replication: acknowledged without the standby
  auto snap = ClientFor(primary)->Snapshot();
  ASSERT_OK(snap);
  ASSERT_GT(snap->seq, acked + 1);
  auto pj = StatusJson(primary);
  ASSERT_TRUE(pj);
  json seen = StandbyEntry(primary, "h2");
  EXPECT_EQ(seen["state"], "streaming") << seen.dump();
  EXPECT_EQ(seen["acked_seq"], acked) << seen.dump();
  EXPECT_EQ((*pj)["durability"]["oplog"]["truncated_before"], acked + 1) << pj->dump();
  EXPECT_LE((*pj)["durability"]["oplog"]["first_seq"].get<uint64_t>(), acked + 1) << pj->dump();
  EXPECT_NE(ReadFile(primary.log_path())
                .find("connected standbys need from seq " + std::to_string(acked + 1)),
            std::string::npos);

  standby.process()->Signal(SIGCONT);
  ASSERT_TRUE(
      WaitUntil([&] { return Converged(primary, standby) && Acked(primary, "h2"); }, kWaitTries));
  EXPECT_EQ(StandbyEntry(primary, "h2")["full_syncs"], 0);

  auto caught_up = ClientFor(primary)->Snapshot();
  ASSERT_OK(caught_up);
  pj = StatusJson(primary);
  ASSERT_TRUE(pj);
  // Nothing after the snapshot is needed; the newest entry is kept so the window never empties.
  EXPECT_EQ((*pj)["durability"]["oplog"]["first_seq"], caught_up->seq) << pj->dump();
  EXPECT_EQ((*pj)["durability"]["oplog"]["last_seq"], caught_up->seq) << pj->dump();
}

}  // namespace
}  // namespace tandem::testing
