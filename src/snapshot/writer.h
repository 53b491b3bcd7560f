// Writes a StateImage as a snapshot file (format.h): to `<dir>/snapshot-<seq>.tmp`, fsynced,
// renamed to `.snap`, directory fsynced -- a crash leaves either no snapshot or a whole one.
// Serialization happens here, off every MetaStore lock (the image is already a copy).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "meta/meta_store.h"

namespace tandem::snapshot {

struct SnapshotMeta {
  std::string cluster_id;
  uint64_t epoch = 0;       // the writer's current epoch; 0: the image's applied_epoch
  uint64_t created_ms = 0;  // wall clock, for snapshot age
  bool unpaced = false;     // ignore WriteOptions::max_bytes_per_s (a node serving no clients)
  // When set and true, the rest of the file is written unpaced (a node that is stopping).
  const std::atomic<bool>* stop_pacing = nullptr;
  // When set, asked after each paced piece: true (nobody is being served) skips that piece's
  // wait. See WritableFile::Pace.
  std::function<bool()> idle = nullptr;
  // Runs after each block is serialized and written, e.g. to give the CPU back to clients.
  std::function<void()> between_blocks = nullptr;
};

struct WriteOptions {
  // ~10 KB blocks, each checksummed and parsed on its own; one serializes in ~100 µs, which is
  // how often a snapshot can give the CPU back (SnapshotMeta::between_blocks).
  size_t objects_per_block = 128;
  // Disk write pacing (WritePacer): average bytes per second, 0 for as fast as the disk takes
  // them, and how many bytes go to the disk (fdatasync) at a time when paced.
  uint64_t max_bytes_per_s = 0;
  size_t paced_sync_bytes = 1u << 20;
};

struct WrittenSnapshot {
  std::string path;
  uint64_t seq = 0;
  uint64_t epoch = 0;
  uint64_t objects = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double paced_seconds = 0;  // of `seconds`, waiting for WriteOptions::max_bytes_per_s
};

// Writes `image` into `dir` (which must exist). On error the temp file is removed.
StatusOr<WrittenSnapshot> WriteSnapshotFile(const meta::StateImage& image, const SnapshotMeta& meta,
                                            const std::string& dir,
                                            const WriteOptions& options = {});

}  // namespace tandem::snapshot
