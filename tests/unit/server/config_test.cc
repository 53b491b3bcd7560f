#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <vector>

#include "test_util.h"

namespace tandem::server {
namespace {

ConfigParseResult Parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"tandem-master"};
  argv.insert(argv.end(), args.begin(), args.end());
  return ParseMasterConfig(static_cast<int>(argv.size()), argv.data());
}

class ConfigFile {
 public:
  explicit ConfigFile(const std::string& yaml) : path_(dir_.path() + "/master.yaml") {
    std::ofstream(path_) << yaml;
  }
  const char* path() const { return path_.c_str(); }

 private:
  testing::ScratchDir dir_;
  std::string path_;
};

void ExpectConfigError(const ConfigParseResult& result, const std::string& fragment) {
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.message.find(fragment), std::string::npos) << result.message;
  EXPECT_EQ(result.message.find('\n'), std::string::npos) << "not one line: " << result.message;
}

TEST(ConfigTest, DefaultsMatchTheDocumentedValues) {
  const ConfigParseResult result = Parse({});
  ASSERT_TRUE(result.config.has_value()) << result.message;
  const MasterConfig& c = *result.config;
  EXPECT_EQ(c.listen, "127.0.0.1:50051");
  EXPECT_EQ(c.http, "127.0.0.1:9003");
  EXPECT_EQ(c.data_dir, "./tandem-data");
  EXPECT_EQ(c.node_id, "tandem-50051");
  EXPECT_EQ(c.max_key_bytes, 4096u);
  EXPECT_EQ(c.max_replicas, 16u);
  EXPECT_EQ(c.lease_ttl_default_ms, 5000u);
  EXPECT_EQ(c.soft_pin_ttl_ms, 1800000u);
  EXPECT_EQ(c.put_timeout_ms, 30000u);
  EXPECT_EQ(c.client_ttl_ms, 10000u);
  EXPECT_DOUBLE_EQ(c.eviction_high_watermark, 0.95);
  EXPECT_DOUBLE_EQ(c.eviction_ratio, 0.05);
  EXPECT_EQ(c.maintenance_interval_ms, 200u);
  EXPECT_EQ(c.oplog_buffer_bytes, 268435456u);
  EXPECT_EQ(c.oplog_buffer_entries, 1048576u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.snapshot_priority, "idle");
  EXPECT_EQ(c.snapshot_write_mib_per_s, 16);
}

TEST(ConfigTest, FlagsSetEveryField) {
  const ConfigParseResult result = Parse({"--listen",
                                          "127.0.0.1:6001",
                                          "--http",
                                          "0.0.0.0:9100",
                                          "--data-dir",
                                          "/tmp/x",
                                          "--max-key-bytes",
                                          "128",
                                          "--max-replicas",
                                          "3",
                                          "--lease-ttl-default-ms",
                                          "1234",
                                          "--eviction-high-watermark",
                                          "0.8",
                                          "--eviction-ratio",
                                          "0.1",
                                          "--log-level",
                                          "debug",
                                          "--oplog-buffer-entries",
                                          "42"});
  ASSERT_TRUE(result.config.has_value()) << result.message;
  const MasterConfig& c = *result.config;
  EXPECT_EQ(c.listen, "127.0.0.1:6001");
  EXPECT_EQ(c.node_id, "tandem-6001");  // derived from the listen port
  EXPECT_EQ(c.http, "0.0.0.0:9100");
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_EQ(c.max_key_bytes, 128u);
  EXPECT_EQ(c.max_replicas, 3u);
  EXPECT_EQ(c.lease_ttl_default_ms, 1234u);
  EXPECT_DOUBLE_EQ(c.eviction_high_watermark, 0.8);
  EXPECT_DOUBLE_EQ(c.eviction_ratio, 0.1);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.oplog_buffer_entries, 42u);
}

TEST(ConfigTest, YamlFileOverridesDefaults) {
  ConfigFile file(
      "lease_ttl_default_ms: 777\n"
      "eviction_high_watermark: 0.9\n"
      "node_id: alpha\n"
      "listen: 127.0.0.1:7000\n");
  const ConfigParseResult result = Parse({"--config", file.path()});
  ASSERT_TRUE(result.config.has_value()) << result.message;
  EXPECT_EQ(result.config->lease_ttl_default_ms, 777u);
  EXPECT_DOUBLE_EQ(result.config->eviction_high_watermark, 0.9);
  EXPECT_EQ(result.config->node_id, "alpha");
  EXPECT_EQ(result.config->listen, "127.0.0.1:7000");
  EXPECT_EQ(result.config->client_ttl_ms, 10000u);  // untouched keys keep their defaults
}

TEST(ConfigTest, CommandLineFlagBeatsYaml) {
  ConfigFile file("lease_ttl_default_ms: 777\nclient_ttl_ms: 4000\n");
  const ConfigParseResult result =
      Parse({"--lease-ttl-default-ms", "888", "--config", file.path()});
  ASSERT_TRUE(result.config.has_value()) << result.message;
  EXPECT_EQ(result.config->lease_ttl_default_ms, 888u);
  EXPECT_EQ(result.config->client_ttl_ms, 4000u);
}

TEST(ConfigTest, EmptyYamlFileChangesNothing) {
  ConfigFile file("");
  const ConfigParseResult result = Parse({"--config", file.path()});
  ASSERT_TRUE(result.config.has_value()) << result.message;
  EXPECT_EQ(result.config->lease_ttl_default_ms, 5000u);
}

TEST(ConfigTest, UnknownYamlKeyIsAnError) {
  ConfigFile file("lease_ttl_default_ms: 777\nbogus_key: 1\n");
  ExpectConfigError(Parse({"--config", file.path()}), "unknown key 'bogus_key'");
}

TEST(ConfigTest, DashedYamlKeyIsRefused) {
  ConfigFile file("lease-ttl-default-ms: 777\n");
  ExpectConfigError(Parse({"--config", file.path()}), "unknown key 'lease-ttl-default-ms'");
}

TEST(ConfigTest, YamlValueOfTheWrongTypeIsAnError) {
  ConfigFile file("max_replicas: many\n");
  ExpectConfigError(Parse({"--config", file.path()}), "max_replicas");
  ConfigFile nested("max_replicas: [1, 2]\n");
  ExpectConfigError(Parse({"--config", nested.path()}), "single value");
}

TEST(ConfigTest, MissingYamlFileIsAnError) {
  ExpectConfigError(Parse({"--config", "/nonexistent/tandem.yaml"}), "/nonexistent/tandem.yaml");
}

TEST(ConfigTest, OutOfRangeValuesAreErrors) {
  ExpectConfigError(Parse({"--eviction-high-watermark", "1.5"}), "--eviction-high-watermark");
  ExpectConfigError(Parse({"--eviction-high-watermark", "0"}), "(0, 1]");
  ExpectConfigError(Parse({"--eviction-ratio", "1"}), "--eviction-ratio");
  ExpectConfigError(Parse({"--lease-ttl-default-ms", "0"}), "--lease-ttl-default-ms");
  ExpectConfigError(Parse({"--client-ttl-ms", "0"}), "--client-ttl-ms");
  ExpectConfigError(Parse({"--listen", "localhost"}), "--listen");
  ExpectConfigError(Parse({"--http", "127.0.0.1:99999"}), "--http");
  ExpectConfigError(Parse({"--log-level", "loud"}), "--log-level");
  ExpectConfigError(Parse({"--max-replicas", "abc"}), "--max-replicas");
  ExpectConfigError(Parse({"--no-such-flag"}), "--no-such-flag");
  ExpectConfigError(Parse({"--snapshot-priority", "high"}), "--snapshot-priority");
  const ConfigParseResult low = Parse({"--snapshot-priority", "low"});
  ASSERT_TRUE(low.config.has_value()) << low.message;
  EXPECT_EQ(low.config->snapshot_priority, "low");
  ExpectConfigError(Parse({"--snapshot-write-mib-per-s", "-1"}), "--snapshot-write-mib-per-s");
  ExpectConfigError(Parse({"--snapshot-write-mib-per-s", "2000000"}), "[0, 1000000]");
  const ConfigParseResult unpaced = Parse({"--snapshot-write-mib-per-s", "0"});
  ASSERT_TRUE(unpaced.config.has_value()) << unpaced.message;
  EXPECT_EQ(unpaced.config->snapshot_write_mib_per_s, 0);
}

TEST(ConfigTest, ReplicationBatchMinGapIsBoundedByTheBatchTimeout) {
  const ConfigParseResult defaults = Parse({});
  ASSERT_TRUE(defaults.config.has_value()) << defaults.message;
  EXPECT_EQ(defaults.config->replication_batch_min_gap_ms, 2u);
  const ConfigParseResult set = Parse({"--replication-batch-min-gap-ms", "10"});
  ASSERT_TRUE(set.config.has_value()) << set.message;
  EXPECT_EQ(set.config->replication_batch_min_gap_ms, 10u);
  ExpectConfigError(Parse({"--replication-batch-min-gap-ms", "11"}),
                    "--replication-batch-min-gap-ms 11: must not exceed");
  ExpectConfigError(Parse({"--replication-batch-min-gap-ms", "-1"}),
                    "--replication-batch-min-gap-ms");
}

TEST(ConfigTest, YamlValuesAreValidatedToo) {
  ConfigFile file("eviction_ratio: 2\n");
  ExpectConfigError(Parse({"--config", file.path()}), "--eviction-ratio");
}

TEST(ConfigTest, HelpListsEveryFlagWithItsDefault) {
  const ConfigParseResult result = Parse({"--help"});
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag :
       {"--listen", "--http", "--data-dir", "--node-id", "--max-key-bytes", "--max-object-size",
        "--max-segment-size", "--max-replicas", "--lease-ttl-default-ms", "--soft-pin-ttl-ms",
        "--put-timeout-ms", "--client-ttl-ms", "--eviction-high-watermark", "--eviction-ratio",
        "--maintenance-interval-ms", "--oplog-buffer-bytes", "--oplog-buffer-entries",
        "--log-level", "--config"}) {
    EXPECT_NE(result.message.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(result.message.find("127.0.0.1:50051"), std::string::npos);
  EXPECT_NE(result.message.find("1800000"), std::string::npos);
}

TEST(ConfigTest, ConvertsToStoreAndLogOptions) {
  MasterConfig config;
  config.lease_ttl_default_ms = 11;
  config.client_ttl_ms = 22;
  config.eviction_ratio = 0.25;
  config.oplog_buffer_bytes = 33;
  config.oplog_buffer_entries = 44;
  const meta::Options options = ToMetaOptions(config);
  EXPECT_EQ(options.lease_ttl_ms, 11u);
  EXPECT_EQ(options.client_ttl_ms, 22u);
  EXPECT_DOUBLE_EQ(options.eviction_ratio, 0.25);
  EXPECT_EQ(options.max_replicas, config.max_replicas);
  const oplog::LogBufferOptions log = ToLogBufferOptions(config);
  EXPECT_EQ(log.max_bytes, 33u);
  EXPECT_EQ(log.max_entries, 44u);
}

TEST(ConfigTest, SplitsHostAndPort) {
  std::string host;
  int port = -1;
  EXPECT_TRUE(SplitHostPort("127.0.0.1:50051", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 50051);
  EXPECT_TRUE(SplitHostPort("[::1]:0", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(SplitHostPort("::1:80", &host, &port));
  EXPECT_FALSE(SplitHostPort(":80", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:-1", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:8x", &host, &port));
}

}  // namespace
}  // namespace tandem::server
