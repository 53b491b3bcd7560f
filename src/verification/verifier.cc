#include "verification/verifier.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "tandem/v1/replication.grpc.pb.h"

namespace tandem::verification {

StandbyVerifier::StandbyVerifier(const VerifierOptions& options, meta::MetaStore* store,
                                 std::function<std::string()> primary_address,
                                 std::function<void(const std::string&)> request_full_sync,
                                 std::function<uint64_t()> wall_clock_ms)
    : options_(options),
      store_(store),
      primary_address_(std::move(primary_address)),
      request_full_sync_(std::move(request_full_sync)),
      wall_clock_ms_(std::move(wall_clock_ms)) {}

StandbyVerifier::~StandbyVerifier() { Stop(); }

void StandbyVerifier::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.interval_s == 0 || thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void StandbyVerifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StandbyVerifier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(options_.interval_s), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    RunPass(false);
    lock.lock();
  }
}

VerifierStats StandbyVerifier::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::shared_ptr<grpc::Channel> StandbyVerifier::Channel() {
  std::string address = primary_address_ ? primary_address_() : "";
  if (address.empty()) return nullptr;
  if (channel_ == nullptr || address != channel_address_) {
    channel_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    channel_address_ = address;
  }
  return channel_;
}

PassResult StandbyVerifier::RunPass(bool all_shards) {
  std::lock_guard<std::mutex> pass_lock(pass_mu_);
  const auto started = std::chrono::steady_clock::now();
  PassResult result;
  bool segments_differ = false;
  std::vector<int> priority = store_->TakeDigestMismatches(&segments_differ);
  std::vector<Work> work;
  bool stop = false;
  if (segments_differ) {
    result.status = PassStatus::kFullSync;
    result.message = "a DIGEST entry found the segment set different";
    stop = true;
  } else if (all_shards) {
    for (int i = 0; i < meta::kShardCount; ++i) work.push_back({i, "", true});
  } else {
    if (!priority.empty()) {
      spdlog::warn("verification: {} shard(s) differed at a DIGEST entry; checking them whole",
                   priority.size());
    }
    std::vector<int> shards =
        selector_.Next(ShardsPerRound(meta::kShardCount, options_.sample_ratio), priority);
    for (int shard : shards) {
      bool whole = std::find(priority.begin(), priority.end(), shard) != priority.end();
      work.push_back({shard, whole ? std::string() : cursors_[shard], whole});
    }
  }
  result.shards = static_cast<uint32_t>(work.size());
  // Bounded: each round trip either finishes a page per item or stops the pass; pages advance.
  while (!work.empty() && !stop) {
    const size_t n = std::min<size_t>(work.size(), std::max<uint32_t>(1, options_.shards_per_rpc));
    std::vector<Work> batch(work.begin(), work.begin() + static_cast<ptrdiff_t>(n));
    work.erase(work.begin(), work.begin() + static_cast<ptrdiff_t>(n));
    std::vector<Work> more = Exchange(std::move(batch), &result, &stop);
    work.insert(work.end(), more.begin(), more.end());
  }
  if (result.status == PassStatus::kOk && result.repairs > 0) result.status = PassStatus::kRepaired;
  if (result.status == PassStatus::kFullSync && request_full_sync_) {
    request_full_sync_("verification: " + result.message);
  }
  result.duration_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - started)
                                                 .count());
  if (result.status != PassStatus::kOk) {
    spdlog::warn("verification: pass over {} shard(s): {} ({} keys, {} mismatches, {} repairs){}{}",
                 result.shards, PassStatusName(result.status), result.keys_checked,
                 result.mismatches, result.repairs, result.message.empty() ? "" : ": ",
                 result.message);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.rounds;
  stats_.shards_checked += result.status == PassStatus::kError ? 0 : result.shards;
  stats_.keys_checked += result.keys_checked;
  stats_.mismatches += result.mismatches;
  stats_.repairs += result.repairs;
  if (result.status == PassStatus::kFullSync) ++stats_.full_syncs;
  if (result.status == PassStatus::kError) ++stats_.errors;
  if (result.status == PassStatus::kBehind) ++stats_.behind;
  stats_.last_run_ms = wall_clock_ms_ ? wall_clock_ms_() : 0;
  stats_.last = result;
  return result;
}

bool StandbyVerifier::WaitForApplied(uint64_t seq) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.catch_up_timeout_ms);
  while (store_->applied_seq() < seq) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return stopping_; })) {
        return false;
      }
    }
  }
  return true;
}

std::vector<StandbyVerifier::Work> StandbyVerifier::Exchange(std::vector<Work> batch,
                                                             PassResult* result, bool* stop) {
  std::shared_ptr<grpc::Channel> channel = Channel();
  if (channel == nullptr) {
    result->status = PassStatus::kError;
    result->message = "this node is not a standby: no primary to verify against";
    *stop = true;
    return {};
  }
  auto stub = tandem::v1::Replication::NewStub(channel);
  const uint32_t limit = std::max<uint32_t>(1, options_.entries_per_shard);
  tandem::v1::VerifyResponse response;
  std::vector<std::vector<meta::MetaStore::KeyChecksum>> sampled(batch.size());
  for (int attempt = 0;; ++attempt) {
    tandem::v1::VerifyRequest request;
    request.set_cluster_id(options_.cluster_id);
    request.set_standby_id(options_.node_id);
    // The seq first, then the keys: whatever the sample saw beyond it is in the primary's log
    // tail after it, which the primary skips.
    request.set_applied_seq(store_->applied_seq());
    for (size_t i = 0; i < batch.size(); ++i) {
      sampled[i] = store_->ShardKeys(batch[i].shard, batch[i].after, limit);
      tandem::v1::VerifyShard* shard = request.add_shards();
      shard->set_shard(static_cast<uint32_t>(batch[i].shard));
      shard->set_after_key(batch[i].after);
      shard->set_complete(sampled[i].size() < limit);
      for (const auto& k : sampled[i]) {
        tandem::v1::VerifyKey* key = shard->add_keys();
        key->set_key(k.key);
        key->set_checksum(k.checksum);
      }
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.rpc_timeout_ms));
    response.Clear();
    grpc::Status status = stub->Verify(&context, request, &response);
    if (!status.ok()) {
      result->status = PassStatus::kError;
      result->message = "Verify at " + channel_address_ + ": " + status.error_message();
      *stop = true;
      return {};
    }
    if (!response.need_full_sync() || !response.behind()) break;
    // Too far behind to compare. A standby that reaches the seq the primary had when it
    // answered is keeping up (a busy primary, not a divergence): retry a few times, then skip
    // the pass. Only one that cannot get there is stuck and gets the full sync.
    if (!WaitForApplied(response.primary_seq())) {
      response.set_reason(response.reason() + "; did not reach the primary's seq " +
                          std::to_string(response.primary_seq()) + " within " +
                          std::to_string(options_.catch_up_timeout_ms) + " ms");
      break;
    }
    if (attempt + 1 >= static_cast<int>(std::max<uint32_t>(1, options_.catch_up_attempts))) {
      result->status = PassStatus::kBehind;
      result->message = response.reason() + "; keeps catching up, so nothing is compared";
      *stop = true;
      return {};
    }
  }
  result->keys_checked += response.keys_checked();
  result->keys_skipped += response.keys_skipped();
  if (response.need_full_sync()) {
    result->status = PassStatus::kFullSync;
    result->message = response.reason();
    *stop = true;
    return {};
  }
  result->mismatches += static_cast<uint64_t>(response.results_size());
  if (result->mismatches > options_.max_repairs) {
    result->status = PassStatus::kFullSync;
    result->message = std::to_string(result->mismatches) + " mismatches in this pass, more than " +
                      std::to_string(options_.max_repairs);
    *stop = true;
    return {};
  }
  const uint64_t now = wall_clock_ms_ ? wall_clock_ms_() : 0;
  for (const tandem::v1::VerifyKeyResult& r : response.results()) {
    std::optional<uint64_t> expected;
    if (r.verdict() != tandem::v1::VERIFY_MISSING_ON_STANDBY) expected = r.standby_checksum();
    tandem::Status s = r.verdict() == tandem::v1::VERIFY_MISSING_ON_PRIMARY
                           ? store_->RepairDelete(r.key(), expected)
                           : store_->RepairUpsert(r.record(), expected, now);
    if (s.code() == ErrorCode::kInvalidState) {
      spdlog::info("verification: key '{}' changed since it was sampled; not repaired", r.key());
      continue;
    }
    if (!s.ok()) {
      result->status = PassStatus::kFullSync;
      result->message = "repair of '" + r.key() + "' failed: " + s.message();
      *stop = true;
      return {};
    }
    ++result->repairs;
    spdlog::error(
        "verification: REPAIRED shard {} key '{}' ({}): standby checksum {:016x}, primary "
        "checksum {:016x}",
        r.shard(), r.key(), tandem::v1::VerifyVerdict_Name(r.verdict()), r.standby_checksum(),
        r.primary_checksum());
  }
  std::vector<Work> more;
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool complete = sampled[i].size() < limit;
    Work& w = batch[i];
    if (!w.whole) {
      cursors_[w.shard] = complete ? std::string() : sampled[i].back().key;
      continue;
    }
    if (!complete) {
      w.after = sampled[i].back().key;
      more.push_back(std::move(w));
    }
  }
  return more;
}

// ---- VerificationService ----

class VerificationService::Impl final : public tandem::v1::Verification::CallbackService {
 public:
  grpc::ServerUnaryReactor* RunVerification(
      grpc::CallbackServerContext* context, const tandem::v1::RunVerificationRequest* request,
      tandem::v1::RunVerificationResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::lock_guard<std::mutex> lock(mu_);
    if (verifier_ == nullptr) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          "verify runs on a standby; this node is " + (role_.empty() ? "not a standby" : role_)));
      return reactor;
    }
    // Runs inline on the grpc thread: a pass is bounded by the RPC timeouts of its round trips.
    PassResult r = verifier_->RunPass(request->all_shards());
    response->set_status(PassStatusName(r.status));
    response->set_shards(r.shards);
    response->set_keys_checked(r.keys_checked);
    response->set_mismatches(r.mismatches);
    response->set_repairs(r.repairs);
    response->set_duration_ms(r.duration_ms);
    response->set_message(r.message);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::mutex mu_;
  StandbyVerifier* verifier_ = nullptr;
  std::string role_;
};

VerificationService::VerificationService() : impl_(std::make_unique<Impl>()) {}
VerificationService::~VerificationService() = default;
grpc::Service* VerificationService::service() { return impl_.get(); }
void VerificationService::SetVerifier(StandbyVerifier* verifier) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->verifier_ = verifier;
}
void VerificationService::SetRole(const std::string& role) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->role_ = role;
}

}  // namespace tandem::verification
