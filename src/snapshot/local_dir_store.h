// LocalDirStore: snapshots as files in one directory (--snapshot-dir, default
// <data-dir>/snapshots). After each successful Write it keeps the newest `retention` valid
// snapshots of the writer's cluster (--snapshot-retention, default 3) and deletes everything
// older; an invalid snapshot newer than those is kept for inspection but not counted. The
// snapshot just written is valid, so the only valid one is never deleted.
// "Valid" for retention means header and footer check out (SnapshotReader::Open); a bad block
// is found when a snapshot is loaded, and recovery then falls back to the next one.
#pragma once

#include <mutex>
#include <string>

#include "snapshot/store.h"

namespace tandem::snapshot {

class LocalDirStore : public SnapshotStore {
 public:
  explicit LocalDirStore(std::string dir, int retention = 3, WriteOptions options = {});

  StatusOr<std::vector<SnapshotInfo>> List() const override;
  // Creates the directory when missing; removes `.tmp` files a crashed write left behind.
  StatusOr<SnapshotInfo> Write(const meta::StateImage& image, const SnapshotMeta& meta) override;
  StatusOr<std::unique_ptr<SnapshotReader>> Open(
      const std::string& id, std::string_view expected_cluster_id) const override;
  Status Remove(const std::string& id) override;

  const std::string& dir() const { return dir_; }
  std::string PathOf(const std::string& id) const;

 private:
  void RemoveStaleTemps();
  // FENCED if a valid snapshot of `cluster_id` has an epoch above `epoch`.
  Status CheckEpoch(std::string_view cluster_id, uint64_t epoch) const;
  void ApplyRetention(std::string_view cluster_id);

  const std::string dir_;
  const int retention_;
  const WriteOptions options_;
  std::mutex write_mu_;  // one Write (and its retention pass) at a time
};

}  // namespace tandem::snapshot
