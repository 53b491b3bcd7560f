// Writes a StateImage as a snapshot file (format.h): to `<dir>/snapshot-<seq>.tmp`, fsynced,
// renamed to `.snap`, directory fsynced -- a crash leaves either no snapshot or a whole one.
// Serialization happens here, off every MetaStore lock (the image is already a copy).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "meta/meta_store.h"

namespace tandem::snapshot {

struct SnapshotMeta {
  std::string cluster_id;
  uint64_t epoch = 0;       // the writer's current epoch; 0: the image's applied_epoch
  uint64_t created_ms = 0;  // wall clock, for snapshot age
};

struct WriteOptions {
  size_t objects_per_block = 4096;  // ~300 KB blocks: checksummed and parsed one at a time
};

struct WrittenSnapshot {
  std::string path;
  uint64_t seq = 0;
  uint64_t epoch = 0;
  uint64_t objects = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

// Writes `image` into `dir` (which must exist). On error the temp file is removed.
StatusOr<WrittenSnapshot> WriteSnapshotFile(const meta::StateImage& image, const SnapshotMeta& meta,
                                            const std::string& dir,
                                            const WriteOptions& options = {});

}  // namespace tandem::snapshot
