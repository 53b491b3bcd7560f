// LogBuffer: the in-memory window of recent OpLog entries (the "backlog" a reconnecting standby
// resumes from). Bounded by bytes and entries; the oldest entries fall out first. Thread-safe.
//
// Retention holds: a full sync streams an image captured at seq S and then the log after S, so
// the entries after S must survive while the image is in flight. Hold(seq) keeps entries with
// sequence_id >= seq beyond the normal bounds, but only up to twice them (2x max_bytes, 2x
// max_entries): past that, the holds in the way are dropped (counted in holds_dropped()) and
// eviction resumes. A holder whose hold was dropped finds out when EntriesSince reports the
// window moved past it, and restarts its full sync; memory stays bounded whatever a slow
// standby does.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::oplog {

// Sees every entry the buffer accepts, in order, on every node (the leader's Sequencer and a
// standby's follower both append here): the write-ahead log hooks in through it.
class LogObserver {
 public:
  virtual ~LogObserver() = default;
  // Right after `entry` was stored, under the buffer's mutex (so calls come in seq order): must
  // not block on I/O and must not call back into the buffer.
  virtual void OnAppend(const tandem::v1::OpLogEntry& entry) = 0;
  // After Clear(), outside the buffer's mutex, on the clearing thread: the state the entries
  // lead to was replaced (a full sync). Appends resume after it returns.
  virtual void OnClear() = 0;
};

struct LogBufferOptions {
  uint64_t max_bytes = 256ull << 20;  // --oplog-buffer-bytes
  uint64_t max_entries = 1 << 20;     // --oplog-buffer-entries
};

class LogBuffer {
 public:
  explicit LogBuffer(const LogBufferOptions& options);

  // Appends an entry whose sequence_id must be last_seq()+1 (or any value when empty).
  // Returns INTERNAL on a gap; the entry is not stored.
  Status Append(const tandem::v1::OpLogEntry& entry);
  // The same, taking the entry over (it is left empty only when OK is returned).
  Status Append(tandem::v1::OpLogEntry&& entry);
  // Entries with sequence_id > after_seq, at most `limit`. OUT_OF_WINDOW (returned as
  // kInvalidState) when entries after `after_seq` already fell out of the window.
  StatusOr<std::vector<tandem::v1::OpLogEntry>> EntriesSince(uint64_t after_seq,
                                                             size_t limit) const;
  // Drops entries with sequence_id < seq, but never an entry a hold still keeps.
  void TruncateBefore(uint64_t seq);
  // Drops every entry and every hold (a standby whose state was replaced by a full sync).
  void Clear();
  // Borrowed (nullptr detaches). When this returns, no call to a previous observer is running.
  void SetObserver(LogObserver* observer);

  // Keeps entries with sequence_id >= seq (see the header comment for the 2x limit). Returns a
  // hold id (never 0) for Release.
  uint64_t Hold(uint64_t seq);
  // Ends a hold. Unknown or already dropped ids are ignored.
  void Release(uint64_t hold_id);
  // False once a hold was released or dropped for exceeding the 2x bound.
  bool HoldActive(uint64_t hold_id) const;
  uint64_t holds_dropped() const;  // cumulative

  uint64_t first_seq() const;  // 0 when empty
  uint64_t last_seq() const;   // 0 when empty
  uint64_t size_entries() const;
  uint64_t size_bytes() const;

 private:
  void EvictLocked();
  // True when the oldest entry may go: no hold needs it, or the 2x bound dropped those that did.
  bool MayEvictFrontLocked();
  void PopFrontLocked();

  const LogBufferOptions options_;
  mutable std::mutex mu_;
  std::deque<tandem::v1::OpLogEntry> entries_;
  uint64_t bytes_ = 0;
  std::map<uint64_t, uint64_t> holds_;  // hold id -> first seq it keeps
  uint64_t next_hold_id_ = 1;
  uint64_t holds_dropped_ = 0;
  LogObserver* observer_ = nullptr;
  std::mutex observer_mu_;  // held across OnClear, so SetObserver waits for it
};

}  // namespace tandem::oplog
