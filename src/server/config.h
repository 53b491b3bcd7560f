// MasterConfig: every setting of tandem-master, from flags and an optional YAML file.
//
// Flags and YAML keys are the same names (`--lease-ttl-default-ms` <-> `lease_ttl_default_ms`);
// a flag given on the command line beats the file. Unknown keys and out-of-range values are
// errors: a master never starts with a setting it did not understand.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "meta/meta_store.h"
#include "oplog/log_buffer.h"

namespace tandem::server {

struct MasterConfig {
  std::string listen = "127.0.0.1:50051";  // gRPC client API
  std::string http = "127.0.0.1:9003";     // /metrics, /healthz, /readyz, /status
  std::string data_dir = "./tandem-data";
  std::string node_id;  // default: "tandem-" + listen port
  uint64_t max_key_bytes = 4096;
  uint64_t max_object_size = 1ull << 40;
  uint64_t max_segment_size = 1ull << 50;
  uint32_t max_replicas = 16;
  uint64_t lease_ttl_default_ms = 5000;
  uint64_t soft_pin_ttl_ms = 30 * 60 * 1000;
  uint64_t put_timeout_ms = 30000;
  uint64_t client_ttl_ms = 10000;
  double eviction_high_watermark = 0.95;
  double eviction_ratio = 0.05;
  uint64_t dedup_window = 100000;  // request ids remembered for retried writes (0: off)
  uint64_t maintenance_interval_ms = 200;
  uint64_t oplog_buffer_bytes = 256ull << 20;
  uint64_t oplog_buffer_entries = 1 << 20;
  std::string log_level = "info";
  // Replication (issue 3: roles by flag; leadership by etcd comes later).
  std::string role = "standalone";    // standalone | primary | standby
  std::string primary;                // standby: host:port of the primary
  std::string cluster_id = "tandem";  // nodes of one cluster share it; [A-Za-z0-9_-]{1,64}
  std::string replication = "async";  // async | sync
  uint32_t min_sync_acks = 1;
  uint64_t replication_timeout_ms = 1000;
  std::string sync_fallback = "fail";  // fail | degrade
  uint32_t replication_batch_size = 100;
  uint64_t replication_batch_timeout_ms = 10;
  uint64_t replication_batch_min_gap_ms = 2;
  // Leadership by etcd (issue 4): with endpoints, etcd elects the leader and --role is not given.
  std::vector<std::string> etcd_endpoints;  // --etcd-endpoints A,B,C (host:port)
  uint64_t lease_ttl_ms = 3000;             // leader/member lease; etcd's minimum is 2000
  uint64_t max_promotion_lag_ms = 5000;     // a standby further behind does not campaign first
  uint64_t handover_timeout_ms = 2000;      // planned switchover: wait for the target's ack
  // ---- Durability (issue 5): snapshots, local write-ahead log, cold start ----
  std::string wal_dir;                       // default <data-dir>/wal
  std::string wal_fsync = "interval";        // always | interval | never
  int64_t wal_fsync_interval_ms = 10;        // interval mode: longest an entry waits for fsync
  uint64_t wal_segment_bytes = 64ull << 20;  // segment files rotate at this size
  std::string snapshot_dir;                  // default <data-dir>/snapshots
  int64_t snapshot_interval_s = 300;         // 0: no periodic snapshots (on demand only)
  int64_t snapshot_retention = 3;            // newest snapshots kept
  // CPU priority of the snapshot thread: "idle" (SCHED_IDLE: only CPU nothing else wants) or
  // "low" (nice 10: a small share even on a saturated machine).
  std::string snapshot_priority = "idle";
  // Snapshot disk writes, MiB/s on average in 1 MiB synced pieces, while the node serves anyone
  // (an idle node writes at once); 0: unpaced. A full sync's rebase snapshot is never paced.
  int64_t snapshot_write_mib_per_s = 16;
  std::string config_file;  // --config, empty when none
  // ---- Verification (issue 6, DESIGN.md §6) ----
  uint32_t verify_interval_s = 30;            // standby sampled pass / leader DIGEST entry; 0: off
  double verify_sample_ratio = 0.1;           // fraction of the shards per sampled pass
  uint32_t verify_entries_per_shard = 100;    // keys per shard page
  uint64_t verify_seq_diff_threshold = 1000;  // primary: a standby further behind full-syncs
  uint32_t verify_max_repairs = 10;           // more differences: full sync
  bool enable_test_faults = false;            // TEST ONLY: POST /test/fault on the HTTP port

  bool etcd_leadership() const { return !etcd_endpoints.empty(); }
};

// Outcome of parsing a command line: a config to run with, or text to print and an exit code
// (0 after --help, 2 for any configuration error, with a one-line message).
struct ConfigParseResult {
  std::optional<MasterConfig> config;
  int exit_code = 0;
  std::string message;
};

ConfigParseResult ParseMasterConfig(int argc, const char* const* argv);

// Range checks shared by flags and YAML. Returns an empty string when valid, else one line that
// names the flag.
std::string ValidateMasterConfig(const MasterConfig& config);

// The replication part of ValidateMasterConfig.
std::string ValidateReplicationConfig(const MasterConfig& config);

// The verification part of ValidateMasterConfig.
std::string ValidateVerificationConfig(const MasterConfig& config);

// The durability part of ValidateMasterConfig (ranges and names; directories are checked when
// the node starts, where they are created).
std::string ValidateDurabilityConfig(const MasterConfig& config);

meta::Options ToMetaOptions(const MasterConfig& config);
oplog::LogBufferOptions ToLogBufferOptions(const MasterConfig& config);

// Splits "host:port" ("[::1]:port" for IPv6). False when malformed or the port is not 0..65535.
bool SplitHostPort(const std::string& address, std::string* host, int* port);

}  // namespace tandem::server
