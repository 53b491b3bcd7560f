// WalWriter: the local write-ahead log of the entries a node applies (DESIGN.md §5). Append-only
// segment files `<dir>/wal-<first seq, 20 digits>.log`, group commit by one flusher thread, an
// fsync policy, rotation by size, and deletion of segments a snapshot covers.
//
// Contract:
// - Entries must arrive in sequence order without gaps: the first one appended after Open (or
//   Reset) has seq `next_seq`, each next one seq + 1. Anything else is refused (INTERNAL).
// - Enqueue never waits for I/O (safe to call under other locks); Append/AppendBatch also wait
//   for the fsync of their records under the `always` policy. Callers never block each other on
//   I/O: the flusher writes and fsyncs everything queued since its last round in one go.
// - durable_seq() is the highest seq the policy made durable: fsynced for `always`/`interval`,
//   handed to the OS (survives a process crash, not a power loss) for `never`. Sync() forces an
//   fsync under every policy.
// - I/O errors are sticky: after a failed write or fsync every call returns that error (a failed
//   fsync cannot be retried safely; the node must restart and recover).
// - Thread-safe. Open only after recovery (see wal_reader.h: DiscardWalAfter) so the directory
//   holds nothing at or beyond `next_seq`; no logging here (the oplog module stays pure), callers
//   log the statuses and counts this returns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "tandem/v1/oplog.pb.h"

namespace tandem::oplog {

// ---- On-disk format (version 1), shared with wal_reader.cc. Integers are little-endian. ----
//   segment header: magic "TNDMWAL1" | u32 version | u32 cluster_id_len | cluster_id |
//                   u64 first_seq | u32 xxh32(everything before it)
//   record:         u32 payload_len | u32 xxh32(payload, seed = payload_len) | OpLogEntry
//   (protobuf)
// The length seeds the record checksum so a flipped length byte is caught, not followed.
namespace wal {
inline constexpr std::string_view kMagic = "TNDMWAL1";
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kRecordHeaderBytes = 8;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;
inline constexpr uint32_t kMaxClusterIdBytes = 1024;

struct SegmentFile {
  uint64_t first_seq = 0;
  std::string path;
  uint64_t bytes = 0;
};

std::string SegmentFileName(uint64_t first_seq);  // "wal-00000000000000000042.log"
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);
void AppendSegmentHeader(std::string_view cluster_id, uint64_t first_seq, std::string* out);
size_t SegmentHeaderBytes(std::string_view cluster_id);
uint32_t RecordChecksum(std::string_view payload);
// The `wal-*.log` files of `dir`, ascending by first seq. A missing directory holds none.
StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir);
}  // namespace wal

enum class WalFsync { kAlways, kInterval, kNever };
std::optional<WalFsync> ParseWalFsync(std::string_view name);  // "always" | "interval" | "never"
std::string_view WalFsyncName(WalFsync policy);

struct WalOptions {
  std::string dir;         // --wal-dir (default <data-dir>/wal); created when missing
  std::string cluster_id;  // written into every segment header; a foreign segment is refused
  WalFsync fsync = WalFsync::kInterval;  // --wal-fsync
  uint64_t fsync_interval_ms = 10;       // --wal-fsync-interval-ms
  uint64_t segment_bytes = 64ull << 20;  // --wal-segment-bytes
};

struct WalStats {
  uint64_t appended_seq = 0;
  uint64_t durable_seq = 0;
  uint64_t segments = 0;
  uint64_t bytes_on_disk = 0;  // all segment files, including those written before Open
  uint64_t fsyncs = 0;         // cumulative, this process
};

class WalWriter {
 public:
  // Starts the flusher. The first segment is created with the first record, named after it.
  static StatusOr<std::unique_ptr<WalWriter>> Open(const WalOptions& options, uint64_t next_seq);
  // Writes and fsyncs everything appended, then stops the flusher.
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Queues records for the flusher; never waits for I/O.
  Status Enqueue(std::span<const tandem::v1::OpLogEntry> entries);
  // Enqueue, then under `always` wait until the records are fsynced.
  Status Append(const tandem::v1::OpLogEntry& entry);
  Status AppendBatch(std::span<const tandem::v1::OpLogEntry> entries);
  // Writes and fsyncs everything appended so far, whatever the policy.
  Status Sync();
  // Waits until durable_seq() >= seq. UNAVAILABLE on timeout, the sticky error on failure.
  Status WaitDurable(uint64_t seq, std::chrono::milliseconds timeout);

  uint64_t appended_seq() const;
  uint64_t durable_seq() const;
  WalStats stats() const;
  Status status() const;  // OK, or the sticky I/O error

  // Deletes the segment files whose every entry is <= seq (never the one being written).
  // Returns how many were deleted.
  StatusOr<int> RemoveCoveredBy(uint64_t seq);
  // Deletes every segment and continues at `next_seq` (after a full sync replaced the state; write
  // a snapshot of the new state first). Must not race with appends.
  Status Reset(uint64_t next_seq);

 private:
  // Records queued for one segment; `new_segment` starts a file before them.
  struct Pending {
    bool new_segment = false;
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    std::string bytes;
  };
  struct Round {
    bool write = false;
    bool fsync = false;
  };

  WalWriter(const WalOptions& options, uint64_t next_seq, std::vector<wal::SegmentFile> segments);
  void StartFlusher();
  void StopFlusher();
  void FlusherLoop();
  Round DecideRoundLocked(std::chrono::steady_clock::time_point now) const;
  // Writes `batch` (and fsyncs when asked) without holding mu_.
  Status WriteRound(std::vector<Pending>& batch, bool fsync);
  Status StartSegment(uint64_t first_seq);
  std::chrono::steady_clock::time_point NextDeadlineLocked() const;
  // Waits until seq is fsynced (or durable per policy) or the WAL failed; UNAVAILABLE at deadline.
  Status WaitLocked(std::unique_lock<std::mutex>& lock, uint64_t seq, bool fsynced,
                    std::optional<std::chrono::steady_clock::time_point> deadline);
  uint64_t DurableLocked() const;

  const WalOptions options_;
  mutable std::mutex mu_;
  std::condition_variable flusher_cv_;  // work for the flusher
  std::condition_variable durable_cv_;  // written_seq_/synced_seq_ moved or failed_
  std::vector<Pending> pending_;
  uint64_t pending_bytes_ = 0;
  uint64_t appended_seq_;
  uint64_t written_seq_;       // handed to the OS
  uint64_t synced_seq_;        // fsynced
  uint64_t sync_wanted_;       // highest seq a caller asked to fsync (Sync, always-mode appends)
  uint64_t segment_fill_ = 0;  // bytes assigned to the newest segment, queued ones included
  bool segment_started_ = false;
  bool flushing_ = false;  // a round is in flight outside the lock
  bool stop_ = false;
  Status failed_;
  std::chrono::steady_clock::time_point last_write_{};
  std::chrono::steady_clock::time_point last_fsync_{};
  std::vector<wal::SegmentFile> segments_;  // ascending; the last is written when writing_segment_
  bool writing_segment_ = false;            // the flusher created a segment since Open/Reset
  uint64_t open_seq_;                       // next_seq at Open/Reset: older segments end before it
  uint64_t fsyncs_ = 0;
  // The segment being written: touched by the flusher only (and Reset, with the flusher stopped).
  int active_fd_ = -1;
  std::string active_path_;
  std::thread flusher_;
};

}  // namespace tandem::oplog
