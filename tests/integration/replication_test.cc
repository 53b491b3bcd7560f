// OpLog replication with real processes on 127.0.0.1 (issue 3, "Tests"): a primary and standbys
// started by flag, driven through tandem::Client, observed through /status, GetStatus and
// tandemctl. Convergence is "same applied_seq and same state_digest" (the digest covers the full
// replicated state, leases excluded), plus equal counters and segment lists.
//
// Not here: the corrupted-entry case (no fault hook in the binary; covered by
// tests/unit/replication/stream_test.cc). Nothing is persisted yet, so a restarted standby is an
// empty node: resuming from an applied seq is exercised by a stall (SIGSTOP/SIGCONT), not a
// restart.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
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

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr char kCluster[] = "repl-it";
constexpr int kWaitTries = 200;  // x 50 ms = 10 s, the bound of every "eventually"

Segment MakeSegment(const std::string& name, uint64_t size) {
  return Segment{"", name, 0, size, name + ".node:7000"};
}

std::string Str(const json& j, const char* pointer) {
  const json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_string() ? j.at(p).get<std::string>() : std::string();
}
uint64_t U64(const json& j, const char* pointer) {
  const json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_number_unsigned() ? j.at(p).get<uint64_t>() : 0;
}

// "id|name|base|size|endpoint" of every segment, sorted: the comparable form of a segment list.
std::vector<std::string> SegmentKeys(const MasterStatus& st) {
  std::vector<std::string> keys;
  for (const Segment& s : st.segments) {
    keys.push_back(s.id + "|" + s.name + "|" + std::to_string(s.base) + "|" +
                   std::to_string(s.size) + "|" + s.endpoint);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

bool HasSegment(const MasterStatus& st, const std::string& name) {
  return std::any_of(st.segments.begin(), st.segments.end(),
                     [&](const Segment& s) { return s.name == name; });
}

// The value of an unlabelled Prometheus counter/gauge in /metrics, or -1.
double MetricValue(int http_port, const std::string& name) {
  auto response = HttpGet(http_port, "/metrics", 1000);
  if (!response) return -1;
  std::istringstream lines(response->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

class ReplicationTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& node : nodes_) {
        std::cerr << "---- " << node->node_id() << " log tail ----\n" << node->LogTail() << "\n";
      }
    }
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) (*it)->Stop();
  }

  // A node not yet started.
  ReplNode* NewNode(const std::string& id, std::vector<std::string> args, int grpc_port = 0) {
    nodes_.push_back(
        std::make_unique<ReplNode>(TANDEM_MASTER_BIN, dir_.path(), id, std::move(args), grpc_port));
    return nodes_.back().get();
  }

  ReplNode* Launch(ReplNode* node) {
    std::string error;
    if (!node->Start(&error)) {
      ADD_FAILURE() << error;
      return nullptr;
    }
    return node;
  }

  static std::vector<std::string> PrimaryArgs(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--role", "primary", "--cluster-id", kCluster};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static std::vector<std::string> StandbyArgs(const std::string& primary,
                                              const std::string& cluster = kCluster) {
    return {"--role", "standby", "--primary", primary, "--cluster-id", cluster};
  }

  ReplNode* StartPrimary(const std::string& id, std::vector<std::string> extra = {}) {
    return Launch(NewNode(id, PrimaryArgs(std::move(extra))));
  }
  ReplNode* StartStandby(const std::string& id, const std::string& primary,
                         const std::string& cluster = kCluster) {
    return Launch(NewNode(id, StandbyArgs(primary, cluster)));
  }

  // /status of `node`; a few tries (a loaded machine may miss one 1 s probe), else {}.
  static json StatusJson(const ReplNode* node) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (auto st = node->StatusJson()) return *st;
    }
    return json::object();
  }

  // The primary's record of `standby_id` in /status, or an empty object.
  static json StandbyRecord(const ReplNode* primary, const std::string& standby_id) {
    const json st = StatusJson(primary);
    const json::json_pointer p("/replication/standbys");
    if (!st.contains(p)) return json::object();
    for (const json& s : st.at(p)) {
      if (s.value("standby_id", "") == standby_id) return s;
    }
    return json::object();
  }

  static bool WaitStandbyStreaming(const ReplNode* primary, const std::string& standby_id) {
    return WaitUntil(
        [&] { return StandbyRecord(primary, standby_id).value("state", "") == "streaming"; },
        kWaitTries);
  }

  static bool WaitFollowerState(const ReplNode* standby, const std::string& state,
                                int tries = kWaitTries) {
    return WaitUntil(
        [&] { return Str(StatusJson(standby), "/replication/follower/state") == state; }, tries);
  }

  // Quiesced: every standby reports the primary's applied_seq, and the primary's seq did not move
  // while they were asked. Fills `out` with {primary, standbys...} as of that moment.
  static bool WaitQuiesced(const ReplNode* primary, const std::vector<const ReplNode*>& standbys,
                           std::vector<MasterStatus>* out, std::string* why,
                           int tries = kWaitTries) {
    return WaitUntil(
        [&] {
          auto before = primary->RpcStatus();
          if (!before.ok()) {
            *why = "primary GetStatus: " + before.status().ToString();
            return false;
          }
          std::vector<MasterStatus> all = {before.value()};
          *why = "primary applied_seq " + std::to_string(before->applied_seq);
          bool same = true;
          for (const ReplNode* s : standbys) {
            auto st = s->RpcStatus();
            if (!st.ok()) {
              *why += ", " + s->node_id() + ": " + st.status().ToString();
              return false;
            }
            *why += ", " + s->node_id() + " " + std::to_string(st->applied_seq);
            same &= st->applied_seq == before->applied_seq;
            all.push_back(st.value());
          }
          auto after = primary->RpcStatus();
          if (!same || !after.ok() || after->applied_seq != before->applied_seq) return false;
          *out = std::move(all);
          return true;
        },
        tries);
  }

  // Every status in `all` describes the same state as all[0] (the primary).
  static void ExpectSameState(const std::vector<MasterStatus>& all) {
    ASSERT_FALSE(all.empty());
    const MasterStatus& p = all[0];
    EXPECT_FALSE(p.state_digest.empty());
    for (size_t i = 1; i < all.size(); ++i) {
      const MasterStatus& s = all[i];
      SCOPED_TRACE("standby " + s.node_id + " vs primary " + p.node_id);
      EXPECT_EQ(s.applied_seq, p.applied_seq);
      EXPECT_EQ(s.epoch, p.epoch);
      EXPECT_EQ(s.state_digest, p.state_digest);
      EXPECT_EQ(s.object_count, p.object_count);
      EXPECT_EQ(s.segment_count, p.segment_count);
      EXPECT_EQ(s.bytes_used, p.bytes_used);
      EXPECT_EQ(s.bytes_total, p.bytes_total);
      EXPECT_EQ(SegmentKeys(s), SegmentKeys(p));
    }
  }

  // Quiesce, then expect equal states; returns the statuses ({} if it never quiesced).
  std::vector<MasterStatus> ExpectConverged(const ReplNode* primary,
                                            const std::vector<const ReplNode*>& standbys) {
    std::vector<MasterStatus> all;
    std::string why;
    const auto start = Clock::now();
    if (!WaitQuiesced(primary, standbys, &all, &why)) {
      ADD_FAILURE() << "not quiesced after 10 s: " << why;
      return {};
    }
    std::cout << "[ converged ] at seq " << all[0].applied_seq << " in "
              << std::chrono::duration_cast<milliseconds>(Clock::now() - start).count()
              << " ms, digest " << all[0].state_digest << ", " << all[0].object_count
              << " objects\n";
    ExpectSameState(all);
    return all;
  }

  // The digest of a node that holds nothing, from a fresh standalone node.
  std::string EmptyDigest() {
    ReplNode* empty = Launch(NewNode("empty-ref", {"--role", "standalone"}));
    if (empty == nullptr) return "";
    StatusOr<MasterStatus> st = Status(ErrorCode::kUnavailable, "not asked");
    WaitUntil([&] { return (st = empty->RpcStatus()).ok(); }, 20);
    empty->Stop();
    if (!st.ok()) {
      ADD_FAILURE() << "GetStatus of a fresh standalone node: " << st.status().ToString();
    }
    return st.ok() ? st->state_digest : "";
  }

  TempDir dir_{"tandem-repl-it"};
  std::vector<std::unique_ptr<ReplNode>> nodes_;
};

// ---- 1 + 5: primary and two standbys, every op type ----

TEST_F(ReplicationTest, PrimaryAndTwoStandbysConvergeOnAMixedWorkloadOfEveryOpType) {
  ReplNode* primary = StartPrimary(
      "p", {"--client-ttl-ms", "1500", "--put-timeout-ms", "300", "--eviction-high-watermark",
            "0.5", "--eviction-ratio", "0.2", "--maintenance-interval-ms", "50"});
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ReplNode* s2 = StartStandby("s2", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s1")) << StatusJson(primary).dump();
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s2")) << StatusJson(primary).dump();

  auto op = ClientOf(primary->address());                 // operator: static segments
  auto eph = ClientOf(primary->address(), "ephemeral");   // never pings: its segment expires
  auto w = ClientOf(primary->address(), "writer", true);  // pipelined streams
  ASSERT_OK(op->MountSegment(MakeSegment("seg-a", kMiB)));
  ASSERT_OK(op->MountSegment(MakeSegment("seg-b", kMiB)));
  ASSERT_OK(eph->MountSegment(MakeSegment("seg-eph", kMiB)));

  // Completed puts: some with two replicas, some on the segment that will expire, some on the
  // one that stays (obj-5 among them: it is read back at the end).
  for (int i = 0; i < 16; ++i) {
    const std::string key = "obj-" + std::to_string(i);
    const std::string where = i % 4 == 0 ? "seg-eph" : i % 4 == 1 ? "seg-a" : "";
    const PutOptions o{i % 3 == 0 ? 2u : 1u, where, false};
    ASSERT_OK(w->PutStart(key, 16 * kKiB, o));
    ASSERT_OK(w->PutEnd(key));
  }
  for (int i = 0; i < 3; ++i) {  // left PROCESSING on the segment that stays: reaped
    ASSERT_OK(w->PutStart("stale-" + std::to_string(i), 8 * kKiB, PutOptions{1, "seg-a", false}));
  }
  for (int i = 0; i < 3; ++i) {
    const std::string key = "revoked-" + std::to_string(i);
    ASSERT_OK(w->PutStart(key, 8 * kKiB));
    ASSERT_OK(w->PutRevoke(key));
  }
  ASSERT_OK(w->Remove("obj-1"));
  ASSERT_OK(w->Remove("obj-2"));
  ASSERT_OK(w->GetReplicaList("obj-5"));  // a read lease (not replicated): RemoveAll keeps obj-5
  auto removed = w->RemoveAll();
  ASSERT_OK(removed);
  EXPECT_GE(removed->removed, 10u);
  EXPECT_GE(removed->kept, 1u);
  for (int i = 0; i < 8; ++i) {
    const std::string key = "post-" + std::to_string(i);
    const PutOptions o{1, i % 2 == 0 ? "seg-b" : "", false};
    ASSERT_OK(w->PutStart(key, 16 * kKiB, o));
    ASSERT_OK(w->PutEnd(key));
  }
  ASSERT_OK(op->UnmountSegment("seg-b"));  // its objects go with it
  // Eviction: fill well past the 50 % watermark, slowly enough for the 50 ms timer to keep up.
  int ev_ok = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "ev-" + std::to_string(i);
    if (w->PutStart(key, 64 * kKiB).ok() && w->PutEnd(key).ok()) ++ev_ok;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(ev_ok, 10);

  // The primary's timers did their part: client expired, stale puts reaped, objects evicted.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = primary->RpcStatus();
        return st.ok() && !HasSegment(st.value(), "seg-eph");
      },
      kWaitTries))
      << "seg-eph never expired";
  EXPECT_TRUE(
      WaitUntil([&] { return U64(StatusJson(primary), "/processing_count") == 0; }, kWaitTries))
      << "stale puts never reaped: " << StatusJson(primary).dump();
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = primary->RpcStatus();
        return st.ok() && st->bytes_used * 2 <= st->bytes_total &&
               MetricValue(primary->http_port(), "tandem_evicted_objects_total") >= 1;
      },
      kWaitTries))
      << "no eviction below the watermark";
  EXPECT_GE(MetricValue(primary->http_port(), "tandem_expired_clients_total"), 1);
  EXPECT_GE(MetricValue(primary->http_port(), "tandem_reaped_puts_total"), 3);

  std::vector<MasterStatus> all = ExpectConverged(primary, {s1, s2});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_GT(all[0].applied_seq, 60u);
  EXPECT_FALSE(HasSegment(all[1], "seg-eph"));
  EXPECT_FALSE(HasSegment(all[2], "seg-b"));
  EXPECT_TRUE(HasSegment(all[2], "seg-a"));
  EXPECT_EQ(all[0].role, "leader");
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].role, "follower");
    ASSERT_TRUE(all[i].follower.has_value());
    EXPECT_EQ(all[i].follower->state, "streaming");
    EXPECT_EQ(all[i].follower->refused_entries, 0u);
    EXPECT_EQ(all[i].follower->primary_address, primary->address());
  }

  // 5: async lag after quiescing: every standby streaming, acked up to the primary's seq.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = primary->RpcStatus();
        if (!st.ok() || st->standbys.size() != 2) return false;
        return std::all_of(st->standbys.begin(), st->standbys.end(), [&](const StandbyInfo& s) {
          return s.state == "streaming" && s.lag_entries == 0 && s.acked_seq == st->applied_seq;
        });
      },
      kWaitTries))
      << StatusJson(primary).dump();

  // Spot checks with tandemctl: status digests on all three, and reads refused by standbys.
  for (const ReplNode* node : {primary, s1, s2}) {
    CommandResult r = RunCommand(TANDEMCTL_BIN, {"--master", node->address(), "--json", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out, nullptr, false);
    EXPECT_EQ(j.value("state_digest", ""), all[0].state_digest) << node->node_id();
    EXPECT_EQ(j.value("applied_seq", uint64_t{0}), all[0].applied_seq) << node->node_id();
  }
  CommandResult got =
      RunCommand(TANDEMCTL_BIN, {"--master", primary->address(), "--json", "get", "obj-5"});
  EXPECT_EQ(got.exit_code, 0) << got.out << got.err;
  CommandResult refused =
      RunCommand(TANDEMCTL_BIN, {"--master", s1->address(), "--json", "get", "obj-5"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("NOT_LEADER"), std::string::npos) << refused.out;
  auto via_standby = NoRetryClientOf(s2->address(), "writer")->PutStart("on-standby", kKiB);
  EXPECT_EQ(via_standby.status().code(), ErrorCode::kNotLeader);
  EXPECT_EQ(via_standby.status().leader_address(), primary->address());
  auto s2_after = s2->RpcStatus();
  ASSERT_OK(s2_after);
  EXPECT_EQ(s2_after->state_digest, all[0].state_digest) << "a refused write changed a standby";
}

// ---- 2: kill -9 a standby mid-stream, keep writing, restart it ----

class StandbyRestartTest : public ReplicationTest {
 protected:
  // Kills s1 mid-stream under a writer, writes `while_down` more entries, restarts s1 (same id and
  // ports, fresh data dir) and returns its follower status once converged.
  json KillRestartAndConverge(ReplNode* primary, ReplNode* s1, uint64_t while_down) {
    BackgroundWriter writer(primary->address(), "w");
    EXPECT_TRUE(WaitUntil([&] { return U64(StatusJson(s1), "/applied_seq") >= 200; }, kWaitTries))
        << "standby never got going: " << StatusJson(s1).dump();
    s1->Kill9();
    EXPECT_FALSE(s1->Running());
    const uint64_t at_kill = U64(StatusJson(primary), "/applied_seq");
    EXPECT_TRUE(
        WaitUntil([&] { return U64(StatusJson(primary), "/applied_seq") >= at_kill + while_down; },
                  kWaitTries))
        << "writer stalled while the standby was down";
    EXPECT_TRUE(
        WaitUntil([&] { return StandbyRecord(primary, "s1").value("state", "") == "disconnected"; },
                  kWaitTries))
        << StatusJson(primary).dump();
    std::string error;
    EXPECT_TRUE(s1->Start(&error)) << error;
    EXPECT_TRUE(WaitFollowerState(s1, "streaming")) << StatusJson(s1).dump();
    // Keep writing a little after it is back, then stop and compare.
    const uint64_t back_at = U64(StatusJson(primary), "/applied_seq");
    EXPECT_TRUE(WaitUntil([&] { return U64(StatusJson(primary), "/applied_seq") >= back_at + 200; },
                          kWaitTries));
    writer.Stop();
    std::cout << "[ writer    ] " << writer.acked() << " puts acknowledged, " << writer.errors()
              << " errors\n";
    EXPECT_EQ(writer.errors(), 0u);
    ExpectConverged(primary, {s1});
    return StatusJson(s1);
  }
};

TEST_F(StandbyRestartTest, KilledStandbyRestartedEmptyConvergesInsideTheBuffer) {
  ReplNode* primary = StartPrimary("p");
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));
  const json follower = KillRestartAndConverge(primary, s1, 500);
  // The restarted process is empty; the primary still holds seq 1, so replaying the whole
  // window (incremental from 0) is as valid as a full sync.
  std::cout << "[ restarted ] follower " << follower["replication"]["follower"].dump()
            << "\n[ primary   ] " << StandbyRecord(primary, "s1").dump() << "\n";
  EXPECT_EQ(Str(follower, "/replication/follower/state"), "streaming");
  EXPECT_EQ(U64(follower, "/replication/follower/refused_entries"), 0u);
}

TEST_F(StandbyRestartTest, KilledStandbyOutsideATinyBufferFullSyncsAndConverges) {
  ReplNode* primary = StartPrimary("p", {"--oplog-buffer-entries", "50"});
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));
  const json follower = KillRestartAndConverge(primary, s1, 500);
  std::cout << "[ restarted ] follower " << follower["replication"]["follower"].dump()
            << "\n[ primary   ] " << StandbyRecord(primary, "s1").dump() << "\n";
  EXPECT_GE(U64(follower, "/replication/follower/full_syncs"), 1u);
  auto rpc = s1->RpcStatus();
  ASSERT_OK(rpc);
  ASSERT_TRUE(rpc->follower.has_value());
  EXPECT_GE(rpc->follower->full_syncs, 1u);
  EXPECT_GE(U64(StandbyRecord(primary, "s1"), "/full_syncs"), 1u);
}

// A network-level interruption (the standby frozen with SIGSTOP past its 2 s primary timeout,
// then resumed) under a writer: the standby keeps its state, falls behind, and catches up from its
// applied seq without a full sync (the primary's window is the default 1 M entries).
TEST_F(StandbyRestartTest, StalledStandbyCatchesUpWithoutAFullSync) {
  ReplNode* primary = StartPrimary("p");
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));
  BackgroundWriter writer(primary->address(), "w");
  ASSERT_TRUE(WaitUntil([&] { return U64(StatusJson(s1), "/applied_seq") >= 200; }, kWaitTries));
  s1->Signal(SIGSTOP);
  const uint64_t at_stop = U64(StatusJson(primary), "/applied_seq");
  std::this_thread::sleep_for(milliseconds(2500));
  const json behind = StandbyRecord(primary, "s1");
  s1->Signal(SIGCONT);
  EXPECT_GE(U64(StatusJson(primary), "/applied_seq"), at_stop + 100) << "writer stalled too";
  EXPECT_GE(U64(behind, "/lag_entries"), 100u)
      << "the frozen standby did not fall behind: " << behind.dump();
  const uint64_t back_at = U64(StatusJson(primary), "/applied_seq");
  EXPECT_TRUE(WaitUntil([&] { return U64(StatusJson(primary), "/applied_seq") >= back_at + 200; },
                        kWaitTries));
  writer.Stop();
  EXPECT_EQ(writer.errors(), 0u);
  ExpectConverged(primary, {s1});
  const json f = StatusJson(s1);
  std::cout << "[ stalled   ] primary saw " << behind.dump() << "\n[ resumed   ] follower "
            << f["replication"]["follower"].dump() << "\n";
  EXPECT_EQ(U64(f, "/replication/follower/full_syncs"), 0u);
  EXPECT_EQ(U64(StandbyRecord(primary, "s1"), "/full_syncs"), 0u);
  EXPECT_EQ(Str(f, "/replication/follower/state"), "streaming");
}

// ---- 5: async lag under load, then zero once quiesced ----

TEST_F(ReplicationTest, AsyncStandbysReportZeroLagAndStreamingOnceQuiesced) {
  ReplNode* primary = StartPrimary("p");
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ReplNode* s2 = StartStandby("s2", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));
  uint64_t max_lag = 0, samples = 0;
  {
    BackgroundWriter a(primary->address(), "a"), b(primary->address(), "b");
    const auto deadline = Clock::now() + milliseconds(1500);
    while (Clock::now() < deadline) {
      const json st = StatusJson(primary);
      for (const json& s : st.value(json::json_pointer("/replication/standbys"), json::array())) {
        max_lag = std::max(max_lag, s.value("lag_entries", uint64_t{0}));
        ++samples;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    a.Stop();
    b.Stop();
    EXPECT_EQ(a.errors() + b.errors(), 0u);
    std::cout << "[ load      ] " << a.acked() + b.acked() << " puts; max lag_entries seen "
              << max_lag << " over " << samples << " samples\n";
  }
  std::vector<MasterStatus> all = ExpectConverged(primary, {s1, s2});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_GT(all[0].applied_seq, 500u);
  json last;
  EXPECT_TRUE(WaitUntil(
      [&] {
        last = StatusJson(primary);
        const json standbys =
            last.value(json::json_pointer("/replication/standbys"), json::array());
        if (standbys.size() != 2) return false;
        for (const json& s : standbys) {
          if (s.value("state", "") != "streaming" || s.value("lag_entries", 1) != 0 ||
              s.value("lag_ms", 1) != 0 ||
              s.value("acked_seq", uint64_t{0}) != all[0].applied_seq) {
            return false;
          }
        }
        return true;
      },
      kWaitTries))
      << last.dump();
  for (const ReplNode* s : {s1, s2}) {
    const json f = StatusJson(s);
    EXPECT_EQ(Str(f, "/replication/follower/state"), "streaming") << f.dump();
    EXPECT_EQ(U64(f, "/replication/follower/lag_entries"), 0u) << f.dump();
    EXPECT_EQ(U64(f, "/replication/follower/lag_ms"), 0u) << f.dump();
    EXPECT_EQ(U64(f, "/replication/follower/applied_seq"), all[0].applied_seq) << f.dump();
  }
}

// ---- 3: sync mode ----

TEST_F(ReplicationTest, SyncModeEveryAcknowledgedWriteSurvivesKillNineOfThePrimary) {
  ReplNode* primary = StartPrimary("p", {"--replication", "sync", "--min-sync-acks", "1"});
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s1")) << StatusJson(primary).dump();
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));

  // Unique keys, PutStart + PutEnd only: every acknowledged PutEnd is one COMPLETE object.
  auto client = ClientOf(primary->address(), "writer", true, 2000);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> put_ends_sent{0};
  std::mutex mu;
  std::vector<std::string> acked_keys;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 1000000 && !stop; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!client->PutStart(key, kKiB).ok()) {
          std::this_thread::sleep_for(milliseconds(5));
          continue;
        }
        ++put_ends_sent;
        if (client->PutEnd(key).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked_keys.push_back(key);
        }
      }
    });
  }
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked_keys.size();
  };
  const bool loaded = WaitUntil([&] { return acked_count() >= 300; }, kWaitTries);
  const json before_kill = StatusJson(primary);
  primary->Kill9();  // mid-load: writers have requests in flight
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_TRUE(loaded) << "sync writes too slow: " << acked_count();
  EXPECT_GE(U64(before_kill, "/replication/sync/waits"), 1u) << before_kill.dump();
  EXPECT_EQ(U64(before_kill, "/replication/sync/timeouts"), 0u) << before_kill.dump();

  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(mu);
    keys = acked_keys;
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_TRUE(std::adjacent_find(keys.begin(), keys.end()) == keys.end())
      << "a key acknowledged twice";
  ASSERT_TRUE(WaitUntil(
      [&] { return Str(StatusJson(s1), "/replication/follower/state") == "disconnected"; },
      kWaitTries))
      << StatusJson(s1).dump();
  const json st = StatusJson(s1);
  const uint64_t complete = U64(st, "/object_count") - U64(st, "/processing_count");
  std::cout << "[ sync kill ] acknowledged PutEnds " << keys.size() << ", PutEnds sent "
            << put_ends_sent.load() << ", COMPLETE objects on the standby " << complete
            << " (processing " << U64(st, "/processing_count") << ", applied_seq "
            << U64(st, "/applied_seq") << ")\n";
  // Each acknowledged key is a distinct COMPLETE object, and a COMPLETE object needs a PutEnd:
  // acked <= complete <= sent. (The standby refuses reads, so keys are checked by count.)
  EXPECT_GE(complete, keys.size());
  EXPECT_LE(complete, put_ends_sent.load());
  EXPECT_TRUE(s1->Running());
}

TEST_F(ReplicationTest, SyncModeFailsWithReplicationTimeoutWhenItsOnlyStandbyDies) {
  ReplNode* primary = StartPrimary(
      "p", {"--replication", "sync", "--replication-timeout-ms", "500", "--sync-fallback", "fail"});
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s1")) << StatusJson(primary).dump();
  auto c = ClientOf(primary->address(), "writer", false, 5000);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));
  ASSERT_OK(c->PutStart("before", kKiB));
  ASSERT_OK(c->PutEnd("before"));

  s1->Kill9();
  for (int i = 0; i < 2; ++i) {
    const auto start = Clock::now();
    auto r = c->PutStart("after-" + std::to_string(i), kKiB);
    const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
    std::cout << "[ fail mode ] write " << i << ": " << r.status().ToString() << " after "
              << elapsed << " ms\n";
    EXPECT_EQ(r.status().code(), ErrorCode::kReplicationTimeout) << r.status().ToString();
    EXPECT_LE(elapsed, 500 + 1500);
  }
  // Not asserted (semantics not specified): a write that timed out was still applied locally.
  auto exists = c->ExistKey("after-0");
  std::cout << "[ fail mode ] after-0 on the primary after its REPLICATION_TIMEOUT: "
            << (exists.ok() ? (exists.value() ? "present" : "absent") : exists.status().ToString())
            << "\n";
  const json st = StatusJson(primary);
  EXPECT_GE(U64(st, "/replication/sync/timeouts"), 2u) << st.dump();
  EXPECT_EQ(U64(st, "/replication/sync/degraded"), 0u) << st.dump();
  EXPECT_FALSE(st.value(json::json_pointer("/replication/sync/is_degraded"), true)) << st.dump();

  // The standby back (empty, same id and address): acknowledged writes again, and convergence
  // including the writes that timed out (they were applied on the primary, just not confirmed).
  std::string error;
  ASSERT_TRUE(s1->Start(&error)) << error;
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s1")) << StatusJson(primary).dump();
  ASSERT_OK(c->PutStart("recovered", kKiB));
  ASSERT_OK(c->PutEnd("recovered"));
  ExpectConverged(primary, {s1});
}

TEST_F(ReplicationTest, SyncModeDegradesToAsyncWhenConfigured) {
  ReplNode* primary = StartPrimary("p", {"--replication", "sync", "--replication-timeout-ms", "500",
                                         "--sync-fallback", "degrade"});
  ASSERT_NE(primary, nullptr);
  ReplNode* s1 = StartStandby("s1", primary->address());
  ASSERT_NE(s1, nullptr);
  ASSERT_TRUE(WaitStandbyStreaming(primary, "s1")) << StatusJson(primary).dump();
  auto c = ClientOf(primary->address(), "writer", false, 5000);
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 1024 * kMiB)));

  s1->Kill9();
  auto start = Clock::now();
  ASSERT_OK(c->PutStart("first", kKiB));
  ASSERT_OK(c->PutEnd("first"));
  const auto first_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  EXPECT_LE(first_ms, 2 * (500 + 1500));
  start = Clock::now();
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(c->PutStart("next-" + std::to_string(i), kKiB));
    ASSERT_OK(c->PutEnd("next-" + std::to_string(i)));
  }
  const auto next_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  std::cout << "[ degrade   ] first write " << first_ms << " ms, 20 more in " << next_ms << " ms\n";
  EXPECT_LT(next_ms, 20 * 500 / 2) << "degraded writes still wait for the timeout";
  const json st = StatusJson(primary);
  EXPECT_GE(U64(st, "/replication/sync/degraded"), 1u) << st.dump();
  EXPECT_TRUE(st.value(json::json_pointer("/replication/sync/is_degraded"), false)) << st.dump();
}

// ---- 4: bad input ----

TEST_F(ReplicationTest, StandbyCannotBeConfiguredToFollowItself) {
  const int port = PickFreePort(), http = PickFreePort();
  const std::string self = "127.0.0.1:" + std::to_string(port);
  CommandResult r =
      RunCommand(TANDEM_MASTER_BIN,
                 {"--role", "standby", "--primary", self, "--listen", self, "--http",
                  "127.0.0.1:" + std::to_string(http), "--data-dir", dir_.path() + "/self-data",
                  "--cluster-id", kCluster, "--node-id", "self"},
                 milliseconds(10000));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot follow itself"), std::string::npos) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_FALSE(PortAcceptsConnections(port));
}

// Its own address spelled differently passes the config check; the node then refuses itself.
TEST_F(ReplicationTest, StandbyReachingItselfUnderAnotherNameIsRefusedAndStaysEmpty) {
  const std::string empty = EmptyDigest();
  ASSERT_FALSE(empty.empty());
  const int port = PickFreePort();
  ReplNode* self = Launch(NewNode("self", StandbyArgs("localhost:" + std::to_string(port)), port));
  ASSERT_NE(self, nullptr);
  ASSERT_TRUE(WaitFollowerState(self, "error")) << StatusJson(self).dump();
  const json st = StatusJson(self);
  std::cout << "[ self      ] " << Str(st, "/replication/follower/last_error") << "\n";
  EXPECT_NE(Str(st, "/replication/follower/last_error").find("itself"), std::string::npos)
      << st.dump();
  EXPECT_EQ(U64(st, "/applied_seq"), 0u);
  EXPECT_EQ(Str(st, "/state_digest"), empty);
  EXPECT_TRUE(self->Running());
}

class BadUpstreamTest : public ReplicationTest {
 protected:
  // A primary with some state and one good standby, converged.
  void SetUp() override {
    empty_ = EmptyDigest();
    ASSERT_FALSE(empty_.empty());
    primary_ = StartPrimary("p");
    ASSERT_NE(primary_, nullptr);
    good_ = StartStandby("s-good", primary_->address());
    ASSERT_NE(good_, nullptr);
    auto c = ClientOf(primary_->address(), "writer");
    ASSERT_OK(ClientOf(primary_->address())->MountSegment(MakeSegment("seg", 64 * kMiB)));
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(c->PutStart("k" + std::to_string(i), kKiB));
      ASSERT_OK(c->PutEnd("k" + std::to_string(i)));
    }
    before_ = ExpectConverged(primary_, {good_});
    ASSERT_EQ(before_.size(), 2u);
    ASSERT_NE(before_[0].state_digest, empty_);
  }

  // `bad` ends up in "error" with `reason` in last_error, holding nothing; nobody else changed.
  // `state`: "error" for a permanent refusal; "disconnected" for "not a primary", which is
  // retried with the normal back-off (during a failover it lasts a moment).
  void ExpectRefusedAndUntouched(ReplNode* bad, const std::string& reason,
                                 const std::string& state = "error") {
    ASSERT_TRUE(WaitUntil([&] {
      const json st = StatusJson(bad);
      return Str(st, "/replication/follower/state") == state &&
             Str(st, "/replication/follower/last_error").find(reason) != std::string::npos;
    })) << StatusJson(bad).dump();
    const json st = StatusJson(bad);
    std::cout << "[ refused   ] " << Str(st, "/replication/follower/last_error") << "\n";
    EXPECT_NE(Str(st, "/replication/follower/last_error").find(reason), std::string::npos)
        << st.dump();
    EXPECT_EQ(U64(st, "/applied_seq"), 0u);
    EXPECT_EQ(U64(st, "/replication/follower/applied_seq"), 0u);
    EXPECT_EQ(U64(st, "/object_count"), 0u);
    EXPECT_EQ(U64(st, "/segment_count"), 0u);
    EXPECT_EQ(Str(st, "/state_digest"), empty_);
    EXPECT_TRUE(bad->Running());
    auto write = NoRetryClientOf(bad->address(), "writer")->PutStart("via-bad", kKiB);
    EXPECT_EQ(write.status().code(), ErrorCode::kNotLeader) << write.status().ToString();
    EXPECT_EQ(Str(StatusJson(bad), "/state_digest"), empty_);

    std::vector<MasterStatus> after = ExpectConverged(primary_, {good_});
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].applied_seq, before_[0].applied_seq);
    EXPECT_EQ(after[0].state_digest, before_[0].state_digest);
    ASSERT_EQ(after[0].standbys.size(), 1u) << "the refused standby was registered";
    EXPECT_EQ(after[0].standbys[0].standby_id, "s-good");
    EXPECT_EQ(after[0].standbys[0].state, "streaming");
    ASSERT_TRUE(after[1].follower.has_value());
    EXPECT_EQ(after[1].follower->state, "streaming");
  }

  std::string empty_;
  ReplNode* primary_ = nullptr;
  ReplNode* good_ = nullptr;
  std::vector<MasterStatus> before_;
};

TEST_F(BadUpstreamTest, StandbyFollowingAStandbyIsRefusedAndStaysEmpty) {
  ReplNode* bad = StartStandby("s-bad", good_->address());
  ASSERT_NE(bad, nullptr);
  ExpectRefusedAndUntouched(bad, "not a primary", "disconnected");
}

TEST_F(BadUpstreamTest, StandbyOfAnotherClusterIsRefusedAndStaysEmpty) {
  ReplNode* bad = StartStandby("s-other", primary_->address(), "other-cluster");
  ASSERT_NE(bad, nullptr);
  ExpectRefusedAndUntouched(bad, "cluster id mismatch");
}

// Nothing listens at --primary: disconnected, retrying with backoff, no crash; once a primary
// appears at that address the standby follows it.
TEST_F(ReplicationTest, StandbyOfAClosedPortKeepsRetryingThenFollows) {
  const std::string empty = EmptyDigest();
  ASSERT_FALSE(empty.empty());
  const int primary_port = PickFreePort();  // nothing listens there yet
  const std::string primary_address = "127.0.0.1:" + std::to_string(primary_port);
  ReplNode* s1 = StartStandby("s1", primary_address);
  ASSERT_NE(s1, nullptr);
  json st;
  ASSERT_TRUE(WaitUntil(
      [&] {
        st = StatusJson(s1);
        return Str(st, "/replication/follower/state") == "disconnected" &&
               U64(st, "/replication/follower/reconnects") >= 2;
      },
      kWaitTries))
      << st.dump();
  std::cout << "[ closed    ] " << st["replication"]["follower"].dump() << "\n";
  EXPECT_FALSE(Str(st, "/replication/follower/last_error").empty());
  EXPECT_EQ(Str(st, "/replication/follower/primary_address"), primary_address);
  EXPECT_EQ(U64(st, "/applied_seq"), 0u);
  EXPECT_EQ(Str(st, "/state_digest"), empty);
  EXPECT_TRUE(s1->Running());

  ReplNode* primary = Launch(NewNode("p", PrimaryArgs({}), primary_port));
  ASSERT_NE(primary, nullptr);
  auto c = ClientOf(primary->address(), "writer");
  ASSERT_OK(ClientOf(primary->address())->MountSegment(MakeSegment("seg", 64 * kMiB)));
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(c->PutStart("k" + std::to_string(i), kKiB));
    ASSERT_OK(c->PutEnd("k" + std::to_string(i)));
  }
  ASSERT_TRUE(WaitFollowerState(s1, "streaming")) << StatusJson(s1).dump();
  ExpectConverged(primary, {s1});
}

}  // namespace
}  // namespace tandem::testing
