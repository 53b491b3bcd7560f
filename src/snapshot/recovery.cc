#include "snapshot/recovery.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "oplog/wal_reader.h"

namespace tandem::snapshot {
namespace {

// Step 1: the newest snapshot that loads; the store stays empty when none does.
Status LoadNewestSnapshot(meta::MetaStore* store, SnapshotStore& snapshots,
                          std::string_view cluster_id, uint64_t now_ms, RecoveryReport* report) {
  StatusOr<std::vector<SnapshotInfo>> list = snapshots.List();
  if (!list.ok()) return list.status();
  for (const SnapshotInfo& info : list.value()) {
    StatusOr<std::unique_ptr<SnapshotReader>> reader = snapshots.Open(info.id, cluster_id);
    Status s = reader.ok() ? reader.value()->LoadInto(store, now_ms) : reader.status();
    if (s.ok()) {
      report->snapshot_id = info.id;
      report->snapshot_seq = store->applied_seq();
      spdlog::info("recovery: loaded snapshot {} (seq={} epoch={} objects={})", info.id,
                   store->applied_seq(), store->applied_epoch(), store->GetStats().object_count);
      return Status::Ok();
    }
    spdlog::warn("skipping snapshot {}: {}", info.id, s.message());
    report->skipped.push_back({info.id, s.message()});
  }
  if (!list.value().empty()) {
    spdlog::warn("recovery: none of {} snapshots is usable; starting from an empty state",
                 list.value().size());
  }
  return Status::Ok();
}

// Step 2: the WAL tail. Returns the reason replay stopped early, or "" at the log's clean end.
StatusOr<std::string> ReplayWal(meta::MetaStore* store, const std::string& wal_dir,
                                std::string_view cluster_id, const ReplayedEntryFn& on_replayed,
                                RecoveryReport* report) {
  oplog::WalReadOptions options;
  options.dir = wal_dir;
  options.cluster_id = std::string(cluster_id);
  options.from_seq = store->applied_seq() + 1;
  StatusOr<std::unique_ptr<oplog::WalReader>> opened = oplog::WalReader::Open(options);
  if (!opened.ok()) return opened.status();
  oplog::WalReader& reader = *opened.value();
  std::string stop;
  tandem::v1::OpLogEntry entry;
  while (stop.empty() && reader.Next(&entry)) {
    const uint64_t expected = store->applied_seq() + 1;
    if (entry.sequence_id() != expected) {
      stop = fmt::format("WAL gap: the state is at seq {}, the WAL continues at seq {}",
                         expected - 1, entry.sequence_id());
    } else if (Status s = store->Apply(entry); !s.ok()) {
      stop = fmt::format("entry seq {} refused by the store: {}", entry.sequence_id(), s.message());
    } else {
      ++report->wal_records_replayed;
      if (on_replayed) on_replayed(entry);
    }
  }
  for (const std::string& note : reader.notes()) {
    spdlog::warn("recovery: {}", note);
    report->wal_notes.push_back(note);
  }
  if (stop.empty() && !reader.status().ok()) stop = reader.status().message();
  return stop;
}

}  // namespace

std::string RecoveryReport::Summary() const {
  std::string out = fmt::format(
      "recovered seq={} epoch={} objects={} from {} + {} WAL records in {:.2f} s", last_seq,
      last_epoch, objects, snapshot_id.empty() ? "no snapshot" : "snapshot " + snapshot_id,
      wal_records_replayed, seconds);
  if (!skipped.empty()) out += fmt::format("; {} snapshot(s) skipped", skipped.size());
  if (!wal_stop_reason.empty()) out += "; WAL replay stopped early: " + wal_stop_reason;
  return out;
}

StatusOr<RecoveryReport> RecoverState(meta::MetaStore* store, SnapshotStore& snapshots,
                                      const std::string& wal_dir, std::string_view cluster_id,
                                      uint64_t now_ms, const ReplayedEntryFn& on_replayed) {
  const auto start = std::chrono::steady_clock::now();
  if (store->applied_seq() != 0 || store->GetStats().object_count != 0) {
    return Status(ErrorCode::kInvalidParams, "recovery needs a fresh store");
  }
  RecoveryReport report;
  if (Status s = LoadNewestSnapshot(store, snapshots, cluster_id, now_ms, &report); !s.ok()) {
    return s;
  }
  StatusOr<std::string> stop = ReplayWal(store, wal_dir, cluster_id, on_replayed, &report);
  if (!stop.ok()) return stop.status();
  report.wal_stop_reason = stop.value();
  if (!report.wal_stop_reason.empty()) {
    spdlog::error("recovery: WAL replay stopped at seq {}: {}", store->applied_seq(),
                  report.wal_stop_reason);
    // What follows cannot be applied; set it aside so the WAL continues at applied_seq + 1.
    std::vector<std::string> notes;
    Status s = oplog::DiscardWalAfter(wal_dir, store->applied_seq(), &notes);
    for (const std::string& note : notes) spdlog::warn("recovery: {}", note);
    report.wal_notes.insert(report.wal_notes.end(), notes.begin(), notes.end());
    if (!s.ok()) return s;
  }
  store->RefreshSoftState(now_ms);
  report.last_seq = store->applied_seq();
  report.last_epoch = store->applied_epoch();
  report.objects = store->GetStats().object_count;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("{}", report.Summary());
  return report;
}

}  // namespace tandem::snapshot
