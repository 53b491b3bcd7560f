#include "oplog/sequencer.h"

#include <algorithm>

#include "oplog/entry_codec.h"

namespace tandem::oplog {

Sequencer::Sequencer(LogBuffer* buffer, uint64_t epoch, uint64_t next_seq)
    : buffer_(buffer), epoch_(epoch), next_seq_(next_seq), last_seq_(next_seq - 1) {}

Status Sequencer::Append(tandem::v1::OpLogEntry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!closed_status_.ok()) return closed_status_;
  entry.set_sequence_id(next_seq_);
  entry.set_epoch(epoch_);
  Seal(entry);
  Status appended = buffer_->Append(entry);
  if (!appended.ok()) return appended;
  ++next_seq_;
  last_seq_.store(entry.sequence_id(), std::memory_order_release);
  if (listener_) listener_(entry.sequence_id());
  return Status::Ok();
}

void Sequencer::Close(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  closed_status_ = status.ok() ? Status(ErrorCode::kNotLeader, "sequencer closed") : status;
}

void Sequencer::Open(uint64_t epoch, uint64_t next_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = epoch;
  next_seq_ = next_seq;
  last_seq_.store(next_seq - 1, std::memory_order_release);
  closed_status_ = Status::Ok();
}

void Sequencer::Resume(uint64_t min_epoch, uint64_t next_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = std::max(epoch_, min_epoch);
  next_seq_ = next_seq;
  last_seq_.store(next_seq - 1, std::memory_order_release);
}

void Sequencer::SetAppendListener(std::function<void(uint64_t)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
}

uint64_t Sequencer::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

}  // namespace tandem::oplog
