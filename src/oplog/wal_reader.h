// WalReader: reads back the write-ahead log WalWriter wrote (format in wal_writer.h), in seq
// order across segments, checking both the record checksum and the entry's own checksum.
//
// What a damaged log does:
// - A torn or corrupt record at the end of the LAST segment with nothing valid after it is what a
//   crash mid-write leaves: the file is cut back to the last whole record (repair_torn_tail) and
//   reading ends cleanly. A segment file too short to hold its header is removed the same way.
// - A record that fails its checksums with valid records after it, a bad or foreign segment
//   header, or a gap/overlap in sequence ids is corruption in the middle: Next returns false,
//   status() names the file, offset and reason, and last_seq() is the last good record before
//   it. Nothing after the damage is returned, so a replay never skips over a hole.
// Not thread-safe; one reader per recovery. No logging: notes() lists the repairs made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "oplog/wal_writer.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::oplog {

struct WalReadOptions {
  std::string dir;
  std::string cluster_id;        // segments of another cluster are refused
  uint64_t from_seq = 1;         // Next skips entries below it (still checking them)
  bool repair_torn_tail = true;  // cut a torn last record (false: report it, change nothing)
};

class WalReader {
 public:
  // Lists the segments; a missing directory is an empty log.
  static StatusOr<std::unique_ptr<WalReader>> Open(const WalReadOptions& options);

  // The next entry with seq >= from_seq. False at the end of the log or at damage (status()).
  bool Next(tandem::v1::OpLogEntry* entry);
  // OK at a clean end (a cut torn tail included); INTERNAL describing mid-log damage.
  const Status& status() const { return status_; }
  // Seq of the last whole record read, 0 when none.
  uint64_t last_seq() const { return last_seq_; }
  // One line per repair or skipped oddity, for the caller to log.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  explicit WalReader(const WalReadOptions& options) : options_(options) {}
  bool LoadNextSegment();
  // A record at pos_ failed to decode: cut a torn tail or report corruption.
  void HandleBadRecord(const std::string& reason);
  void Fail(const std::string& what);
  const wal::SegmentFile& segment() const { return segments_[index_ - 1]; }
  bool last_segment() const { return index_ == segments_.size(); }

  const WalReadOptions options_;
  std::vector<wal::SegmentFile> segments_;
  size_t index_ = 0;  // segments_[index_ - 1] is loaded
  std::string buf_;   // the loaded segment, whole
  size_t pos_ = 0;
  bool loaded_ = false;
  uint64_t expect_seq_ = 0;  // seq the next record must carry; 0 before the first segment
  uint64_t last_seq_ = 0;
  Status status_;
  std::vector<std::string> notes_;
};

// Makes `last_seq` the end of the WAL in `dir` so a writer can continue at last_seq + 1 after a
// replay stopped early (damage, gap, refused entry). Nothing is deleted: segments that start
// after last_seq are renamed `<name>.discarded`; the one holding last_seq is cut after it, its
// cut bytes saved first as `<name>.<offset>.discarded`. Appends one note per action.
Status DiscardWalAfter(const std::string& dir, uint64_t last_seq, std::vector<std::string>* notes);

}  // namespace tandem::oplog
