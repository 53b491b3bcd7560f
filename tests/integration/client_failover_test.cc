// The client side of issue 4 against real processes: NOT_LEADER redirects, retries, request ids
// (a repeated write applies once), leader discovery through etcd, and `tandemctl status` /
// `failover` error handling with etcd. Full failover (promotion) is tested in failover_test.cc.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "coord/membership.h"
#include "etcd_cluster.h"
#include "replication_util.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem::testing {
namespace {

using nlohmann::json;

class ClientFailoverTest : public ::testing::Test {
 protected:
  std::unique_ptr<ReplNode> Node(const std::string& id, std::vector<std::string> args) {
    auto node = std::make_unique<ReplNode>(TANDEM_MASTER_BIN, dir_.path(), id, std::move(args));
    std::string error;
    EXPECT_TRUE(node->Start(&error)) << error;
    return node;
  }

  TempDir dir_{"tandem-client-failover"};
};

ClientOptions Options(const std::string& address, bool streams) {
  ClientOptions options;
  options.address = address;
  options.use_streams = streams;
  options.timeout_ms = 2000;
  options.client_id = "writer";
  return options;
}

TEST_F(ClientFailoverTest, ClientPointedAtAStandbyEndsUpOnThePrimary) {
  auto primary = Node("p1", {"--role", "primary", "--cluster-id", "cf"});
  auto standby =
      Node("s1", {"--role", "standby", "--primary", primary->address(), "--cluster-id", "cf"});
  ASSERT_TRUE(primary->Running() && standby->Running());

  for (bool streams : {false, true}) {
    SCOPED_TRACE(streams ? "streams" : "unary");
    Client client(Options(standby->address(), streams));
    const std::string seg = streams ? "seg-s" : "seg-u";
    ASSERT_TRUE(client.MountSegment({seg, seg, 0, 1 << 20, "ep"}).ok());
    auto put = client.PutStart("key-" + seg, 100);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    ASSERT_TRUE(client.PutEnd("key-" + seg).ok());
    auto got = client.GetReplicaList("key-" + seg);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const ClientStats stats = client.Stats();
    EXPECT_GE(stats.redirects, 1u);
    EXPECT_EQ(stats.address, primary->address());
  }

  // With retries off the old behaviour stays: NOT_LEADER with the leader's address.
  ClientOptions no_retry = Options(standby->address(), false);
  no_retry.max_retry_ms = 0;
  Client once(no_retry);
  Status refused = once.PutEnd("key-seg-u");
  EXPECT_EQ(refused.code(), ErrorCode::kNotLeader);
  EXPECT_EQ(refused.leader_address(), primary->address());
}

// A write sent twice with one request id (its first answer lost) applies once; the batch forms
// dedup per item.
TEST_F(ClientFailoverTest, RepeatedRequestIdAppliesOnce) {
  auto primary = Node("p1", {"--role", "standalone"});
  Client client(Options(primary->address(), false));
  ASSERT_TRUE(client.MountSegment({"seg", "seg", 0, 1 << 20, "ep"}).ok());

  auto channel = grpc::CreateChannel(primary->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Master::NewStub(channel);
  auto put = [&](const std::string& key, const std::string& id) {
    v1::PutStartRequest request;
    request.set_key(key);
    request.set_value_size(100);
    request.set_client_id("writer");
    request.set_request_id(id);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::PutStartResponse response;
    EXPECT_TRUE(stub->PutStart(&context, request, &response).ok());
    return response;
  };
  v1::PutStartResponse first = put("k", "req-1");
  ASSERT_EQ(first.status().code(), v1::OK);
  v1::PutStartResponse again = put("k", "req-1");  // the retry after a lost answer
  ASSERT_EQ(again.status().code(), v1::OK) << again.status().message();
  ASSERT_EQ(again.replicas_size(), 1);
  EXPECT_EQ(again.replicas(0).offset(), first.replicas(0).offset());
  EXPECT_EQ(put("k", "req-2").status().code(), v1::OBJECT_ALREADY_EXISTS);  // a new request

  v1::BatchKeyRequest batch;
  batch.add_keys("k");
  batch.add_keys("missing");
  batch.set_client_id("writer");
  batch.set_request_id("batch-1");
  for (int attempt = 0; attempt < 2; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::BatchStatusResponse response;
    ASSERT_TRUE(stub->BatchPutEnd(&context, batch, &response).ok());
    ASSERT_EQ(response.items_size(), 2);
    EXPECT_EQ(response.items(0).code(), v1::OK) << "attempt " << attempt;
    EXPECT_EQ(response.items(1).code(), v1::OBJECT_NOT_FOUND);  // failed: nothing recorded
  }
  auto status = client.GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->object_count, 1u);
}

// The master stalls (SIGSTOP) past the client's per-call timeout: the client retries the same
// PutStart with the same request id, and whichever copy runs first, the caller gets success.
TEST_F(ClientFailoverTest, RetriedPutStartAfterATimeoutSucceedsOnce) {
  auto primary = Node("p1", {"--role", "standalone"});
  ClientOptions options = Options(primary->address(), true);
  options.timeout_ms = 800;  // the first attempt times out while the master is stopped
  options.max_retry_ms = 15000;
  Client client(options);
  ASSERT_TRUE(client.MountSegment({"seg", "seg", 0, 1 << 20, "ep"}).ok());
  primary->Signal(SIGSTOP);
  StatusOr<std::vector<Replica>> put = Status(ErrorCode::kInternal, "not run");
  std::thread writer([&] { put = client.PutStart("slow-key", 100); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  primary->Signal(SIGCONT);
  writer.join();
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size(), 1u);
  EXPECT_GE(client.Stats().retries, 1u);
  EXPECT_TRUE(client.PutEnd("slow-key").ok());
  auto status = client.GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->object_count, 1u);
}

// etcd names the leader: the client goes there, and follows the leader key when it changes.
class EtcdClientTest : public ClientFailoverTest {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(&error)) << error;
  }
  void Put(const std::string& key, const std::string& value) {
    CommandResult r =
        RunCommand("/usr/bin/etcdctl", {"--endpoints=" + etcd_.Endpoints(), "put", key, value});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void Delete(const std::string& key) {
    CommandResult r =
        RunCommand("/usr/bin/etcdctl", {"--endpoints=" + etcd_.Endpoints(), "del", key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void SetLeader(const std::string& cluster, const std::string& node, const std::string& address) {
    Put("/tandem/" + cluster + "/leader",
        json{{"node_id", node}, {"client_address", address}, {"replication_address", address}}
            .dump());
  }
  CommandResult Ctl(std::vector<std::string> args, const std::string& endpoints = "") {
    std::vector<std::string> all = {"--etcd-endpoints",
                                    endpoints.empty() ? etcd_.Endpoints() : endpoints};
    all.insert(all.end(), args.begin(), args.end());
    return RunCommand(TANDEMCTL_BIN, all);
  }

  EtcdCluster etcd_{1};
};

TEST_F(EtcdClientTest, ClientFollowsTheLeaderKey) {
  auto a = Node("a", {"--role", "standalone"});
  auto b = Node("b", {"--role", "standalone"});
  SetLeader("follow", "a", a->address());
  ClientOptions options = Options("127.0.0.1:1", true);  // never used: etcd names the leader
  options.etcd_endpoints = {etcd_.Endpoint(0)};
  options.cluster_id = "follow";
  Client client(options);
  ASSERT_TRUE(client.StartupStatus().ok()) << client.StartupStatus().ToString();
  ASSERT_TRUE(client.MountSegment({"seg", "seg", 0, 1 << 20, "ep"}).ok());
  EXPECT_EQ(client.Stats().address, a->address());

  SetLeader("follow", "b", b->address());
  ASSERT_TRUE(WaitUntil(
      [&] { return client.ExistKey("x").ok() && client.Stats().address == b->address(); }));
  ASSERT_TRUE(client.MountSegment({"seg-b", "seg-b", 0, 1 << 20, "ep"}).ok());
  auto on_b = client.GetStatus();
  ASSERT_TRUE(on_b.ok());
  EXPECT_EQ(on_b->node_id, "b");
  EXPECT_GE(client.Stats().leader_changes, 1u);
}

TEST_F(EtcdClientTest, BadEtcdSettingsFailClearly) {
  ClientOptions options = Options("127.0.0.1:1", false);
  options.etcd_endpoints = {etcd_.Endpoint(0)};
  options.cluster_id = "bad/id";
  Client bad_id(options);
  EXPECT_EQ(bad_id.StartupStatus().code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(bad_id.ExistKey("k").status().code(), ErrorCode::kInvalidParams);

  options.cluster_id = "ok";
  options.etcd_endpoints = {"127.0.0.1:" + std::to_string(PickFreePort())};
  Client unreachable(options);
  EXPECT_EQ(unreachable.StartupStatus().code(), ErrorCode::kUnavailable);
}

TEST_F(EtcdClientTest, TandemctlStatusShowsTheClusterFromEtcd) {
  coord::MemberInfo leader;
  leader.node_id = "n1";
  leader.role = "leader";
  leader.epoch = 7;
  leader.applied_seq = 120;
  leader.ready = true;
  leader.address = "127.0.0.1:6001";
  coord::MemberInfo follower = leader;
  follower.node_id = "n2";
  follower.role = "follower";
  follower.applied_seq = 118;
  follower.lag_ms = 15;
  follower.address = "127.0.0.1:6002";
  Put("/tandem/st/members/n1", coord::Membership::Encode(leader));
  Put("/tandem/st/members/n2", coord::Membership::Encode(follower));
  SetLeader("st", "n1", "127.0.0.1:6001");

  CommandResult r = Ctl({"--cluster-id", "st", "--json", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["leader"], "n1");
  EXPECT_GT(j["epoch"].get<int64_t>(), 0);  // the leader key's create_revision
  ASSERT_EQ(j["members"].size(), 2u);
  const json& m2 = j["members"][1];
  EXPECT_EQ(m2["node_id"], "n2");
  EXPECT_EQ(m2["role"], "follower");
  EXPECT_EQ(m2["epoch"], 7);
  EXPECT_EQ(m2["applied_seq"], 118);
  EXPECT_EQ(m2["lag_ms"], 15);
  EXPECT_EQ(m2["ready"], true);
  EXPECT_EQ(m2["address"], "127.0.0.1:6002");
  EXPECT_EQ(j.size(), 3u);
  EXPECT_EQ(m2.size(), 7u);

  CommandResult text = Ctl({"--cluster-id", "st", "status"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("leader n1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("n2"), std::string::npos) << text.out;

  // No leader: the members still print, leader null, exit 1.
  Delete("/tandem/st/leader");
  CommandResult none = Ctl({"--cluster-id", "st", "--json", "status"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(json::parse(none.out)["leader"].is_null());
  EXPECT_NE(none.err.find("no leader"), std::string::npos);
  CommandResult failover = Ctl({"--cluster-id", "st", "failover"});
  EXPECT_EQ(failover.exit_code, 1);
  EXPECT_NE(failover.err.find("no leader"), std::string::npos) << failover.err;

  // Bad cluster id: usage error; unreachable etcd: exit 3.
  CommandResult bad = Ctl({"--cluster-id", "bad.id!", "status"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("cluster id"), std::string::npos) << bad.err;
  CommandResult down =
      Ctl({"--cluster-id", "st", "status"}, "127.0.0.1:" + std::to_string(PickFreePort()));
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("etcd unreachable"), std::string::npos) << down.err;
  CommandResult half = RunCommand(TANDEMCTL_BIN, {"--cluster-id", "st", "status"});
  EXPECT_EQ(half.exit_code, 2);
}

}  // namespace
}  // namespace tandem::testing
