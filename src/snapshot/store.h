// SnapshotStore: where snapshots live. The default is a local directory (LocalDirStore); the
// interface is small so an object store can follow (DESIGN.md §5). Implementations are
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "meta/meta_store.h"
#include "snapshot/reader.h"
#include "snapshot/writer.h"

namespace tandem::snapshot {

struct SnapshotInfo {
  std::string id;    // store-specific name, e.g. "snapshot-00000000000000001234.snap"
  uint64_t seq = 0;  // from the name; Open checks it against the header
  uint64_t bytes = 0;
  // Filled by Write only (List reads no headers): for metrics and the log.
  uint64_t epoch = 0;
  uint64_t objects = 0;
  double write_seconds = 0;
  double paced_seconds = 0;  // of write_seconds, waiting for the write pace
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // Every stored snapshot, valid or not, newest (highest seq) first.
  virtual StatusOr<std::vector<SnapshotInfo>> List() const = 0;
  // Stores a snapshot of `image`, then applies the retention policy. FENCED when the store
  // already holds a valid snapshot of a newer epoch (DESIGN.md §4: a deposed leader's late
  // snapshot must not replace its successor's).
  virtual StatusOr<SnapshotInfo> Write(const meta::StateImage& image, const SnapshotMeta& meta) = 0;
  // A reader over snapshot `id`, header and footer checked (see SnapshotReader::Open).
  virtual StatusOr<std::unique_ptr<SnapshotReader>> Open(
      const std::string& id, std::string_view expected_cluster_id) const = 0;
  virtual Status Remove(const std::string& id) = 0;
};

}  // namespace tandem::snapshot
