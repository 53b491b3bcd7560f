#include "oplog/log_buffer.h"

#include <algorithm>
#include <string>

namespace tandem::oplog {
namespace {

// What an entry costs in memory, roughly: the proto object plus its two byte strings.
uint64_t EntryCost(const tandem::v1::OpLogEntry& entry) {
  return sizeof(tandem::v1::OpLogEntry) + entry.object_key().size() + entry.payload().size();
}

}  // namespace

LogBuffer::LogBuffer(const LogBufferOptions& options) : options_(options) {}

Status LogBuffer::Append(const tandem::v1::OpLogEntry& entry) {
  tandem::v1::OpLogEntry copy(entry);  // allocates outside the lock
  return Append(std::move(copy));
}

Status LogBuffer::Append(tandem::v1::OpLogEntry&& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.empty() && entry.sequence_id() != entries_.back().sequence_id() + 1) {
    return Status(ErrorCode::kInternal, "oplog gap: append seq " +
                                            std::to_string(entry.sequence_id()) + " after " +
                                            std::to_string(entries_.back().sequence_id()));
  }
  bytes_ += EntryCost(entry);
  entries_.push_back(std::move(entry));
  const tandem::v1::OpLogEntry& stored = entries_.back();
  EvictLocked();  // keeps the newest entry, so `stored` stays valid
  if (observer_ != nullptr) observer_->OnAppend(stored);
  return Status::Ok();
}

void LogBuffer::EvictLocked() {
  // Always keep the newest entry, even when it alone exceeds the byte bound.
  while (entries_.size() > 1 &&
         (entries_.size() > options_.max_entries || bytes_ > options_.max_bytes)) {
    if (!MayEvictFrontLocked()) return;
    PopFrontLocked();
  }
}

bool LogBuffer::MayEvictFrontLocked() {
  const uint64_t front = entries_.front().sequence_id();
  bool needed = false;
  for (const auto& [id, seq] : holds_) needed = needed || seq <= front;
  if (!needed) return true;
  // Slack for holds: up to twice the bounds. Beyond that the holds in the way are dropped, so a
  // stuck full sync costs at most one extra window of memory.
  if (entries_.size() <= 2 * options_.max_entries && bytes_ <= 2 * options_.max_bytes) {
    return false;
  }
  for (auto it = holds_.begin(); it != holds_.end();) {
    if (it->second <= front) {
      it = holds_.erase(it);
      ++holds_dropped_;
    } else {
      ++it;
    }
  }
  return true;
}

void LogBuffer::PopFrontLocked() {
  bytes_ -= EntryCost(entries_.front());
  entries_.pop_front();
}

StatusOr<std::vector<tandem::v1::OpLogEntry>> LogBuffer::EntriesSince(uint64_t after_seq,
                                                                      size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<tandem::v1::OpLogEntry> out;
  if (entries_.empty() || after_seq >= entries_.back().sequence_id()) return out;
  const uint64_t first = entries_.front().sequence_id();
  if (after_seq + 1 < first) {
    return Status(ErrorCode::kInvalidState,
                  "seq " + std::to_string(after_seq + 1) + " is no longer in the oplog window [" +
                      std::to_string(first) + ", " + std::to_string(entries_.back().sequence_id()) +
                      "]");
  }
  // Sequence ids are contiguous, so the position is an index computation.
  const size_t start = static_cast<size_t>(after_seq + 1 - first);
  const size_t count = std::min(limit, entries_.size() - start);
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) out.push_back(entries_[start + i]);
  return out;
}

void LogBuffer::TruncateBefore(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, held] : holds_) seq = std::min(seq, held);
  while (!entries_.empty() && entries_.front().sequence_id() < seq) PopFrontLocked();
}

void LogBuffer::Clear() {
  std::lock_guard<std::mutex> observer_lock(observer_mu_);
  LogObserver* observer = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
    bytes_ = 0;
    holds_.clear();
    observer = observer_;
  }
  if (observer != nullptr) observer->OnClear();
}

void LogBuffer::SetObserver(LogObserver* observer) {
  std::lock_guard<std::mutex> observer_lock(observer_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  observer_ = observer;
}

uint64_t LogBuffer::Hold(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_hold_id_++;
  holds_.emplace(id, seq);
  return id;
}

void LogBuffer::Release(uint64_t hold_id) {
  std::lock_guard<std::mutex> lock(mu_);
  holds_.erase(hold_id);
  EvictLocked();  // what the hold kept beyond the bounds goes now
}

bool LogBuffer::HoldActive(uint64_t hold_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return holds_.count(hold_id) > 0;
}

uint64_t LogBuffer::holds_dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return holds_dropped_;
}

uint64_t LogBuffer::first_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.empty() ? 0 : entries_.front().sequence_id();
}

uint64_t LogBuffer::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.empty() ? 0 : entries_.back().sequence_id();
}

uint64_t LogBuffer::size_entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

uint64_t LogBuffer::size_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace tandem::oplog
