#include "replication/primary.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "replication/primary_impl.h"
#include "verification/answer.h"

namespace tandem::replication {

const char* StandbyStateName(StandbyState state) {
  switch (state) {
    case StandbyState::kFullSync:
      return "full-sync";
    case StandbyState::kStreaming:
      return "streaming";
    case StandbyState::kDisconnected:
      return "disconnected";
  }
  return "unknown";
}

// ---- Facade ----

ReplicationPrimary::ReplicationPrimary(const PrimaryOptions& options, oplog::LogBuffer* log,
                                       meta::MetaStore* store, const EpochHistory* history,
                                       Clock wall_clock)
    : impl_(std::make_unique<PrimaryService>(options, log, store, history, std::move(wall_clock))) {
}

ReplicationPrimary::~ReplicationPrimary() = default;

grpc::Service* ReplicationPrimary::service() { return impl_.get(); }

void ReplicationPrimary::SetServing(bool serving, uint64_t epoch, const std::string& leader_hint) {
  impl_->SetServing(serving, epoch, leader_hint);
}

void ReplicationPrimary::NotifyAppended(uint64_t seq) { impl_->OnAppended(seq); }

void ReplicationPrimary::Flush() { impl_->WakeAll(/*flush=*/true); }

void ReplicationPrimary::SetAckListener(
    std::function<void(const std::string& standby_id, uint64_t acked_seq)> fn) {
  impl_->SetAckListener(std::move(fn));
}

std::vector<StandbyStatus> ReplicationPrimary::Standbys() const { return impl_->Standbys(); }

uint64_t ReplicationPrimary::MinNeededSeq() const { return impl_->MinNeededSeq(); }

void ReplicationPrimary::SetImageSource(ImageSource* source) { impl_->SetImageSource(source); }

void ReplicationPrimary::Shutdown() { impl_->Shutdown(); }

void ReplicationPrimary::SetEntryFaultForTest(std::function<void(tandem::v1::OpLogEntry&)> fault) {
  impl_->SetEntryFault(std::move(fault));
}

// ---- PrimaryService ----

PrimaryService::PrimaryService(const PrimaryOptions& options, oplog::LogBuffer* log,
                               meta::MetaStore* store, const EpochHistory* history,
                               Clock wall_clock)
    : options_(options),
      log_(log),
      store_(store),
      history_(history),
      clock_(std::move(wall_clock)) {}

PrimaryService::~PrimaryService() { Shutdown(); }

grpc::ServerBidiReactor<tandem::v1::SyncRequest, tandem::v1::SyncResponse>* PrimaryService::Sync(
    grpc::CallbackServerContext* context) {
  Reap();
  PrimaryStream* stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream = new PrimaryStream(this, context, next_stream_id_++);
    live_.emplace(stream->id(), stream);
  }
  stream->Begin();
  return stream;
}

void PrimaryService::SetServing(bool serving, uint64_t epoch, const std::string& leader_hint) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool changed = serving != serving_ || epoch != epoch_;
  serving_ = serving;
  epoch_ = epoch;
  leader_hint_ = leader_hint;
  if (!changed) return;
  spdlog::info("replication: node {} {} (epoch {})", options_.node_id,
               serving ? "serves standbys as primary" : "no longer serves standbys", epoch);
  // Open streams carry the old role/epoch: end them, standbys reconnect and re-decide.
  for (auto& [id, stream] : live_) {
    stream->RequestStop(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "node " + options_.node_id + " changed role/epoch"));
  }
}

void PrimaryService::RequestWake(uint64_t seq) {
  uint64_t current = wake_seq_.load();
  while (seq < current && !wake_seq_.compare_exchange_weak(current, seq)) {
  }
}

void PrimaryService::OnAppended(uint64_t seq) {
  // Pairs with RequestWake's store: either the sender saw this entry in the log before
  // sleeping, or we see its request here. (Its timed wait bounds the cost of any miss anyway.)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (seq < wake_seq_.load()) return;
  wake_seq_.store(UINT64_MAX);
  WakeAll(/*flush=*/false);
}

void PrimaryService::WakeAll(bool flush) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, stream] : live_) stream->Wake(flush);
}

void PrimaryService::SetAckListener(std::function<void(const std::string&, uint64_t)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  ack_listener_ = std::move(fn);
}

uint64_t PrimaryService::OurLastSeq() const {
  // The log may be a moment ahead of the store (sequenced, not yet applied) or, right after a
  // promotion with an empty window, behind it.
  return std::max(log_->last_seq(), store_->applied_seq());
}

grpc::ServerUnaryReactor* PrimaryService::Verify(grpc::CallbackServerContext* context,
                                                 const tandem::v1::VerifyRequest* request,
                                                 tandem::v1::VerifyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::string refusal;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (request->cluster_id() != options_.cluster_id) {
      refusal = "cluster id mismatch: standby '" + request->standby_id() +
                "' belongs to cluster '" + request->cluster_id() + "', this node serves cluster '" +
                options_.cluster_id + "'";
    } else if (!serving_ || shut_down_) {
      refusal = "not a primary: node '" + options_.node_id +
                "' is not serving, verify against the primary; leader is " +
                (leader_hint_.empty() ? std::string("unknown") : leader_hint_);
    }
  }
  if (!refusal.empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refusal));
    return reactor;
  }
  verification::AnswerLimits limits;
  limits.seq_diff_threshold = options_.verify_seq_diff_threshold;
  limits.max_repairs = options_.verify_max_repairs;
  tandem::Status s = verification::AnswerVerify(*request, *store_, *log_, limits, response);
  if (!s.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.message()));
    return reactor;
  }
  if (response->results_size() > 0 || response->need_full_sync()) {
    spdlog::warn("verification: standby {} at seq {}: {} difference(s){}{}", request->standby_id(),
                 request->applied_seq(), response->results_size(),
                 response->need_full_sync() ? ", needs a full sync: " : "", response->reason());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

std::string PrimaryService::Admit(PrimaryStream* stream, const tandem::v1::SyncHello& hello,
                                  SyncPlan* plan, tandem::v1::SyncAccepted* accepted) {
  std::unique_lock<std::mutex> lock(mu_);
  std::string refusal = CheckHello(hello, options_.cluster_id, options_.node_id,
                                   serving_ && !shut_down_, leader_hint_);
  if (!refusal.empty()) return refusal;
  const uint64_t epoch = epoch_;
  lock.unlock();
  // Epoch fencing from the other side: a standby that applied entries of a newer epoch than ours
  // has followed a newer leader, so we are a deposed primary; never sync it back to our history.
  if (hello.last_epoch() > epoch) {
    return "stale primary: standby " + hello.standby_id() + " applied epoch " +
           std::to_string(hello.last_epoch()) + ", this primary leads epoch " +
           std::to_string(epoch);
  }

  // Plan outside the lock: it reads the log and the store.
  const uint64_t our_last = OurLastSeq();
  *plan = PlanSync(hello.last_epoch(), hello.last_seq(), our_last, log_->first_seq(),
                   log_->last_seq(), *history_);
  accepted->set_primary_id(options_.node_id);
  accepted->set_epoch(epoch);
  accepted->set_mode(plan->full_sync ? tandem::v1::FULL_SYNC : tandem::v1::INCREMENTAL);
  accepted->set_reason(plan->reason);

  lock.lock();
  Record& record = standbys_[hello.standby_id()];
  if (record.stream_id != 0) {
    auto old = live_.find(record.stream_id);
    if (old != live_.end()) {
      old->second->RequestStop(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "replaced by a newer connection of the same standby"));
    }
  }
  record.stream_id = stream->id();
  StandbyStatus& status = record.status;
  status.standby_id = hello.standby_id();
  status.address = hello.standby_address();
  status.state = plan->full_sync ? StandbyState::kFullSync : StandbyState::kStreaming;
  status.connected_since_ms = clock_();
  status.last_sync_reason = plan->reason;
  // An incremental standby holds everything up to its last_seq: that counts as an ack.
  status.acked_seq = plan->full_sync ? 0 : hello.last_seq();
  // A full sync needs everything until its image is chosen (NoteImage narrows it).
  record.needed_floor = plan->full_sync ? 1 : 0;
  if (plan->full_sync) ++status.full_syncs;
  auto listener = ack_listener_;
  lock.unlock();
  if (listener && !plan->full_sync) listener(hello.standby_id(), hello.last_seq());
  return "";
}

void PrimaryService::SetStreaming(uint64_t stream_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, record] : standbys_) {
    if (record.stream_id == stream_id) record.status.state = StandbyState::kStreaming;
  }
}

void PrimaryService::NoteImage(uint64_t stream_id, uint64_t image_seq, bool from_snapshot,
                               const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, record] : standbys_) {
    if (record.stream_id != stream_id) continue;
    record.needed_floor = image_seq + 1;
    record.status.last_image = source;
    if (from_snapshot) ++record.status.full_syncs_from_snapshot;
  }
}

uint64_t PrimaryService::MinNeededSeq() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t needed = UINT64_MAX;
  for (const auto& [id, record] : standbys_) {
    if (record.stream_id == 0) continue;  // disconnected: it may never come back
    needed = std::min(needed, std::max(record.status.acked_seq + 1, record.needed_floor));
  }
  return needed;
}

void PrimaryService::OnAck(const std::string& standby_id, uint64_t stream_id, uint64_t acked_seq) {
  std::function<void(const std::string&, uint64_t)> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = standbys_.find(standby_id);
    if (it == standbys_.end() || it->second.stream_id != stream_id) return;  // a stale stream
    it->second.status.acked_seq = acked_seq;
    it->second.status.last_ack_ms = clock_();
    listener = ack_listener_;
  }
  if (listener) listener(standby_id, acked_seq);
}

void PrimaryService::Detach(const std::string& standby_id, uint64_t stream_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = standbys_.find(standby_id);
  if (it == standbys_.end() || it->second.stream_id != stream_id) return;
  it->second.stream_id = 0;
  it->second.status.state = StandbyState::kDisconnected;
}

void PrimaryService::StreamDone(PrimaryStream* stream) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(stream->id());
    done_.push_back(stream);
  }
  done_cv_.notify_all();
}

void PrimaryService::Reap() {
  std::vector<PrimaryStream*> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (PrimaryStream* stream : done) {
    stream->Join();  // the sender has called Finish; it is returning
    delete stream;
  }
}

std::vector<StandbyStatus> PrimaryService::Standbys() const {
  std::vector<StandbyStatus> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, record] : standbys_) out.push_back(record.status);
  }
  // Lag is computed outside the lock: it reads the log.
  const uint64_t our_last = OurLastSeq();
  const uint64_t now = clock_();
  for (StandbyStatus& s : out) {
    s.lag_entries = our_last > s.acked_seq ? our_last - s.acked_seq : 0;
    if (s.lag_entries == 0) continue;
    auto oldest = log_->EntriesSince(s.acked_seq, 1);
    uint64_t since = s.last_ack_ms != 0 ? s.last_ack_ms : s.connected_since_ms;
    if (oldest.ok() && !oldest->empty()) since = oldest->front().timestamp_ms();
    s.lag_ms = now > since ? now - since : 0;
  }
  return out;
}

bool PrimaryService::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shut_down_;
}

void PrimaryService::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!shut_down_) {
    shut_down_ = true;
    for (auto& [id, stream] : live_) {
      stream->RequestStop(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "primary " + options_.node_id + " is shutting down"));
    }
  }
  // Streams end once their sender finished and grpc reported OnDone. That needs the grpc server
  // to still run (or to be shut down already, which cancels them): bounded by how fast senders
  // notice, which is prompt. Warn rather than hang silently.
  while (!live_.empty()) {
    if (!done_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return live_.empty(); })) {
      spdlog::warn("replication: waiting for {} standby stream(s) to close", live_.size());
    }
  }
  lock.unlock();
  Reap();
}

void PrimaryService::SetEntryFault(std::function<void(tandem::v1::OpLogEntry&)> fault) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fault) {
    entry_fault_ =
        std::make_shared<const std::function<void(tandem::v1::OpLogEntry&)>>(std::move(fault));
  } else {
    entry_fault_.reset();
  }
}

std::shared_ptr<const std::function<void(tandem::v1::OpLogEntry&)>> PrimaryService::entry_fault()
    const {
  std::lock_guard<std::mutex> lock(mu_);
  return entry_fault_;
}

}  // namespace tandem::replication
