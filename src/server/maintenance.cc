#include "server/maintenance.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace tandem::server {
namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += ',';
    out += part;
  }
  return out;
}

// A segment's identity: its id, which defaults to its name.
const std::string& SegmentId(const meta::SegmentInfo& segment) {
  return segment.spec.id.empty() ? segment.spec.name : segment.spec.id;
}

}  // namespace

Maintenance::Maintenance(meta::MetaStore* store, Clock* clock, std::chrono::milliseconds interval)
    : store_(store), clock_(clock), interval_(interval) {}

Maintenance::~Maintenance() { Stop(); }

void Maintenance::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_requested_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Maintenance::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stop_requested_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Maintenance::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, interval_, [this] { return stop_requested_; })) {
    lock.unlock();
    RunOnce();
    lock.lock();
  }
}

void Maintenance::RunOnce() {
  const uint64_t now_ms = clock_->NowMs();
  const uint64_t reaped = store_->ReapStalePuts(now_ms);
  if (reaped > 0) {
    spdlog::info("reaped {} stale puts (PROCESSING longer than put_timeout_ms={})", reaped,
                 store_->options().put_timeout_ms);
  }
  ExpireClients(now_ms);
  Evict(now_ms);
}

void Maintenance::ExpireClients(uint64_t now_ms) {
  // The store reports only a count; the segment tables before and after say who lost what.
  // (An explicit unmount racing with this round could be attributed here; it is only a log.)
  const std::vector<meta::SegmentInfo> before = store_->ListSegments();
  const uint64_t expired = store_->ExpireClients(now_ms);
  if (expired == 0) return;
  std::set<std::string> remaining;
  for (const meta::SegmentInfo& segment : store_->ListSegments()) {
    remaining.insert(SegmentId(segment));
  }
  std::map<std::string, std::vector<std::string>> lost_by_client;
  for (const meta::SegmentInfo& segment : before) {
    if (!segment.owner_client_id.empty() && !remaining.contains(SegmentId(segment))) {
      lost_by_client[segment.owner_client_id].push_back(SegmentId(segment));
    }
  }
  for (const auto& [client_id, segments] : lost_by_client) {
    spdlog::warn("client {} expired (silent > client_ttl_ms={}): unmounted segments {}", client_id,
                 store_->options().client_ttl_ms, Join(segments));
  }
  if (lost_by_client.empty()) spdlog::warn("{} clients expired (owned no segment)", expired);
}

void Maintenance::Evict(uint64_t now_ms) {
  const meta::Stats before = store_->GetStats();
  const uint64_t evicted = store_->EvictIfNeeded(now_ms);
  if (evicted == 0) return;
  const double used_percent =
      before.bytes_total == 0 ? 0 : 100.0 * before.bytes_used / before.bytes_total;
  spdlog::info("evicted {} objects (used {:.1f}% > {:g}%)", evicted, used_percent,
               100 * store_->options().eviction_high_watermark);
}

}  // namespace tandem::server
