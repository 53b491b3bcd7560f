// The wired node: data-dir lock, bind errors, the HTTP endpoints. No gRPC headers here.
#include "server/master_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace tandem::server {
namespace {

MasterConfig LocalConfig(const std::string& data_dir) {
  MasterConfig config;
  config.listen = "127.0.0.1:0";
  config.http = "127.0.0.1:0";
  config.data_dir = data_dir;
  config.node_id = "node-test";
  config.maintenance_interval_ms = 10;
  return config;
}

class MasterServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start().ok()); }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_.http_port());
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    return client.Get(path.c_str());
  }

  testing::ScratchDir dir_;
  MasterServer server_{LocalConfig(dir_.path() + "/data")};
};

TEST_F(MasterServerTest, ResolvesRequestedPortZero) {
  EXPECT_GT(server_.grpc_port(), 0);
  EXPECT_GT(server_.http_port(), 0);
  EXPECT_EQ(server_.listen_address(), "127.0.0.1:" + std::to_string(server_.grpc_port()));
  EXPECT_EQ(server_.http_address(), "127.0.0.1:" + std::to_string(server_.http_port()));
}

TEST_F(MasterServerTest, HealthzAndReadyzAnswerOk) {
  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  httplib::Result ready = Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(Get("/nope")->status, 404);
}

TEST_F(MasterServerTest, MetricsUsePrometheusTextFormat) {
  httplib::Result metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  for (const char* line : {"tandem_up 1", "tandem_objects 0", "tandem_segments 0",
                           "tandem_applied_seq 0", "tandem_oplog_buffer_entries 0",
                           "tandem_evictions_total 0", "tandem_expired_clients_total 0",
                           "tandem_node_info{node_id=\"node-test\",role=\"standalone\"} 1",
                           "tandem_rpc_requests_total{rpc=\"PutStart\"} 0",
                           "# TYPE tandem_rpc_latency_seconds histogram"}) {
    EXPECT_NE(metrics->body.find(std::string(line) + "\n"), std::string::npos) << line;
  }
}

TEST_F(MasterServerTest, MetricsFollowTheStore) {
  meta::SegmentSpec spec;
  spec.name = "seg";
  spec.size = 1000;
  ASSERT_TRUE(server_.store().MountSegment(spec, "", 1).ok());
  httplib::Result metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tandem_segments 1\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("tandem_bytes_total 1000\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("tandem_applied_seq 1\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("tandem_oplog_buffer_entries 1\n"), std::string::npos);
}

TEST_F(MasterServerTest, StatusIsJsonDescribingTheNode) {
  httplib::Result status = Get("/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_EQ(status->get_header_value("Content-Type"), "application/json");
  const nlohmann::json json = nlohmann::json::parse(status->body);
  EXPECT_EQ(json["node_id"], "node-test");
  EXPECT_EQ(json["role"], "standalone");
  EXPECT_EQ(json["epoch"], 1);
  EXPECT_EQ(json["applied_seq"], 0);
  EXPECT_EQ(json["object_count"], 0);
  EXPECT_EQ(json["segment_count"], 0);
  EXPECT_EQ(json["bytes_used"], 0);
  EXPECT_EQ(json["bytes_total"], 0);
  EXPECT_EQ(json["state_digest"].get<std::string>().size(), 16u);
  EXPECT_TRUE(json["uptime_s"].is_number());
  EXPECT_EQ(json["listen"], server_.listen_address());
  EXPECT_EQ(json["http"], server_.http_address());
}

TEST_F(MasterServerTest, SecondMasterOnTheSameDataDirIsRefused) {
  MasterServer second(LocalConfig(dir_.path() + "/data"));
  const Status status = second.Start();
  EXPECT_EQ(status.code(), ErrorCode::kInvalidState);
  EXPECT_NE(status.message().find("in use by another tandem-master"), std::string::npos)
      << status.message();
}

TEST_F(MasterServerTest, BusyGrpcPortIsAClearError) {
  MasterConfig config = LocalConfig(dir_.path() + "/other");
  config.listen = server_.listen_address();
  MasterServer second(config);
  const Status status = second.Start();
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_NE(status.message().find(config.listen), std::string::npos) << status.message();
}

TEST_F(MasterServerTest, BusyHttpPortIsAClearError) {
  MasterConfig config = LocalConfig(dir_.path() + "/other");
  config.http = server_.http_address();
  MasterServer second(config);
  const Status status = second.Start();
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_NE(status.message().find(config.http), std::string::npos) << status.message();
  // A failed start leaves nothing behind: the data dir can be taken again.
  MasterServer third(LocalConfig(dir_.path() + "/other"));
  EXPECT_TRUE(third.Start().ok());
}

TEST_F(MasterServerTest, ShutdownIsPromptAndReleasesEverything) {
  const auto start = std::chrono::steady_clock::now();
  server_.Shutdown(std::chrono::milliseconds(500));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  server_.Shutdown();  // idempotent
  MasterServer again(LocalConfig(dir_.path() + "/data"));
  EXPECT_TRUE(again.Start().ok());
}

}  // namespace
}  // namespace tandem::server
