// SnapshotImageSource: a node's snapshots as the ReplicationPrimary's ImageSource (issue 5), so a
// standby out of the OpLog window full-syncs from the newest snapshot plus the log after it
// instead of a live image. Each image is checked whole (every block checksum, the footer)
// before it is offered; a damaged, truncated or foreign snapshot is skipped with a log line and
// the next older one in range is tried. Thread-safe (the store is).
#pragma once

#include <memory>
#include <string>

#include "replication/image_source.h"
#include "snapshot/store.h"

namespace tandem::server {

class SnapshotImageSource : public replication::ImageSource {
 public:
  // `store` is borrowed and must outlive this object.
  SnapshotImageSource(const snapshot::SnapshotStore* store, std::string cluster_id);

  std::unique_ptr<replication::StoredImage> OpenNewest(uint64_t min_seq, uint64_t max_seq) override;

 private:
  const snapshot::SnapshotStore* const store_;
  const std::string cluster_id_;
};

}  // namespace tandem::server
