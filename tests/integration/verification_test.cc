// Verification with real processes on 127.0.0.1 (issue 6, "Tests"): a primary and a standby by
// flag; divergence injected on the standby through its TEST-ONLY fault hook (POST /test/fault,
// only with --enable-test-faults); `tandemctl verify` runs a whole pass and repairs it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "replication_util.h"

#ifndef TANDEM_MASTER_BIN
#error "TANDEM_MASTER_BIN must be defined by CMake"
#endif
#ifndef TANDEMCTL_BIN
#error "TANDEMCTL_BIN must be defined by CMake"
#endif

namespace tandem::testing {
namespace {

using json = nlohmann::json;
constexpr char kCluster[] = "verify-it";

class VerifyIt : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = std::filesystem::temp_directory_path() /
            ("tandem-verify-it-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(work_);
    primary_ =
        std::make_unique<ReplNode>(TANDEM_MASTER_BIN, work_.string(), "p1",
                                   std::vector<std::string>{"--role", "primary", "--cluster-id",
                                                            kCluster, "--verify-interval-s", "1"});
    std::string error;
    ASSERT_TRUE(primary_->Start(&error)) << error;
    standby_ = std::make_unique<ReplNode>(
        TANDEM_MASTER_BIN, work_.string(), "s1",
        std::vector<std::string>{"--role", "standby", "--primary", primary_->address(),
                                 "--cluster-id", kCluster, "--verify-interval-s", "0",
                                 "--verify-max-repairs", "5", "--enable-test-faults"});
    ASSERT_TRUE(standby_->Start(&error)) << error;
  }
  void TearDown() override {
    if (standby_) standby_->Stop();
    if (primary_) primary_->Stop();
    if (!HasFailure()) std::filesystem::remove_all(work_);
  }

  void Load(int keys) {
    auto c = ClientOf(primary_->address(), "loader");
    ASSERT_TRUE(c->MountSegment(Segment{"", "seg-a", 0, 64ull << 20, "a:1"}).ok());
    for (int i = 0; i < keys; ++i) {
      const std::string key = "key-" + std::to_string(i);
      ASSERT_TRUE(c->PutStart(key, 4096).ok());
      ASSERT_TRUE(c->PutEnd(key).ok());
    }
  }
  bool Converged() {
    return WaitUntil(
        [&] {
          auto p = primary_->RpcStatus();
          auto s = standby_->RpcStatus();
          return p.ok() && s.ok() && p->applied_seq == s->applied_seq &&
                 p->state_digest == s->state_digest;
        },
        200);
  }
  std::string Fault(const std::string& kind, const std::string& key) {
    CommandResult r = RunCommand("/usr/bin/curl", {"-s", "-d", "", "-X", "POST",
                                                   "http://" + standby_->http_address() +
                                                       "/test/fault?kind=" + kind + "&key=" + key});
    return r.out;
  }
  json Verify(const std::string& address, int* exit_code) {
    CommandResult r = RunCommand(TANDEMCTL_BIN, {"--master", address, "--json", "verify"});
    *exit_code = r.exit_code;
    return json::parse(r.out, nullptr, false);
  }

  std::filesystem::path work_;
  std::unique_ptr<ReplNode> primary_;
  std::unique_ptr<ReplNode> standby_;
};

TEST_F(VerifyIt, EachDivergenceIsFoundRepairedCountedAndShown) {
  Load(200);
  ASSERT_TRUE(Converged());
  int code = -1;
  json ok = Verify(standby_->address(), &code);
  EXPECT_EQ(code, 0) << ok.dump();
  EXPECT_EQ(ok.value("status", ""), "ok");
  EXPECT_EQ(ok.value("shards", 0), 1024);
  EXPECT_EQ(ok.value("mismatches", 1), 0);

  EXPECT_EQ(Fault("change_replica", "key-1"), "ok\n");
  EXPECT_EQ(Fault("drop_key", "key-2"), "ok\n");
  EXPECT_EQ(Fault("add_key", "ghost"), "ok\n");
  ASSERT_NE(primary_->RpcStatus()->state_digest, standby_->RpcStatus()->state_digest);
  json fixed = Verify(standby_->address(), &code);
  EXPECT_EQ(code, 0) << fixed.dump();
  EXPECT_EQ(fixed.value("status", ""), "repaired");
  EXPECT_EQ(fixed.value("mismatches", 0), 3);
  EXPECT_EQ(fixed.value("repairs", 0), 3);
  EXPECT_TRUE(Converged());
  auto st = standby_->StatusJson();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ((*st)["verification"].value("repairs", 0), 3) << st->dump();
  auto metrics = HttpGet(standby_->http_port(), "/metrics", 1000);
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("tandem_verify_repairs_total 3"), std::string::npos);
  // The primary's DIGEST entries reach the standby.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto j = standby_->StatusJson();
        return j && (*j)["verification"].value("digest_checks", 0) > 0;
      },
      100));
}

TEST_F(VerifyIt, MoreThanMaxRepairsForcesAFullSyncAndEndsEqual) {
  Load(100);
  ASSERT_TRUE(Converged());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(Fault("drop_key", "key-" + std::to_string(i)), "ok\n");
  int code = -1;
  json r = Verify(standby_->address(), &code);
  EXPECT_EQ(r.value("status", ""), "full_sync") << r.dump();
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(Converged());
}

TEST_F(VerifyIt, VerifyAgainstThePrimaryIsAClearError) {
  int code = -1;
  CommandResult r = RunCommand(TANDEMCTL_BIN, {"--master", primary_->address(), "verify"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not a standby"), std::string::npos) << r.err;
  (void)code;
  // And the fault hook does not exist without the flag.
  CommandResult f = RunCommand(
      "/usr/bin/curl", {"-s", "-d", "", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                        "http://" + primary_->http_address() + "/test/fault?kind=drop_key&key=x"});
  EXPECT_EQ(f.out, "404");
}

}  // namespace
}  // namespace tandem::testing
