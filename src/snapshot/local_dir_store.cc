#include "snapshot/local_dir_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "snapshot/file_io.h"

namespace tandem::snapshot {
namespace {

namespace fs = std::filesystem;

Status FsError(std::string_view what, const std::string& path, const std::error_code& ec) {
  return Status(ErrorCode::kInternal, fmt::format("{} {}: {}", what, path, ec.message()));
}

}  // namespace

LocalDirStore::LocalDirStore(std::string dir, int retention, WriteOptions options)
    : dir_(std::move(dir)), retention_(std::max(retention, 1)), options_(options) {}

std::string LocalDirStore::PathOf(const std::string& id) const {
  return (fs::path(dir_) / id).string();
}

StatusOr<std::vector<SnapshotInfo>> LocalDirStore::List() const {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::optional<uint64_t> seq = ParseSnapshotFileName(name);
    if (!seq || !it->is_regular_file()) continue;
    uint64_t bytes = it->file_size(ec);
    if (ec) break;
    out.push_back({std::move(name), *seq, bytes});
  }
  if (ec) return FsError("list", dir_, ec);
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.seq > b.seq; });
  return out;
}

StatusOr<SnapshotInfo> LocalDirStore::Write(const meta::StateImage& image,
                                            const SnapshotMeta& meta) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return FsError("create", dir_, ec);
  RemoveStaleTemps();
  const uint64_t epoch = meta.epoch != 0 ? meta.epoch : image.header().applied_epoch();
  if (Status s = CheckEpoch(meta.cluster_id, epoch); !s.ok()) {
    spdlog::warn("snapshot seq={} epoch={} refused: {}", image.header().applied_seq(), epoch,
                 s.message());
    return s;
  }
  StatusOr<WrittenSnapshot> written = WriteSnapshotFile(image, meta, dir_, options_);
  if (!written.ok()) {
    spdlog::error("snapshot seq={} not written: {}", image.header().applied_seq(),
                  written.status().ToString());
    return written.status();
  }
  const WrittenSnapshot& w = written.value();
  spdlog::info(
      "snapshot seq={} epoch={} objects={} bytes={} written in {:.2f} s ({:.2f} s of it "
      "paced) ({})",
      w.seq, w.epoch, w.objects, w.bytes, w.seconds, w.paced_seconds, w.path);
  ApplyRetention(meta.cluster_id);
  return SnapshotInfo{fs::path(w.path).filename().string(),
                      w.seq,
                      w.bytes,
                      w.epoch,
                      w.objects,
                      w.seconds,
                      w.paced_seconds};
}

Status LocalDirStore::CheckEpoch(std::string_view cluster_id, uint64_t epoch) const {
  StatusOr<std::vector<SnapshotInfo>> all = List();
  if (!all.ok()) return all.status();
  for (const SnapshotInfo& s : all.value()) {
    StatusOr<std::unique_ptr<SnapshotReader>> reader = Open(s.id, cluster_id);
    if (reader.ok() && reader.value()->header().epoch > epoch) {
      return Status(ErrorCode::kFenced, fmt::format("snapshot {} is of epoch {}, newer than {}",
                                                    s.id, reader.value()->header().epoch, epoch));
    }
  }
  return Status::Ok();
}

void LocalDirStore::RemoveStaleTemps() {
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".tmp" || !p.filename().string().starts_with("snapshot-")) continue;
    std::error_code rm;
    fs::remove(p, rm);
    spdlog::warn("removed {}: a snapshot write that never finished", p.string());
  }
}

void LocalDirStore::ApplyRetention(std::string_view cluster_id) {
  StatusOr<std::vector<SnapshotInfo>> all = List();
  if (!all.ok()) {
    spdlog::warn("snapshot retention skipped: {}", all.status().ToString());
    return;
  }
  int valid = 0;
  for (const SnapshotInfo& s : all.value()) {
    if (valid >= retention_) {
      spdlog::info("removing snapshot {}: older than the newest {} valid ones", s.id, retention_);
      if (Status r = Remove(s.id); !r.ok()) spdlog::warn("{}", r.ToString());
      continue;
    }
    StatusOr<std::unique_ptr<SnapshotReader>> reader = Open(s.id, cluster_id);
    if (reader.ok()) {
      ++valid;
    } else {
      spdlog::warn("snapshot {} is not valid ({}); kept for inspection, not counted", s.id,
                   reader.status().message());
    }
  }
}

StatusOr<std::unique_ptr<SnapshotReader>> LocalDirStore::Open(
    const std::string& id, std::string_view expected_cluster_id) const {
  std::optional<uint64_t> seq = ParseSnapshotFileName(id);
  if (!seq) return Status(ErrorCode::kInvalidParams, fmt::format("'{}' is not a snapshot id", id));
  StatusOr<std::unique_ptr<SnapshotReader>> reader =
      SnapshotReader::Open(PathOf(id), expected_cluster_id);
  if (reader.ok() && reader.value()->header().seq != *seq) {
    return Status(ErrorCode::kInternal, fmt::format("named seq {} but its header says seq {}", *seq,
                                                    reader.value()->header().seq));
  }
  return reader;
}

Status LocalDirStore::Remove(const std::string& id) {
  if (!ParseSnapshotFileName(id)) {
    return Status(ErrorCode::kInvalidParams, fmt::format("'{}' is not a snapshot id", id));
  }
  std::error_code ec;
  fs::remove(PathOf(id), ec);
  if (ec) return FsError("remove", PathOf(id), ec);
  return FsyncDir(dir_);
}

}  // namespace tandem::snapshot
