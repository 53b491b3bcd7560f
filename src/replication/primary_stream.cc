// One standby's Sync stream on the primary: reactions from grpc, and the sender thread.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "replication/primary_impl.h"

namespace tandem::replication {
namespace {

using tandem::v1::SyncResponse;

uint64_t SteadyMs() { return SteadyClockMs(); }

}  // namespace

PrimaryStream::PrimaryStream(PrimaryService* primary, grpc::CallbackServerContext* context,
                             uint64_t id)
    : primary_(primary), context_(context), id_(id), peer_(context->peer()) {}

PrimaryStream::~PrimaryStream() { Join(); }

void PrimaryStream::Begin() {
  StartRead(&in_);
  sender_ = std::thread([this] { Run(); });
}

void PrimaryStream::Join() {
  if (sender_.joinable()) sender_.join();
}

// ---- Reactions (grpc threads; never block) ----

void PrimaryStream::OnReadDone(bool ok) {
  if (!ok) {  // the standby closed its side, or the call is over
    std::lock_guard<std::mutex> lock(mu_);
    peer_closed_ = true;
    cv_.notify_all();
    return;
  }
  std::string standby_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_.has_hello() && !have_hello_) {
      hello_ = in_.hello();
      have_hello_ = true;
      cv_.notify_all();
    } else if (in_.has_ack() && admitted_) {
      standby_id = standby_id_;
      acked_seq_ = in_.ack().applied_seq();
      // Only the ack the sender sleeps on wakes it: one wakeup per batch, not per message.
      if (sender_wants_ack_ && acked_seq_ >= sent_seq_) {
        sender_wants_ack_ = false;
        cv_.notify_all();
      }
    } else if (!in_.has_ack()) {
      bad_request_ = true;  // a second hello, or an empty message
      cv_.notify_all();
    }
  }
  if (!standby_id.empty()) primary_->OnAck(standby_id, id_, in_.ack().applied_seq());
  StartRead(&in_);
}

void PrimaryStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  write_in_flight_ = false;
  if (!ok) broken_ = true;
  cv_.notify_all();
}

void PrimaryStream::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  broken_ = true;
  cv_.notify_all();
}

void PrimaryStream::OnDone() { primary_->StreamDone(this); }

void PrimaryStream::RequestStop(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_requested_) return;
  stop_requested_ = true;
  stop_status_ = status;
  cv_.notify_all();
}

void PrimaryStream::Wake(bool flush) {
  std::lock_guard<std::mutex> lock(mu_);
  if (flush) flush_ = true;
  // With a write in flight the sender cannot send anyway; OnWriteDone wakes it.
  if (!write_in_flight_) cv_.notify_all();
}

// ---- Sender thread ----

void PrimaryStream::Run() {
  grpc::Status status = Serve();
  std::string standby_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    standby_id = standby_id_;
  }
  if (!standby_id.empty()) {
    primary_->Detach(standby_id, id_);
    spdlog::info("replication: stream of standby {} ({}) ended: {}", standby_id, peer_,
                 status.ok() ? std::string("the standby closed it") : status.error_message());
  }
  FinishStream(status);
}

grpc::Status PrimaryStream::Serve() {
  tandem::v1::SyncHello hello;
  if (!WaitHello(&hello)) return StopStatus();
  if (primary_->shutting_down()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "primary is shutting down");
  }
  SyncPlan plan;
  SyncResponse accepted;
  // Keep the log after the standby's position from planning until it is registered: from then
  // on MinNeededSeq spares it, but a truncation in between could cut what the plan counted on.
  oplog::LogBuffer* log = primary_->log();
  const uint64_t admission_hold = log->Hold(hello.last_seq() + 1);
  std::string refusal = primary_->Admit(this, hello, &plan, accepted.mutable_accepted());
  log->Release(admission_hold);
  if (!refusal.empty()) {
    spdlog::warn("replication: refused standby {} ({}): {}", hello.standby_id(), peer_, refusal);
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refusal);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    standby_id_ = hello.standby_id();
    admitted_ = true;
  }
  if (plan.full_sync) {
    spdlog::info("replication: standby {} (epoch {}, seq {}) needs full sync: {}",
                 hello.standby_id(), hello.last_epoch(), hello.last_seq(), plan.reason);
  } else {
    spdlog::info("replication: standby {} (epoch {}, seq {}) resumes incrementally: {}",
                 hello.standby_id(), hello.last_epoch(), hello.last_seq(), plan.reason);
  }
  if (!Write(std::move(accepted))) return StopStatus();
  uint64_t after_seq = hello.last_seq();
  uint64_t hold = 0;
  if (plan.full_sync) {
    grpc::Status sent = SendImage(&after_seq, &hold);
    if (!sent.ok()) {
      primary_->log()->Release(hold);
      return sent;
    }
    primary_->SetStreaming(id_);
  }
  return StreamLog(after_seq, hold);
}

bool PrimaryStream::WaitHello(tandem::v1::SyncHello* hello) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] {
    return have_hello_ || bad_request_ || broken_ || peer_closed_ || stop_requested_;
  });
  if (!have_hello_) return false;
  *hello = hello_;
  return true;
}

grpc::Status PrimaryStream::SendImage(uint64_t* after_seq, uint64_t* hold) {
  std::unique_ptr<StoredImage> stored = OpenStoredImage(hold);
  if (stored != nullptr) return SendStoredImage(*stored, after_seq);
  return SendLiveImage(after_seq, hold);
}

std::unique_ptr<StoredImage> PrimaryStream::OpenStoredImage(uint64_t* hold) {
  ImageSource* source = primary_->image_source();
  if (source == nullptr) return nullptr;
  oplog::LogBuffer* log = primary_->log();
  // Only an image the window continues can serve: at least first_seq - 1 (or our last seq when
  // the window is empty). Opening checks every block of the candidate, which takes a while for
  // a large state, so the window is checked again under the hold below.
  const uint64_t our_last = primary_->OurLastSeq();
  const uint64_t first = log->first_seq();
  const uint64_t min_seq = first == 0 ? our_last : first - 1;
  if (min_seq == 0 && our_last == 0) return nullptr;  // nothing written yet: nothing stored
  std::unique_ptr<StoredImage> image = source->OpenNewest(std::max<uint64_t>(min_seq, 1), our_last);
  if (image == nullptr) {
    spdlog::info(
        "replication: full sync of standby {}: no usable snapshot in seq range [{}, {}] "
        "(the oplog window starts at {}); capturing a live image",
        standby_id_, std::max<uint64_t>(min_seq, 1), our_last, first);
    return nullptr;
  }
  const tandem::v1::StateHeader& header = image->header();
  // Hold first, then check: entries evicted before the hold existed would show in first_seq.
  *hold = log->Hold(header.applied_seq() + 1);
  const std::string why_not =
      StoredImageJoinsLog(header.applied_epoch(), header.applied_seq(), primary_->OurLastSeq(),
                          log->first_seq(), log->last_seq(), primary_->history());
  if (!why_not.empty()) {
    spdlog::info(
        "replication: full sync of standby {}: snapshot {} cannot be used ({}); capturing a live "
        "image",
        standby_id_, image->id(), why_not);
    log->Release(*hold);
    *hold = 0;
    return nullptr;
  }
  return image;
}

grpc::Status PrimaryStream::SendStoredImage(StoredImage& image, uint64_t* after_seq) {
  const uint64_t started = SteadyMs();
  const tandem::v1::StateHeader& header = image.header();
  spdlog::info(
      "replication: full sync of standby {} from snapshot {} at (epoch {}, seq {}), {} objects",
      standby_id_, image.id(), header.applied_epoch(), header.applied_seq(), header.object_count());
  primary_->NoteImage(id_, header.applied_seq(), /*from_snapshot=*/true,
                      "snapshot " + image.id() + " at seq " + std::to_string(header.applied_seq()));
  SyncResponse msg;
  *msg.mutable_image_header() = header;
  if (!Write(std::move(msg))) return StopStatus();
  // The file's blocks are small (~100 µs of serialization each, so the writer can yield);
  // regrouped into messages of image_chunk_objects like a live image's.
  const int per_message =
      static_cast<int>(std::max<uint32_t>(primary_->options().image_chunk_objects, 1));
  bool ok = true;
  SyncResponse part;
  auto send = [&] {
    ok = Write(std::move(part));
    part.Clear();
    return ok;
  };
  tandem::Status read = image.ForEachChunk([&](const tandem::v1::ObjectChunk& chunk) {
    tandem::v1::ObjectChunk* pending = part.mutable_image_chunk();
    pending->MergeFrom(chunk);
    return pending->objects_size() + pending->requests_size() < per_message || send();
  });
  if (ok && read.ok() && part.has_image_chunk()) send();
  if (!ok) return StopStatus();
  if (!read.ok()) {
    // Checked whole when opened, so the file changed underneath. The standby drops the partial
    // image when the stream ends and asks again; the next open skips the damaged file.
    std::string why = "snapshot " + image.id() + " turned out damaged while streaming it to " +
                      standby_id_ + ": " + read.message() + "; ending the stream";
    spdlog::error("replication: {}", why);
    return grpc::Status(grpc::StatusCode::ABORTED, why);
  }
  SyncResponse end;
  end.mutable_image_end()->set_object_count(header.object_count());
  if (!Write(std::move(end))) return StopStatus();
  spdlog::info(
      "replication: snapshot {} for standby {} sent in {} ms; streaming the log after seq {}",
      image.id(), standby_id_, SteadyMs() - started, header.applied_seq());
  *after_seq = header.applied_seq();
  return grpc::Status::OK;
}

grpc::Status PrimaryStream::SendLiveImage(uint64_t* after_seq, uint64_t* hold) {
  // Hold before capturing: the image's seq is at least the log's last seq now (the capture
  // takes every shard lock, so whatever was sequenced before is applied), so the hold keeps
  // everything after the image.
  oplog::LogBuffer* log = primary_->log();
  *hold = log->Hold(log->last_seq() + 1);
  const uint64_t started = SteadyMs();
  std::unique_ptr<meta::StateImage> image = primary_->store()->CaptureImage();
  const tandem::v1::StateHeader& header = image->header();
  spdlog::info(
      "replication: full sync of standby {} from a live image at (epoch {}, seq {}), {} objects",
      standby_id_, header.applied_epoch(), header.applied_seq(), header.object_count());
  primary_->NoteImage(id_, header.applied_seq(), /*from_snapshot=*/false,
                      "live image at seq " + std::to_string(header.applied_seq()));
  SyncResponse msg;
  *msg.mutable_image_header() = header;
  if (!Write(std::move(msg))) return StopStatus();
  bool ok = true;
  image->ForEachChunk(primary_->options().image_chunk_objects,
                      [&](const tandem::v1::ObjectChunk& chunk) {
                        SyncResponse part;
                        *part.mutable_image_chunk() = chunk;
                        ok = Write(std::move(part));
                        return ok;
                      });
  if (!ok) return StopStatus();
  SyncResponse end;
  end.mutable_image_end()->set_object_count(header.object_count());
  if (!Write(std::move(end))) return StopStatus();
  spdlog::info("replication: image for standby {} sent in {} ms; streaming the log after seq {}",
               standby_id_, SteadyMs() - started, header.applied_seq());
  *after_seq = header.applied_seq();
  return grpc::Status::OK;
}

grpc::Status PrimaryStream::StreamLog(uint64_t after_seq, uint64_t hold) {
  const PrimaryOptions& options = primary_->options();
  oplog::LogBuffer* log = primary_->log();
  uint64_t last_send_ms = SteadyMs();
  uint64_t last_data_ms = 0;  // a first entry goes out at once
  {
    // The standby holds after_seq already (its hello, or the image it was just sent).
    std::lock_guard<std::mutex> lock(mu_);
    sent_seq_ = after_seq;
    acked_seq_ = std::max(acked_seq_, after_seq);
  }
  while (true) {
    if (WaitForWork(after_seq, last_data_ms, last_send_ms) == Next::kStop) break;
    auto entries = log->EntriesSince(after_seq, options.batch_size);
    if (!entries.ok()) {
      log->Release(hold);
      std::string why = "standby " + standby_id_ +
                        " needs full sync: " + entries.status().message() +
                        "; ending the stream so it reconnects";
      spdlog::warn("replication: {}", why);
      return grpc::Status(grpc::StatusCode::ABORTED, why);
    }
    const size_t count = entries->size();
    if (count != 0) {
      after_seq = entries->back().sequence_id();
      last_data_ms = SteadyMs();
    }
    SyncResponse msg;
    tandem::v1::EntryBatch* batch = msg.mutable_batch();
    auto fault = primary_->entry_fault();
    for (tandem::v1::OpLogEntry& entry : entries.value()) {
      if (fault) (*fault)(entry);
      *batch->add_entries() = std::move(entry);
    }
    batch->set_primary_last_seq(std::max(primary_->OurLastSeq(), after_seq));
    batch->set_primary_time_ms(primary_->Now());
    if (hold != 0) {
      // After a full sync the hold follows the sender until it has caught up with the log.
      log->Release(hold);
      hold = count < options.batch_size ? 0 : log->Hold(after_seq + 1);
    }
    if (count != 0) {
      std::lock_guard<std::mutex> lock(mu_);
      sent_seq_ = after_seq;
    }
    if (!Write(std::move(msg))) break;
    last_send_ms = SteadyMs();
  }
  log->Release(hold);
  return StopStatus();
}

PrimaryStream::Next PrimaryStream::WaitForWork(uint64_t after_seq, uint64_t last_data_ms,
                                               uint64_t last_send_ms) {
  const PrimaryOptions& options = primary_->options();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (broken_ || peer_closed_ || stop_requested_ || bad_request_) return Next::kStop;
    uint64_t wait_ms = options.heartbeat_ms;
    if (!write_in_flight_) {
      const uint64_t now = SteadyMs();
      const uint64_t last = primary_->log()->last_seq();
      const uint64_t pending = last > after_seq ? last - after_seq : 0;
      const uint64_t since_data = now - last_data_ms;
      const bool all_acked = acked_seq_ >= sent_seq_;
      const bool ack_clock_open = all_acked && since_data >= options.batch_min_gap_ms;
      if (pending >= options.batch_size) return Next::kSend;
      if (pending > 0 && (flush_ || ack_clock_open || since_data >= options.batch_timeout_ms)) {
        flush_ = false;
        return Next::kSend;
      }
      const uint64_t since_send = now - last_send_ms;
      if (since_send >= options.heartbeat_ms) return Next::kSend;
      wait_ms = options.heartbeat_ms - since_send;
      if (pending > 0) {
        const uint64_t until = all_acked ? options.batch_min_gap_ms : options.batch_timeout_ms;
        wait_ms = std::min<uint64_t>(wait_ms, until - since_data);
      }
      // Idle: wake on the next entry. Waiting for the ack: on the ack, or once a batch is full.
      sender_wants_ack_ = pending > 0 && !all_acked;
      primary_->RequestWake(pending == 0 ? after_seq + 1 : after_seq + options.batch_size);
    }
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
    sender_wants_ack_ = false;
  }
}

bool PrimaryStream::Write(SyncResponse&& msg) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !write_in_flight_ || broken_ || stop_requested_; });
    if (broken_ || stop_requested_ || peer_closed_ || write_in_flight_) return false;
    out_ = std::move(msg);
    write_in_flight_ = true;
  }
  StartWrite(&out_);
  return true;
}

grpc::Status PrimaryStream::StopStatus() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_requested_) return stop_status_;
  if (bad_request_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "expected one hello first, then only acks");
  }
  if (broken_)
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled (standby stopped or gone)");
  return grpc::Status::OK;  // the standby closed its side
}

void PrimaryStream::FinishStream(const grpc::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  // Finish only once the last write completed; a standby that stopped reading would keep it
  // in flight forever, so cancel the call after a grace period.
  if (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return !write_in_flight_; })) {
    lock.unlock();
    context_->TryCancel();
    lock.lock();
    cv_.wait(lock, [&] { return !write_in_flight_; });
  }
  lock.unlock();
  Finish(status);
}

}  // namespace tandem::replication
