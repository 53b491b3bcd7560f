// The master's HTTP endpoints, and its survival of garbage: junk bytes on the gRPC port, a
// truncated HTTP/2 preface, malformed HTTP requests. After each, it must still serve.
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "master_fixture.h"

namespace tandem::testing {
namespace {

class RobustnessTest : public MasterTest {
 protected:
  void ExpectStillServes() {
    auto c = NewClient("after", /*streams=*/true);
    ASSERT_OK(c->GetStatus());
    ASSERT_OK(c->ExistKey("k"));
    auto health = HttpGet(master_->http_port(), "/healthz");
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->status, 200);
    EXPECT_TRUE(master_->process()->Running());
  }
};

TEST_F(RobustnessTest, HttpEndpointsAnswer) {
  ASSERT_OK(NewClient()->MountSegment(MakeSegment("seg", 1 << 20)));
  auto ready = HttpGet(master_->http_port(), "/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
  auto metrics = HttpGet(master_->http_port(), "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("tandem_"), std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE"), std::string::npos);
  auto status = HttpGet(master_->http_port(), "/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->status, 200);
  auto j = nlohmann::json::parse(status->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status->body;
  EXPECT_EQ(j["node_id"], "m1");
  auto missing = HttpGet(master_->http_port(), "/no-such-page");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(RobustnessTest, JunkOnTheGrpcPortIsSurvived) {
  std::mt19937 rng(7);
  std::string junk(64 * 1024, '\0');
  for (char& ch : junk) ch = static_cast<char>(rng());
  SendRaw(master_->grpc_port(), junk, 500);
  SendRaw(master_->grpc_port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 500);
  // A valid HTTP/2 preface followed by a frame header that claims 16 MiB of garbage.
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  preface += std::string("\xff\xff\xff\x00\x00\x00\x00\x00\x01", 9) + junk.substr(0, 1000);
  SendRaw(master_->grpc_port(), preface, 500);
  SendRaw(master_->grpc_port(), "PRI * HTTP/2.0\r\n", 300);  // truncated, then closed
  ExpectStillServes();
}

TEST_F(RobustnessTest, MalformedHttpRequestsAreSurvived) {
  const int port = master_->http_port();
  SendRaw(port, "BLAH\r\n\r\n", 500);
  SendRaw(port, "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n\r\n", 500);
  SendRaw(port, "GET /healthz HTTP/1.1\r\nContent-Length: -7\r\n\r\n", 500);
  SendRaw(port, "POST /status HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nshort", 500);
  SendRaw(port, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 500);  // TLS
  SendRaw(port, "GET /metrics HTTP/1.1\r\n", 300);  // never finished
  ExpectStillServes();
}

TEST_F(RobustnessTest, SigtermStopsTheMasterCleanly) {
  const auto start = std::chrono::steady_clock::now();
  const int status = master_->Stop(std::chrono::milliseconds(5000));
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// Open streams and idle connections may delay the stop (gRPC's shutdown grace) but must not
// turn it into a hang or a crash.
TEST_F(RobustnessTest, SigtermWithClientsConnectedStillExitsCleanly) {
  auto streamed = NewClient("s", /*streams=*/true), unary = NewClient("u");
  ASSERT_OK(streamed->ExistKey("k"));
  ASSERT_OK(unary->GetStatus());
  const auto start = std::chrono::steady_clock::now();
  const int status = master_->Stop(std::chrono::milliseconds(10000));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  RecordProperty("stop_ms", static_cast<int>(ms));
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_CODE(streamed->ExistKey("k"), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace tandem::testing
