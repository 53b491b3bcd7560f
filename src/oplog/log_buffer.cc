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
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.empty() && entry.sequence_id() != entries_.back().sequence_id() + 1) {
    return Status(ErrorCode::kInternal, "oplog gap: append seq " +
                                            std::to_string(entry.sequence_id()) + " after " +
                                            std::to_string(entries_.back().sequence_id()));
  }
  bytes_ += EntryCost(entry);
  entries_.push_back(entry);
  EvictLocked();
  return Status::Ok();
}

void LogBuffer::EvictLocked() {
  // Always keep the newest entry, even when it alone exceeds the byte bound.
  while (entries_.size() > 1 &&
         (entries_.size() > options_.max_entries || bytes_ > options_.max_bytes)) {
    bytes_ -= EntryCost(entries_.front());
    entries_.pop_front();
  }
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
  while (!entries_.empty() && entries_.front().sequence_id() < seq) {
    bytes_ -= EntryCost(entries_.front());
    entries_.pop_front();
  }
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
