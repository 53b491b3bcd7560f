#include "server/snapshot_image_source.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace tandem::server {
namespace {

class SnapshotImage : public replication::StoredImage {
 public:
  SnapshotImage(std::string id, std::unique_ptr<snapshot::SnapshotReader> reader)
      : id_(std::move(id)), reader_(std::move(reader)) {}

  const std::string& id() const override { return id_; }
  const tandem::v1::StateHeader& header() const override { return reader_->state_header(); }
  Status ForEachChunk(const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) override {
    return reader_->ForEachChunk(emit);
  }

 private:
  const std::string id_;
  std::unique_ptr<snapshot::SnapshotReader> reader_;
};

}  // namespace

SnapshotImageSource::SnapshotImageSource(const snapshot::SnapshotStore* store,
                                         std::string cluster_id)
    : store_(store), cluster_id_(std::move(cluster_id)) {}

std::unique_ptr<replication::StoredImage> SnapshotImageSource::OpenNewest(uint64_t min_seq,
                                                                          uint64_t max_seq) {
  StatusOr<std::vector<snapshot::SnapshotInfo>> list = store_->List();
  if (!list.ok()) {
    spdlog::warn("replication: cannot list snapshots to full-sync from: {}",
                 list.status().message());
    return nullptr;
  }
  for (const snapshot::SnapshotInfo& info : list.value()) {  // newest first
    if (info.seq > max_seq) continue;
    if (info.seq < min_seq) break;
    StatusOr<std::unique_ptr<snapshot::SnapshotReader>> reader = store_->Open(info.id, cluster_id_);
    Status s = reader.ok() ? reader.value()->Verify() : reader.status();
    if (s.ok() && reader.value()->header().seq != info.seq) {
      s = Status(ErrorCode::kInternal, "its header says seq " +
                                           std::to_string(reader.value()->header().seq) +
                                           ", its name seq " + std::to_string(info.seq));
    }
    if (!s.ok()) {
      spdlog::warn("replication: skipping snapshot {} as a full-sync image: {}", info.id,
                   s.message());
      continue;
    }
    return std::make_unique<SnapshotImage>(info.id, std::move(reader).value());
  }
  return nullptr;
}

}  // namespace tandem::server
