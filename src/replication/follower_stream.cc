// One Sync stream of a standby: hello, optional image, then batches until the stream ends.
#include <spdlog/spdlog.h>

#include "oplog/entry_codec.h"
#include "replication/follower_impl.h"

namespace tandem::replication {

using tandem::v1::SyncResponse;

StandbyFollower::Impl::Outcome StandbyFollower::Impl::RunStream(bool* was_accepted) {
  std::string address;
  auto stub = tandem::v1::Replication::NewStub(Channel(&address));
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Outcome::kStopped;
    context_ = &context;
    cancel_reason_.clear();
    if (full_sync_requested_) {  // RequestFullSync
      full_sync_requested_ = false;
      want_full_sync_ = true;
    }
    // The state stays what the last attempt ended in (disconnected, error) until accepted:
    // /status then shows why it is not following rather than a flickering "connecting".
    if (opened_once_) ++status_.reconnects;
    opened_once_ = true;
  }
  std::unique_ptr<Stream> stream = stub->Sync(&context);
  read_done_ = false;
  Outcome outcome = Outcome::kRetry;
  std::string why;
  bool full = false;
  if (Handshake(stream.get(), address, &full, &outcome, &why)) {
    *was_accepted = true;
    Follow(stream.get(), full, &outcome, &why);
  }
  return EndStream(&context, stream.get(), outcome, why);
}

bool StandbyFollower::Impl::Handshake(Stream* stream, const std::string& address, bool* full,
                                      Outcome* outcome, std::string* why) {
  tandem::v1::SyncRequest hello_msg;
  tandem::v1::SyncHello* hello = hello_msg.mutable_hello();
  hello->set_cluster_id(options_.cluster_id);
  hello->set_standby_id(options_.node_id);
  hello->set_standby_address(options_.own_address);
  // Asking for a full sync is saying "I have nothing": the primary then always sends an image.
  hello->set_last_epoch(want_full_sync_ ? 0 : store_->applied_epoch());
  hello->set_last_seq(want_full_sync_ ? 0 : store_->applied_seq());
  SyncResponse msg;
  if (!stream->Write(hello_msg) || !Read(stream, &msg)) return false;  // the status says why
  if (!msg.has_accepted()) {
    *why = "protocol: expected SyncAccepted";
    return false;
  }
  const tandem::v1::SyncAccepted& accepted = msg.accepted();
  uint64_t floor_epoch = newest_primary_epoch_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    floor_epoch = std::max(floor_epoch, options_.min_primary_epoch);
  }
  if (accepted.epoch() < floor_epoch) {  // epoch fencing of the stream itself
    *outcome = Outcome::kError;
    *why = "stale primary: " + accepted.primary_id() + " is at epoch " +
           std::to_string(accepted.epoch()) + " but epoch " + std::to_string(floor_epoch) +
           " was already seen";
    return false;
  }
  primary_id_ = accepted.primary_id();
  newest_primary_epoch_ = stream_epoch_ = accepted.epoch();
  *full = accepted.mode() == tandem::v1::FULL_SYNC;
  spdlog::info(
      "replication: standby {} syncs from primary {} at {} (epoch {}) from (epoch {}, seq "
      "{}): {} ({})",
      options_.node_id, accepted.primary_id(), address, accepted.epoch(), hello->last_epoch(),
      hello->last_seq(), *full ? "full sync" : "incremental", accepted.reason());
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.primary_id = accepted.primary_id();
    status_.primary_epoch = accepted.epoch();
    status_.state = *full ? FollowerState::kFullSync : FollowerState::kStreaming;
  }
  last_epoch_ = store_->applied_epoch();
  acked_seq_ = hello->last_seq();
  if (!*full && want_full_sync_ && store_->applied_seq() != 0) {
    // We asked for a full sync by presenting an empty log, and the primary still has its log
    // from seq 1: replaying it onto an empty store is the same full sync.
    spdlog::warn(
        "replication: standby {} replays the primary's whole log; emptying its store "
        "(seq {}) first",
        options_.node_id, store_->applied_seq());
    ResetStore();
  }
  if (!*full) want_full_sync_ = false;
  return true;
}

void StandbyFollower::Impl::Follow(Stream* stream, bool full, Outcome* outcome, std::string* why) {
  if (full) {
    *why = ReceiveImage(stream);
    if (!why->empty()) {
      *outcome = Outcome::kResync;
      return;
    }
    SetState(FollowerState::kStreaming);
    if (!Ack(stream)) return;
  }
  SyncResponse msg;
  while (Read(stream, &msg)) {
    if (!msg.has_batch()) {
      *why = "protocol: expected EntryBatch";
      return;
    }
    *why = ApplyBatch(*msg.mutable_batch());
    if (!why->empty()) {
      *outcome = Outcome::kResync;
      return;
    }
    if (!Ack(stream)) return;
  }
}

// Closes the stream and decides what the loop does next. `why` set: we end it ourselves.
StandbyFollower::Impl::Outcome StandbyFollower::Impl::EndStream(grpc::ClientContext* context,
                                                                Stream* stream, Outcome outcome,
                                                                const std::string& why) {
  if (!why.empty()) {
    context->TryCancel();
  } else {
    // Finish only returns once every message from the primary was read (grpc delivers the
    // status after them), e.g. when an ack failed because the primary ended the stream.
    SyncResponse rest;
    while (!read_done_ && Read(stream, &rest)) {
    }
  }
  const grpc::Status status = stream->Finish();
  std::string cancel_reason;
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    read_started_ms_ = 0;
    cancel_reason = cancel_reason_;
    stopping = stopping_;
  }
  if (stopping) return Outcome::kStopped;
  std::string error = why;
  if (error.empty()) {
    // A refusal is an error (slow retry), except "not a primary" with the normal backoff: during
    // a failover etcd names the new leader a moment before it serves.
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        status.error_message().rfind("not a primary", 0) != 0) {
      outcome = Outcome::kError;
    }
    // ABORTED: the primary wants us back at once (we fell out of its window mid-stream).
    if (status.error_code() == grpc::StatusCode::ABORTED) outcome = Outcome::kResync;
    error = !cancel_reason.empty() ? cancel_reason
            : status.ok()          ? "primary closed the stream"
                                   : status.error_message();
  }
  if (outcome == Outcome::kError) {
    spdlog::error(
        "replication: standby {} cannot follow {}: {}; retrying in {} ms, local state "
        "untouched",
        options_.node_id, channel_address_, error, options_.error_retry_ms);
    SetState(FollowerState::kError, error);
  } else {
    spdlog::warn("replication: standby {} disconnected from {}: {}", options_.node_id,
                 channel_address_, error);
    SetState(FollowerState::kDisconnected, error);
  }
  return outcome;
}

bool StandbyFollower::Impl::Read(Stream* stream, SyncResponse* msg) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_started_ms_ = SteadyClockMs();
  }
  const bool ok = stream->Read(msg);
  read_done_ = !ok;
  std::lock_guard<std::mutex> lock(mu_);
  read_started_ms_ = 0;
  return ok;
}

bool StandbyFollower::Impl::Ack(Stream* stream) {
  const uint64_t applied = store_->applied_seq();
  if (applied == acked_seq_) return true;  // heartbeats need no ack
  tandem::v1::SyncRequest ack;
  ack.mutable_ack()->set_applied_seq(applied);
  ack.mutable_ack()->set_applied_epoch(last_epoch_);
  acked_seq_ = applied;
  return stream->Write(ack);
}

// ---- Full sync ----

void StandbyFollower::Impl::ResetStore() {
  tandem::v1::StateHeader empty;
  store_->LoadImage(
      empty, [](tandem::v1::ObjectChunk*) { return false; }, clock_());
  if (log_ != nullptr) log_->Clear();
  history_->ResetToImage(0, 0);
  last_epoch_ = 0;
  acked_seq_ = 0;
}

std::string StandbyFollower::Impl::ReceiveImage(Stream* stream) {
  SyncResponse msg;
  if (!Read(stream, &msg)) return "stream ended before the image header";
  if (!msg.has_image_header()) return "protocol: expected the image header";
  const tandem::v1::StateHeader header = msg.image_header();
  spdlog::info(
      "replication: standby {} loading image at (epoch {}, seq {}), {} objects; its "
      "state (seq {}) is replaced",
      options_.node_id, header.applied_epoch(), header.applied_seq(), header.object_count(),
      store_->applied_seq());
  std::string refused = LoadImage(stream, header);
  if (!refused.empty()) {
    // Never keep half an image: an empty store is honest and asks for a full sync again.
    spdlog::error("replication: standby {} refused the image at seq {}: {}; emptying the store",
                  options_.node_id, header.applied_seq(), refused);
    ResetStore();
    want_full_sync_ = true;
    return "refused image: " + refused;
  }
  want_full_sync_ = false;
  refused_in_a_row_ = 0;
  if (log_ != nullptr) log_->Clear();  // the window restarts after the image
  history_->ResetToImage(header.applied_epoch(), header.applied_seq());
  last_epoch_ = header.applied_epoch();
  std::lock_guard<std::mutex> lock(mu_);
  ++status_.full_syncs;
  status_.primary_last_seq = std::max(status_.primary_last_seq, header.applied_seq());
  return "";
}

std::string StandbyFollower::Impl::LoadImage(Stream* stream,
                                             const tandem::v1::StateHeader& header) {
  std::string problem;
  bool got_end = false;
  uint64_t objects = 0;
  auto next_chunk = [&](tandem::v1::ObjectChunk* chunk) {
    SyncResponse part;
    if (!Read(stream, &part)) {
      problem = "stream ended inside the image";
    } else if (part.has_image_chunk()) {
      objects += static_cast<uint64_t>(part.image_chunk().objects_size());
      chunk->Swap(part.mutable_image_chunk());
      return true;
    } else if (part.has_image_end()) {
      got_end = true;
    } else {
      problem = "protocol: unexpected message inside the image";
    }
    return false;
  };
  tandem::Status loaded = store_->LoadImage(header, next_chunk, clock_());
  if (!loaded.ok()) return "LoadImage failed: " + loaded.ToString();
  if (!problem.empty()) return problem;
  if (!got_end) return "LoadImage stopped before the end of the image";
  if (objects != header.object_count()) {
    return "image has " + std::to_string(objects) + " objects, header says " +
           std::to_string(header.object_count());
  }
  if (store_->StateDigest() != header.state_digest()) {
    return "state digest after load differs from the primary's";
  }
  if (store_->applied_seq() != header.applied_seq()) return "applied seq after load differs";
  return "";
}

// ---- Batches ----

std::string StandbyFollower::Impl::ApplyBatch(tandem::v1::EntryBatch& batch) {
  for (tandem::v1::OpLogEntry& entry : *batch.mutable_entries()) {
    const std::string reason = CheckEntry(entry);
    if (!reason.empty()) return Refuse(entry.sequence_id(), reason, /*needs_full_sync=*/false);
    const tandem::Status applied = store_->Apply(entry);
    if (!applied.ok()) {
      // Verified, in order, and still contradicting our state: only an image repairs that.
      return Refuse(entry.sequence_id(), "apply failed: " + applied.ToString(), true);
    }
    Record(std::move(entry));  // the last use: the window takes it over
  }
  refused_in_a_row_ = 0;
  std::lock_guard<std::mutex> lock(mu_);
  status_.primary_last_seq = batch.primary_last_seq();
  const uint64_t applied = store_->applied_seq();
  const bool behind = batch.primary_last_seq() > applied;
  status_.lag_ms = behind && batch.primary_time_ms() > last_timestamp_ms_
                       ? batch.primary_time_ms() - last_timestamp_ms_
                       : 0;
  return "";
}

std::string StandbyFollower::Impl::CheckEntry(const tandem::v1::OpLogEntry& entry) const {
  if (!oplog::Verify(entry)) return "checksum mismatch";
  const uint64_t expected = store_->applied_seq() + 1;
  if (entry.sequence_id() != expected) {
    return "gap: expected seq " + std::to_string(expected);
  }
  if (entry.epoch() < last_epoch_) {
    return "epoch " + std::to_string(entry.epoch()) + " is older than the last applied epoch " +
           std::to_string(last_epoch_);
  }
  if (entry.epoch() > stream_epoch_) {
    return "epoch " + std::to_string(entry.epoch()) + " is newer than the primary's epoch " +
           std::to_string(stream_epoch_);
  }
  return "";
}

std::string StandbyFollower::Impl::Refuse(uint64_t seq, const std::string& reason,
                                          bool needs_full_sync) {
  refused_in_a_row_ = seq == refused_seq_ ? refused_in_a_row_ + 1 : 1;
  refused_seq_ = seq;
  if (refused_in_a_row_ >= kMaxRefusals) needs_full_sync = true;
  want_full_sync_ = want_full_sync_ || needs_full_sync;
  const uint64_t applied = store_->applied_seq();
  spdlog::error(
      "replication: standby {} refused entry seq {} from primary {} ({}): {}; {}", options_.node_id,
      seq, primary_id_, channel_address_, reason,
      needs_full_sync ? "asking for a full sync" : "reconnecting from " + std::to_string(applied));
  std::lock_guard<std::mutex> lock(mu_);
  ++status_.refused_entries;
  return "refused entry seq " + std::to_string(seq) + ": " + reason;
}

void StandbyFollower::Impl::Record(tandem::v1::OpLogEntry&& entry) {
  if (entry.epoch() != last_epoch_ || history_->newest_epoch() == 0) {
    tandem::Status begun = history_->Begin(entry.epoch(), entry.sequence_id());
    if (!begun.ok()) spdlog::warn("replication: epoch history: {}", begun.ToString());
  }
  last_epoch_ = entry.epoch();
  last_timestamp_ms_ = entry.timestamp_ms();
  if (log_ != nullptr && !log_->Append(std::move(entry)).ok()) {
    log_->Clear();  // the window must stay contiguous with the store; restart it here
    (void)log_->Append(std::move(entry));  // a refused append left the entry untouched
  }
}

}  // namespace tandem::replication
