// tandemctl end to end against a real master: every command, exit codes (0 ok, 1 domain error,
// 2 usage, 3 unreachable), one-line errors on stderr, and --json output parsed with nlohmann.
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "master_fixture.h"

#ifndef TANDEMCTL_BIN
#error "TANDEMCTL_BIN must be defined by CMake"
#endif

namespace tandem::testing {
namespace {

using nlohmann::json;

class TandemctlTest : public MasterTest {
 protected:
  std::vector<std::string> MasterArgs() const override {
    return {"--lease-ttl-default-ms", "1500"};
  }

  CommandResult Ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--master", master_->address(), "--timeout-ms", "3000"});
    return RunCommand(TANDEMCTL_BIN, args);
  }

  // Runs with --json, expects `exit_code`, and returns the single JSON object printed.
  json CtlJson(std::vector<std::string> args, int exit_code = 0) const {
    args.insert(args.begin(), "--json");
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, exit_code) << "stdout: " << r.out << "\nstderr: " << r.err;
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not one JSON object: " << r.out;
    return j;
  }
};

// An error is exactly one line on stderr.
void ExpectOneLineError(const CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
}

TEST_F(TandemctlTest, MountPutGetExistsRmRoundTrip) {
  EXPECT_EQ(Ctl({"mount", "seg-a", "64MiB", "--endpoint", "10.0.0.5:7000"}).exit_code, 0);
  EXPECT_EQ(Ctl({"mount", "seg-b", "1G", "--base", "0x100000"}).exit_code, 0);

  json put = CtlJson({"put", "obj", "64KiB", "--replicas", "2", "--client-id", "w1"});
  EXPECT_EQ(put["key"], "obj");
  EXPECT_EQ(put["size"], 65536);
  EXPECT_EQ(put["replicas"].size(), 2u);

  json got = CtlJson({"get", "obj"});
  ASSERT_EQ(got["replicas"].size(), 2u);
  std::set<std::string> names;
  for (const json& r : got["replicas"]) {
    names.insert(r["segment_name"].get<std::string>());
    EXPECT_EQ(r["size"], 65536);
    EXPECT_EQ(r["status"], "COMPLETE");
    EXPECT_EQ(r["address"].get<uint64_t>(),
              r["offset"].get<uint64_t>() + (r["segment_name"] == "seg-b" ? 0x100000u : 0u));
    for (const char* field : {"segment_id", "endpoint", "offset"}) EXPECT_TRUE(r.contains(field));
    if (r["segment_name"] == "seg-a") {
      EXPECT_EQ(r["endpoint"], "10.0.0.5:7000");
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"seg-a", "seg-b"}));
  EXPECT_EQ(got["lease_ttl_ms"], 1500);

  EXPECT_EQ(CtlJson({"exists", "obj"})["exists"], true);
  EXPECT_EQ(CtlJson({"exists", "nope"})["exists"], false);
  CommandResult human = Ctl({"exists", "obj"});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_EQ(human.out, "true\n");

  ASSERT_EQ(Ctl({"get", "obj"}).exit_code, 0);  // a fresh 1.5 s lease
  CommandResult leased = Ctl({"rm", "obj"});
  EXPECT_EQ(leased.exit_code, 1);
  ExpectOneLineError(leased, "OBJECT_HAS_LEASE");
  EXPECT_TRUE(WaitUntil([&] { return Ctl({"rm", "obj"}).exit_code == 0; }, 80));
  json missing = CtlJson({"get", "obj"}, 1);
  EXPECT_EQ(missing["error"], "OBJECT_NOT_FOUND");
  EXPECT_TRUE(missing["message"].is_string());
}

TEST_F(TandemctlTest, DomainErrorsExitOneWithTheirCode) {
  ASSERT_EQ(Ctl({"mount", "seg", "1MiB", "--client-id", "node-1"}).exit_code, 0);
  ExpectOneLineError(Ctl({"mount", "seg", "1MiB"}), "SEGMENT_ALREADY_EXISTS");
  EXPECT_EQ(CtlJson({"mount", "seg", "1MiB"}, 1)["error"], "SEGMENT_ALREADY_EXISTS");
  EXPECT_EQ(CtlJson({"mount", "zero", "0"}, 1)["error"], "INVALID_PARAMS");
  EXPECT_EQ(CtlJson({"put", "k", "0"}, 1)["error"], "INVALID_PARAMS");
  EXPECT_EQ(CtlJson({"put", "k", "2MiB"}, 1)["error"], "NO_AVAILABLE_SPACE");
  EXPECT_EQ(CtlJson({"put", "k", "1KiB", "--replicas", "2"}, 1)["error"], "INVALID_PARAMS");
  EXPECT_EQ(CtlJson({"rm", "missing"}, 1)["error"], "OBJECT_NOT_FOUND");
  EXPECT_EQ(CtlJson({"unmount", "nope"}, 1)["error"], "SEGMENT_NOT_FOUND");
  EXPECT_EQ(CtlJson({"unmount", "seg", "--client-id", "node-2"}, 1)["error"], "NOT_OWNER");
  EXPECT_EQ(CtlJson({"ping", "stranger"}, 1)["error"], "CLIENT_NOT_FOUND");
  json pong = CtlJson({"ping", "node-1"});
  EXPECT_EQ(pong["client_id"], "node-1");
  EXPECT_GT(pong["client_ttl_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(CtlJson({"unmount", "seg", "--client-id", "node-1"})["unmounted"], "seg");
}

TEST_F(TandemctlTest, RmAllAndStatus) {
  ASSERT_EQ(Ctl({"mount", "seg", "16MiB"}).exit_code, 0);
  for (const char* key : {"a", "b", "c"}) ASSERT_EQ(Ctl({"put", key, "4096"}).exit_code, 0);
  json st = CtlJson({"status"});
  EXPECT_EQ(st["node_id"], "m1");
  EXPECT_EQ(st["object_count"], 3);
  EXPECT_EQ(st["segment_count"], 1);
  EXPECT_EQ(st["bytes_used"], 3 * 4096);
  EXPECT_EQ(st["bytes_total"], 16 << 20);
  EXPECT_EQ(st["segments"].size(), 1u);
  EXPECT_EQ(st["segments"][0]["name"], "seg");
  for (const char* field : {"role", "epoch", "applied_seq", "state_digest"}) {
    EXPECT_TRUE(st.contains(field)) << field;
  }
  json removed = CtlJson({"rm-all"});
  EXPECT_EQ(removed["removed"], 3);
  EXPECT_EQ(removed["kept"], 0);
  EXPECT_EQ(CtlJson({"status"})["object_count"], 0);
  CommandResult human = Ctl({"status"});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find("m1"), std::string::npos);
}

TEST_F(TandemctlTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"mount", "seg", "12XB"},
                                             {"mount", "seg", "-5"},
                                             {"put", "k", "1.5G"},
                                             {"put", "k"},
                                             {"frobnicate"},
                                             {}}) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << (args.empty() ? "(none)" : args[0]) << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_EQ(CtlJson({"put", "k", "12XB"}, 2)["error"], "INVALID_PARAMS");
  EXPECT_EQ(RunCommand(TANDEMCTL_BIN, {"--help"}).exit_code, 0);
  EXPECT_EQ(MasterState().object_count, 0u) << "a usage error reached the master";
}

TEST_F(TandemctlTest, UnreachableMasterExitsThree) {
  const int dead_port = PickFreePort();
  CommandResult r = RunCommand(TANDEMCTL_BIN, {"--master", "127.0.0.1:" + std::to_string(dead_port),
                                               "--timeout-ms", "1000", "status"});
  EXPECT_EQ(r.exit_code, 3);
  ExpectOneLineError(r, "UNAVAILABLE");
  r = RunCommand(TANDEMCTL_BIN, {"--master", "127.0.0.1:" + std::to_string(dead_port), "--json",
                                 "--timeout-ms", "1000", "get", "k"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(json::parse(r.out, nullptr, false)["error"], "UNAVAILABLE");
}

}  // namespace
}  // namespace tandem::testing
