// LogBuffer: the in-memory window of recent OpLog entries (the "backlog" a reconnecting standby
// resumes from). Bounded by bytes and entries; the oldest entries fall out first. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::oplog {

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
  // Entries with sequence_id > after_seq, at most `limit`. OUT_OF_WINDOW (returned as
  // kInvalidState) when entries after `after_seq` already fell out of the window.
  StatusOr<std::vector<tandem::v1::OpLogEntry>> EntriesSince(uint64_t after_seq,
                                                             size_t limit) const;
  // Drops entries with sequence_id < seq.
  void TruncateBefore(uint64_t seq);

  uint64_t first_seq() const;  // 0 when empty
  uint64_t last_seq() const;   // 0 when empty
  uint64_t size_entries() const;
  uint64_t size_bytes() const;

 private:
  void EvictLocked();

  const LogBufferOptions options_;
  mutable std::mutex mu_;
  std::deque<tandem::v1::OpLogEntry> entries_;
  uint64_t bytes_ = 0;
};

}  // namespace tandem::oplog
