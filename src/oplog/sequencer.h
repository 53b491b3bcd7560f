// Sequencer: the leader's EntrySink. Stamps each entry with the next sequence id, the current
// epoch and its integrity fields, and records it in the LogBuffer. Called by MetaStore under its
// locks, so it only takes its own short mutex. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>

#include "meta/entry_sink.h"
#include "oplog/log_buffer.h"

namespace tandem::oplog {

class Sequencer : public meta::EntrySink {
 public:
  // `buffer` must outlive the sequencer. The first entry gets `next_seq`.
  Sequencer(LogBuffer* buffer, uint64_t epoch, uint64_t next_seq);

  Status Append(tandem::v1::OpLogEntry& entry) override;

  // A leader that lost (or cannot prove) its lease closes the sequencer: every Append then
  // fails with `status` until Open is called with a new epoch.
  void Close(Status status);
  void Open(uint64_t epoch, uint64_t next_seq);
  // After a cold start (recovery) and before traffic: continue at `next_seq`, with an epoch of
  // at least `min_epoch`, without opening a closed sequencer (a standby's stays closed).
  void Resume(uint64_t min_epoch, uint64_t next_seq);

  // Called after each successful append, under the sequencer's mutex and MetaStore's locks:
  // must not block (e.g. notify a condition variable). Set before traffic starts.
  void SetAppendListener(std::function<void(uint64_t seq)> listener);

  uint64_t last_seq() const { return last_seq_.load(std::memory_order_acquire); }
  uint64_t epoch() const;

 private:
  LogBuffer* const buffer_;
  mutable std::mutex mu_;
  uint64_t epoch_;
  uint64_t next_seq_;
  Status closed_status_;  // OK while open
  std::atomic<uint64_t> last_seq_;
  std::function<void(uint64_t)> listener_;
};

}  // namespace tandem::oplog
