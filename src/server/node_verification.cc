#include "server/node_verification.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "replication/clock.h"

namespace tandem::server {
namespace {

verification::VerifierOptions ToVerifierOptions(const MasterConfig& c) {
  verification::VerifierOptions o;
  o.cluster_id = c.cluster_id;
  o.node_id = c.node_id;
  o.interval_s = 0;  // NodeVerification's thread drives it
  o.sample_ratio = c.verify_sample_ratio;
  o.entries_per_shard = c.verify_entries_per_shard;
  o.max_repairs = c.verify_max_repairs;
  return o;
}

}  // namespace

NodeVerification::NodeVerification(const MasterConfig& config, meta::MetaStore* store,
                                   ReplicationGate* gate)
    : config_(config),
      store_(store),
      gate_(gate),
      verifier_(
          ToVerifierOptions(config), store,
          [gate]() -> std::string {
            return gate->is_standby() ? gate->Collect().follower.primary_address : "";
          },
          [gate](const std::string& reason) { gate->RequestFullSync(reason); },
          replication::WallClockMs) {
  service_.SetVerifier(&verifier_);
}

NodeVerification::~NodeVerification() { Stop(); }

grpc::Service* NodeVerification::service() { return service_.service(); }

void NodeVerification::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (config_.verify_interval_s == 0 || thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void NodeVerification::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  service_.SetVerifier(nullptr);
}

void NodeVerification::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(config_.verify_interval_s), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    if (gate_->is_standby()) {
      verifier_.RunPass(false);
    } else if (gate_->role() == GateRole::kLeader) {
      // Refused (not leading any more, fenced): nothing to do until the next interval.
      if (store_->AppendDigest(replication::WallClockMs()).ok()) ++digests_appended_;
    }
    lock.lock();
  }
}

void NodeVerification::RegisterMetrics(metrics::Registry* registry) {
  using metrics::MetricType;
  auto add = [&](const char* name, const char* help, MetricType type, auto field) {
    registry->AddCallback(name, help, type,
                          [this, field] { return static_cast<double>(field(verifier_.Stats())); });
  };
  using S = verification::VerifierStats;
  add("tandem_verify_rounds_total", "Verification passes run (standby)", MetricType::kCounter,
      [](const S& s) { return s.rounds; });
  add("tandem_verify_shards_checked_total", "Shards verified", MetricType::kCounter,
      [](const S& s) { return s.shards_checked; });
  add("tandem_verify_keys_checked_total", "Keys compared with the primary", MetricType::kCounter,
      [](const S& s) { return s.keys_checked; });
  add("tandem_verify_mismatches_total", "Keys found different from the primary (every kind)",
      MetricType::kCounter, [](const S& s) { return s.mismatches; });
  add("tandem_verify_repairs_total", "Keys repaired in place", MetricType::kCounter,
      [](const S& s) { return s.repairs; });
  add("tandem_verify_full_syncs_total", "Full syncs forced by verification", MetricType::kCounter,
      [](const S& s) { return s.full_syncs; });
  add("tandem_verify_errors_total", "Verification passes that could not complete",
      MetricType::kCounter, [](const S& s) { return s.errors; });
  add("tandem_verify_behind_total",
      "Passes skipped: too far behind a busy primary to compare, but catching up",
      MetricType::kCounter, [](const S& s) { return s.behind; });
  add("tandem_verify_last_run_timestamp_ms", "Wall clock of the last pass's end (0: never)",
      MetricType::kGauge, [](const S& s) { return s.last_run_ms; });
  add("tandem_verify_last_result", "Last pass: 0 ok, 1 repaired, 2 full_sync, 3 behind, 4 error",
      MetricType::kGauge, [](const S& s) { return static_cast<int>(s.last.status); });
  registry->AddCallback(
      "tandem_verify_digest_checks_total", "DIGEST entries applied", MetricType::kCounter,
      [this] { return static_cast<double>(store_->GetDigestCheckStats().checks); });
  registry->AddCallback(
      "tandem_verify_digest_mismatched_shards_total", "Shards a DIGEST entry found different",
      MetricType::kCounter,
      [this] { return static_cast<double>(store_->GetDigestCheckStats().mismatched_shards); });
  registry->AddCallback("tandem_verify_digests_appended_total",
                        "DIGEST entries this node appended as leader", MetricType::kCounter,
                        [this] { return static_cast<double>(digests_appended_.load()); });
}

std::string NodeVerification::StatusJson() const {
  verification::VerifierStats s = verifier_.Stats();
  meta::MetaStore::DigestCheckStats d = store_->GetDigestCheckStats();
  nlohmann::json j = {
      {"interval_s", config_.verify_interval_s},
      {"sample_ratio", config_.verify_sample_ratio},
      {"rounds", s.rounds},
      {"shards_checked", s.shards_checked},
      {"keys_checked", s.keys_checked},
      {"mismatches", s.mismatches},
      {"repairs", s.repairs},
      {"full_syncs", s.full_syncs},
      {"errors", s.errors},
      {"behind", s.behind},
      {"last_run_ms", s.last_run_ms},
      {"last_result", s.last_run_ms == 0 ? "never" : verification::PassStatusName(s.last.status)},
      {"last_message", s.last.message},
      {"digest_checks", d.checks},
      {"digest_mismatched_shards", d.mismatched_shards},
      {"digest_last_seq", d.last_check_seq},
      {"digests_appended", digests_appended_.load()},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string NodeVerification::InjectFault(const std::string& kind, const std::string& key) {
  if (key.empty()) return "key is required";
  const uint64_t now = replication::WallClockMs();
  Status s;
  if (kind == "drop_key") {
    s = store_->RepairDelete(key, store_->KeyChecksumOf(key));
  } else if (kind == "change_replica") {
    uint64_t sum = 0;
    auto rec = store_->GetObjectRecord(key, &sum);
    if (!rec.has_value()) return "no such key";
    // Move the first replica to the end of its segment (free unless the segment is full).
    uint64_t seg_size = 0;
    for (const auto& seg : store_->ListSegments()) {
      if (seg.handle == rec->replicas(0).segment_handle()) seg_size = seg.spec.size;
    }
    if (seg_size < 2 * rec->value_size()) return "segment too small";
    rec->mutable_replicas(0)->set_offset(seg_size - rec->value_size());
    s = store_->RepairUpsert(*rec, sum, now);
  } else if (kind == "add_key") {
    auto segments = store_->ListSegments();
    if (segments.empty()) return "no segment mounted";
    tandem::v1::ObjectRecord rec;
    rec.set_key(key);
    rec.set_value_size(64);
    rec.set_complete(true);
    auto* r = rec.add_replicas();
    r->set_segment_handle(segments[0].handle);
    r->set_offset(segments[0].spec.size - 4096 - 64);
    r->set_size(64);
    s = store_->RepairUpsert(rec, store_->KeyChecksumOf(key), now);
  } else {
    return "unknown kind '" + kind + "': change_replica, drop_key or add_key";
  }
  if (!s.ok()) return s.message();
  spdlog::warn("TEST FAULT injected: {} '{}'", kind, key);
  return "";
}

}  // namespace tandem::server
