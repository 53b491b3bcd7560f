#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <sstream>
#include <string_view>

namespace tandem::server {
namespace {

constexpr int kConfigErrorExitCode = 2;

void AddFlags(CLI::App& app, MasterConfig& c) {
  app.add_option("--config", c.config_file,
                 "YAML file of settings (keys are flag names with underscores); flags win");
  app.add_option("--listen", c.listen, "gRPC address of the client API (host:port)");
  app.add_option("--http", c.http, "HTTP address of /metrics /healthz /readyz /status");
  app.add_option("--data-dir", c.data_dir, "data directory (created if missing, locked)");
  app.add_option("--node-id", c.node_id, "node id (default: tandem-<listen port>)");
  app.add_option("--max-key-bytes", c.max_key_bytes, "longest accepted key");
  app.add_option("--max-object-size", c.max_object_size, "largest accepted object (bytes)");
  app.add_option("--max-segment-size", c.max_segment_size, "largest accepted segment (bytes)");
  app.add_option("--max-replicas", c.max_replicas, "most replicas one object may ask for");
  app.add_option("--lease-ttl-default-ms", c.lease_ttl_default_ms,
                 "read lease granted by each GetReplicaList");
  app.add_option("--soft-pin-ttl-ms", c.soft_pin_ttl_ms, "how long a soft pin protects an object");
  app.add_option("--put-timeout-ms", c.put_timeout_ms,
                 "PROCESSING puts older than this are reaped");
  app.add_option("--client-ttl-ms", c.client_ttl_ms,
                 "a client silent this long loses its segments");
  app.add_option("--eviction-high-watermark", c.eviction_high_watermark,
                 "evict when used/total exceeds this, in (0, 1]");
  app.add_option("--eviction-ratio", c.eviction_ratio,
                 "fraction of capacity one eviction round frees, in (0, 1)");
  app.add_option("--dedup-window", c.dedup_window,
                 "client request ids remembered so a retried write applies at most once (0: off)");
  app.add_option("--maintenance-interval-ms", c.maintenance_interval_ms,
                 "period of put reaping, client expiry and eviction");
  app.add_option("--oplog-buffer-bytes", c.oplog_buffer_bytes, "in-memory OpLog window (bytes)");
  app.add_option("--oplog-buffer-entries", c.oplog_buffer_entries,
                 "in-memory OpLog window (entries)");
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error, critical or off");
  app.add_option("--role", c.role, "standalone, primary or standby");
  app.add_option("--primary", c.primary, "standby only: host:port of the primary to follow");
  app.add_option("--cluster-id", c.cluster_id, "cluster name shared by all nodes ([A-Za-z0-9_-])");
  app.add_option("--replication", c.replication,
                 "async (ack after local apply) or sync (ack after standbys have it)");
  app.add_option("--min-sync-acks", c.min_sync_acks, "sync mode: standbys that must acknowledge");
  app.add_option("--replication-timeout-ms", c.replication_timeout_ms,
                 "sync mode: how long a write waits for standby acks");
  app.add_option("--sync-fallback", c.sync_fallback,
                 "sync mode, no ack in time: fail (REPLICATION_TIMEOUT) or degrade (to async)");
  app.add_option("--replication-batch-size", c.replication_batch_size,
                 "most entries per replication message");
  app.add_option("--replication-batch-timeout-ms", c.replication_batch_timeout_ms,
                 "longest an entry lingers for a fuller batch");
  app.add_option("--replication-batch-min-gap-ms", c.replication_batch_min_gap_ms,
                 "async mode: once the standby acked the last batch, the next one waits at "
                 "least this long (sync mode: 0, the acks alone pace the batches)");
  app.add_option("--etcd-endpoints", c.etcd_endpoints,
                 "etcd host:port list (comma-separated): etcd elects the leader; no --role")
      ->delimiter(',');
  app.add_option("--lease-ttl-ms", c.lease_ttl_ms,
                 "etcd lease of the leader key and the member entry (min 2000)");
  app.add_option("--max-promotion-lag-ms", c.max_promotion_lag_ms,
                 "a standby lagging more than this does not campaign first");
  app.add_option("--handover-timeout-ms", c.handover_timeout_ms,
                 "planned switchover: how long to wait for the new leader to catch up");
}

// Durability (issue 5): snapshots, the local write-ahead log and cold start.
void AddDurabilityFlags(CLI::App& app, MasterConfig& c) {
  app.add_option("--wal-dir", c.wal_dir, "write-ahead log directory (default <data-dir>/wal)");
  app.add_option("--wal-fsync", c.wal_fsync,
                 "always (ack after fsync), interval (fsync every --wal-fsync-interval-ms) or "
                 "never (leave it to the OS)");
  app.add_option("--wal-fsync-interval-ms", c.wal_fsync_interval_ms,
                 "interval mode: longest an entry waits for its fsync");
  app.add_option("--wal-segment-bytes", c.wal_segment_bytes,
                 "WAL segment files rotate at this size");
  app.add_option("--snapshot-dir", c.snapshot_dir,
                 "snapshot directory (default <data-dir>/snapshots)");
  app.add_option("--snapshot-interval-s", c.snapshot_interval_s,
                 "take a snapshot this often; 0: only on demand (tandemctl snapshot)");
  app.add_option("--snapshot-retention", c.snapshot_retention, "newest snapshots kept");
  app.add_option("--snapshot-priority", c.snapshot_priority,
                 "CPU priority of the snapshot thread: idle (SCHED_IDLE, uses only spare CPU, "
                 "clients never wait for it) or low (nice 10: progresses on a saturated machine)");
  app.add_option("--snapshot-write-mib-per-s", c.snapshot_write_mib_per_s,
                 "average disk write rate of a snapshot while clients are served, in 1 MiB synced "
                 "pieces, so its write-back does not stall them (a node nobody uses writes at "
                 "once); 0: as fast as the disk takes it");
}

// Verification (issue 6).
void AddVerificationFlags(CLI::App& app, MasterConfig& c) {
  app.add_option("--verify-interval-s", c.verify_interval_s,
                 "standby: a sampled verification pass this often; leader: a DIGEST entry this "
                 "often; 0: off (tandemctl verify still works)");
  app.add_option("--verify-sample-ratio", c.verify_sample_ratio,
                 "fraction of the 1024 shards a sampled pass checks (round robin)");
  app.add_option("--verify-entries-per-shard", c.verify_entries_per_shard,
                 "keys per shard per pass");
  app.add_option("--verify-seq-diff-threshold", c.verify_seq_diff_threshold,
                 "primary: a standby further behind than this many entries is told to full-sync");
  app.add_option("--verify-max-repairs", c.verify_max_repairs,
                 "more mismatches than this in one pass: full sync instead of repairs");
  app.add_flag("--enable-test-faults", c.enable_test_faults,
               "TEST ONLY: POST /test/fault on the HTTP port injects divergence (never in "
               "production)");
}

bool ValidClusterId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
  });
}

// Gives every option the file sets, unless the command line already did. Returns an error line,
// or an empty string.
std::string ApplyYamlFile(CLI::App& app, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return "cannot read config file " + path + ": " + e.what();
  }
  if (root.IsNull()) return "";  // an empty file sets nothing
  if (!root.IsMap()) return "config file " + path + ": expected a map of setting: value";
  for (const auto& item : root) {
    const std::string key = item.first.as<std::string>();
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    CLI::Option* option = app.get_option_no_throw("--" + flag);
    // One spelling per setting (underscores); --config and --help are not settings.
    const bool known = option != nullptr && key.find('-') == std::string::npos &&
                       flag != "config" && flag != "help";
    if (!known) return "config file " + path + ": unknown key '" + key + "'";
    if (!item.second.IsScalar()) {
      return "config file " + path + ": key '" + key + "' must have a single value";
    }
    if (option->count() > 0) continue;  // the command line wins
    try {
      option->add_result(item.second.as<std::string>());
      option->run_callback();
    } catch (const CLI::Error& e) {
      return "config file " + path + ": key '" + key + "': " + e.what();
    }
  }
  return "";
}

// "0.95", "3": as a user would write it (std::to_string gives "3.000000").
std::string FormatNumber(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

ConfigParseResult ConfigError(std::string message) {
  return ConfigParseResult{std::nullopt, kConfigErrorExitCode, std::move(message)};
}

}  // namespace

std::string ValidateReplicationConfig(const MasterConfig& c) {
  std::string host;
  int port = 0;
  if (c.role != "standalone" && c.role != "primary" && c.role != "standby") {
    return "invalid --role '" + c.role + "': expected standalone, primary or standby";
  }
  if (c.role == "standby" && !SplitHostPort(c.primary, &host, &port)) {
    return "invalid --primary '" + c.primary + "': a standby needs the primary's host:port";
  }
  if (c.role != "standby" && !c.primary.empty()) {
    return "--primary is only for --role standby";
  }
  if (c.role == "standby" && c.primary == c.listen) {
    return "invalid --primary '" + c.primary + "': a standby cannot follow itself";
  }
  if (!ValidClusterId(c.cluster_id)) {
    return "invalid --cluster-id '" + c.cluster_id + "': 1-64 of [A-Za-z0-9_-]";
  }
  if (c.replication != "async" && c.replication != "sync") {
    return "invalid --replication '" + c.replication + "': expected async or sync";
  }
  if (c.sync_fallback != "fail" && c.sync_fallback != "degrade") {
    return "invalid --sync-fallback '" + c.sync_fallback + "': expected fail or degrade";
  }
  if (c.min_sync_acks == 0) return "invalid --min-sync-acks 0: must be at least 1";
  if (c.etcd_leadership()) {
    if (c.role != "standalone") {
      return "--role " + c.role + " with --etcd-endpoints: etcd elects the leader, drop --role";
    }
    if (!c.node_id.empty() && !ValidClusterId(c.node_id)) {
      return "invalid --node-id '" + c.node_id + "': 1-64 of [A-Za-z0-9_-]";
    }
    for (const std::string& endpoint : c.etcd_endpoints) {
      if (!SplitHostPort(endpoint, &host, &port) || host.empty() || port == 0) {
        return "invalid --etcd-endpoints entry '" + endpoint + "': expected host:port";
      }
    }
    if (c.lease_ttl_ms < 2000 || c.lease_ttl_ms > 600000) {
      return "invalid --lease-ttl-ms " + std::to_string(c.lease_ttl_ms) +
             ": 2000..600000 (etcd's minimum lease is 2 s)";
    }
    if (c.handover_timeout_ms == 0 || c.handover_timeout_ms > 60000) {
      return "invalid --handover-timeout-ms " + std::to_string(c.handover_timeout_ms) +
             ": 1..60000";
    }
  }
  if (c.replication_timeout_ms == 0) return "invalid --replication-timeout-ms 0: must be > 0";
  if (c.replication_batch_size == 0 || c.replication_batch_size > 10000) {
    return "invalid --replication-batch-size: must be in [1, 10000]";
  }
  if (c.replication_batch_min_gap_ms > c.replication_batch_timeout_ms) {
    return "invalid --replication-batch-min-gap-ms " +
           std::to_string(c.replication_batch_min_gap_ms) +
           ": must not exceed --replication-batch-timeout-ms " +
           std::to_string(c.replication_batch_timeout_ms);
  }
  return "";
}

std::string ValidateVerificationConfig(const MasterConfig& c) {
  if (!(c.verify_sample_ratio > 0.0 && c.verify_sample_ratio <= 1.0)) {
    return "invalid --verify-sample-ratio " + FormatNumber(c.verify_sample_ratio) +
           ": must be in (0, 1]";
  }
  if (c.verify_entries_per_shard < 1 || c.verify_entries_per_shard > 10000) {
    return "invalid --verify-entries-per-shard " + std::to_string(c.verify_entries_per_shard) +
           ": must be in [1, 10000]";
  }
  if (c.verify_interval_s > 86400) {
    return "invalid --verify-interval-s " + std::to_string(c.verify_interval_s) +
           ": must be in [0, 86400]";
  }
  return "";
}

std::string ValidateDurabilityConfig(const MasterConfig& c) {
  if (c.wal_fsync != "always" && c.wal_fsync != "interval" && c.wal_fsync != "never") {
    return "invalid --wal-fsync '" + c.wal_fsync + "': expected always, interval or never";
  }
  if (c.wal_fsync_interval_ms < 1 || c.wal_fsync_interval_ms > 60000) {
    return "invalid --wal-fsync-interval-ms " + std::to_string(c.wal_fsync_interval_ms) +
           ": must be in [1, 60000]";
  }
  if (c.wal_segment_bytes < 4096) {
    return "invalid --wal-segment-bytes " + std::to_string(c.wal_segment_bytes) +
           ": must be at least 4096";
  }
  if (c.snapshot_interval_s < 0) {
    return "invalid --snapshot-interval-s " + std::to_string(c.snapshot_interval_s) +
           ": must be >= 0 (0 turns periodic snapshots off)";
  }
  if (c.snapshot_priority != "idle" && c.snapshot_priority != "low") {
    return "invalid --snapshot-priority '" + c.snapshot_priority + "': expected idle or low";
  }
  if (c.snapshot_write_mib_per_s < 0 || c.snapshot_write_mib_per_s > 1'000'000) {
    return "invalid --snapshot-write-mib-per-s " + std::to_string(c.snapshot_write_mib_per_s) +
           ": must be in [0, 1000000] (0: unpaced)";
  }
  if (c.snapshot_retention < 1 || c.snapshot_retention > 1000) {
    return "invalid --snapshot-retention " + std::to_string(c.snapshot_retention) +
           ": must be in [1, 1000]";
  }
  return "";
}

bool SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string host_part = address.substr(0, colon);
  if (host_part.front() == '[') {
    if (host_part.size() < 3 || host_part.back() != ']') return false;
    host_part = host_part.substr(1, host_part.size() - 2);
  } else if (host_part.find(':') != std::string::npos) {
    return false;  // an IPv6 literal needs brackets
  }
  const std::string_view port_text = std::string_view(address).substr(colon + 1);
  int value = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (error != std::errc() || end != port_text.data() + port_text.size() || value < 0 ||
      value > 65535) {
    return false;
  }
  *host = std::move(host_part);
  *port = value;
  return true;
}

std::string ValidateMasterConfig(const MasterConfig& c) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(c.listen, &host, &port)) {
    return "invalid --listen '" + c.listen + "': expected host:port";
  }
  if (!SplitHostPort(c.http, &host, &port)) {
    return "invalid --http '" + c.http + "': expected host:port";
  }
  if (c.data_dir.empty()) return "invalid --data-dir: must not be empty";
  if (std::string err = ValidateReplicationConfig(c); !err.empty()) return err;
  if (std::string err = ValidateDurabilityConfig(c); !err.empty()) return err;
  if (std::string err = ValidateVerificationConfig(c); !err.empty()) return err;
  struct Positive {
    const char* flag;
    uint64_t value;
  };
  const std::array<Positive, 11> positives = {{
      {"--max-key-bytes", c.max_key_bytes},
      {"--max-object-size", c.max_object_size},
      {"--max-segment-size", c.max_segment_size},
      {"--max-replicas", c.max_replicas},
      {"--lease-ttl-default-ms", c.lease_ttl_default_ms},
      {"--soft-pin-ttl-ms", c.soft_pin_ttl_ms},
      {"--put-timeout-ms", c.put_timeout_ms},
      {"--client-ttl-ms", c.client_ttl_ms},
      {"--maintenance-interval-ms", c.maintenance_interval_ms},
      {"--oplog-buffer-bytes", c.oplog_buffer_bytes},
      {"--oplog-buffer-entries", c.oplog_buffer_entries},
  }};
  for (const Positive& p : positives) {
    if (p.value == 0) return std::string("invalid ") + p.flag + " 0: must be > 0";
  }
  if (!(c.eviction_high_watermark > 0 && c.eviction_high_watermark <= 1)) {
    return "invalid --eviction-high-watermark " + FormatNumber(c.eviction_high_watermark) +
           ": must be in (0, 1]";
  }
  if (!(c.eviction_ratio > 0 && c.eviction_ratio < 1)) {
    return "invalid --eviction-ratio " + FormatNumber(c.eviction_ratio) + ": must be in (0, 1)";
  }
  static constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug",    "info", "warn",
                                                              "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), c.log_level) == kLevels.end()) {
    return "invalid --log-level '" + c.log_level +
           "': expected trace, debug, info, warn, error, critical or off";
  }
  return "";
}

ConfigParseResult ParseMasterConfig(int argc, const char* const* argv) {
  MasterConfig config;
  CLI::App app("tandem-master: highly available metadata master of a KV-cache store",
               "tandem-master");
  app.option_defaults()->always_capture_default();
  AddFlags(app, config);
  AddDurabilityFlags(app, config);
  AddVerificationFlags(app, config);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return ConfigParseResult{std::nullopt, 0, app.help()};
  } catch (const CLI::ParseError& e) {
    return ConfigError(e.what());
  }
  if (!config.config_file.empty()) {
    std::string error = ApplyYamlFile(app, config.config_file);
    if (!error.empty()) return ConfigError(std::move(error));
  }
  std::string error = ValidateMasterConfig(config);
  if (!error.empty()) return ConfigError(std::move(error));
  if (config.node_id.empty()) {
    std::string host;
    int port = 0;
    SplitHostPort(config.listen, &host, &port);
    config.node_id = "tandem-" + std::to_string(port);
  }
  return ConfigParseResult{std::move(config), 0, ""};
}

meta::Options ToMetaOptions(const MasterConfig& c) {
  meta::Options options;
  options.max_key_bytes = c.max_key_bytes;
  options.max_object_size = c.max_object_size;
  options.max_segment_size = c.max_segment_size;
  options.max_replicas = c.max_replicas;
  options.lease_ttl_ms = c.lease_ttl_default_ms;
  options.soft_pin_ttl_ms = c.soft_pin_ttl_ms;
  options.put_timeout_ms = c.put_timeout_ms;
  options.client_ttl_ms = c.client_ttl_ms;
  options.eviction_high_watermark = c.eviction_high_watermark;
  options.eviction_ratio = c.eviction_ratio;
  options.dedup_window = c.dedup_window;
  return options;
}

oplog::LogBufferOptions ToLogBufferOptions(const MasterConfig& c) {
  oplog::LogBufferOptions options;
  options.max_bytes = c.oplog_buffer_bytes;
  options.max_entries = c.oplog_buffer_entries;
  return options;
}

}  // namespace tandem::server
