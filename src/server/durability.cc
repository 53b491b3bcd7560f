#include "server/durability.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <span>

#include "server/cpu_yielder.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

double SecondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

oplog::WalFsync FsyncOf(const MasterConfig& config) {
  return oplog::ParseWalFsync(config.wal_fsync).value_or(oplog::WalFsync::kInterval);
}

Status Unavailable(const std::string& why) { return Status(ErrorCode::kUnavailable, why); }

snapshot::WriteOptions SnapshotWriteOptionsOf(const MasterConfig& config) {
  snapshot::WriteOptions options;
  options.max_bytes_per_s = static_cast<uint64_t>(config.snapshot_write_mib_per_s) << 20;
  return options;
}

}  // namespace

std::string WalDirOf(const MasterConfig& config) {
  return config.wal_dir.empty() ? (fs::path(config.data_dir) / "wal").string() : config.wal_dir;
}

std::string SnapshotDirOf(const MasterConfig& config) {
  return config.snapshot_dir.empty() ? (fs::path(config.data_dir) / "snapshots").string()
                                     : config.snapshot_dir;
}

uint64_t SnapshotTruncationPoint(uint64_t snapshot_seq, uint64_t min_needed_seq,
                                 uint64_t window_last) {
  if (window_last == 0) return 0;
  const uint64_t after_snapshot = snapshot_seq == UINT64_MAX ? UINT64_MAX : snapshot_seq + 1;
  return std::min({after_snapshot, min_needed_seq, window_last});
}

Durability::Durability(const MasterConfig& config, Deps deps)
    : config_(config),
      deps_(std::move(deps)),
      fsync_(FsyncOf(config)),
      wal_dir_(WalDirOf(config)),
      snapshot_dir_(SnapshotDirOf(config)),
      snapshots_(snapshot_dir_, static_cast<int>(config.snapshot_retention),
                 SnapshotWriteOptionsOf(config)),
      image_source_(&snapshots_, config.cluster_id) {}

Durability::~Durability() { Stop(); }

// ---- Cold start ----

Status Durability::PrepareDir(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kInvalidParams, "cannot create " + dir + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) {
    return Status(ErrorCode::kInvalidParams, dir + " is not a directory");
  }
  const std::string probe = (fs::path(dir) / ".tandem-write-test").string();
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(ErrorCode::kInvalidParams,
                  dir + " is not writable: " + std::string(std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::Ok();
}

Status Durability::Recover() {
  if (recovered_) return Status(ErrorCode::kInvalidState, "durability: Recover called twice");
  recovering_.store(true, std::memory_order_release);
  struct Done {
    std::atomic<bool>* flag;
    ~Done() { flag->store(false, std::memory_order_release); }
  } done{&recovering_};
  if (Status s = PrepareDir(wal_dir_); !s.ok()) {
    return Status(s.code(), "--wal-dir: " + s.message());
  }
  if (Status s = PrepareDir(snapshot_dir_); !s.ok()) {
    return Status(s.code(), "--snapshot-dir: " + s.message());
  }
  spdlog::info("durability: recovering from {} (snapshots) and {} (WAL), cluster {}", snapshot_dir_,
               wal_dir_, config_.cluster_id);
  // The replayed WAL tail also refills the OpLog window (the observer is not attached yet, so
  // nothing is logged twice), so standbys within it resume incrementally after a restart. The
  // buffer's bounds apply as to any append: a long tail keeps only its newest part.
  oplog::LogBuffer* log = deps_.log;
  uint64_t refilled = 0;
  std::string refill_error;
  const uint64_t previous_last = log->last_seq();
  auto refill = [&](const tandem::v1::OpLogEntry& entry) {
    if (!refill_error.empty()) return;
    if (Status s = log->Append(entry); !s.ok()) {
      refill_error = s.message();  // a gap cannot happen (replay stops at one); log it if it did
      return;
    }
    ++refilled;
  };
  snapshot::ReplayedEntryFn on_replayed;
  if (previous_last == 0) on_replayed = refill;
  StatusOr<snapshot::RecoveryReport> recovered = snapshot::RecoverState(
      deps_.store, snapshots_, wal_dir_, config_.cluster_id, deps_.clock->NowMs(), on_replayed);
  if (!recovered.ok())
    return Status(recovered.status().code(), "recovery failed: " + recovered.status().message());
  report_ = std::move(recovered).value();
  if (previous_last != 0) {
    spdlog::warn(
        "durability: the oplog window was not empty at recovery (last seq {}); not refilled "
        "from the WAL",
        previous_last);
  } else if (!refill_error.empty() ||
             (log->last_seq() != 0 && log->last_seq() != report_.last_seq)) {
    // The window must end where the state does, or the Sequencer's next append is refused.
    spdlog::error(
        "durability: refilling the oplog window from the WAL failed ({}); starting with an "
        "empty window at seq {}",
        refill_error.empty() ? "it ends at seq " + std::to_string(log->last_seq()) : refill_error,
        report_.last_seq);
    log->Clear();
    refilled = 0;
  } else {
    spdlog::info(
        "durability: oplog window refilled with {} of {} replayed WAL entries: [{}, {}] "
        "(bounded by --oplog-buffer-entries/bytes)",
        refilled, report_.wal_records_replayed, log->first_seq(), log->last_seq());
  }

  oplog::WalOptions options;
  options.dir = wal_dir_;
  options.cluster_id = config_.cluster_id;
  options.fsync = fsync_;
  options.fsync_interval_ms = static_cast<uint64_t>(config_.wal_fsync_interval_ms);
  options.segment_bytes = config_.wal_segment_bytes;
  StatusOr<std::unique_ptr<oplog::WalWriter>> wal =
      oplog::WalWriter::Open(options, report_.last_seq + 1);
  if (!wal.ok())
    return Status(wal.status().code(), "cannot open the WAL: " + wal.status().message());

  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.recovered_seq = report_.last_seq;
    stats_.recovered_epoch = report_.last_epoch;
    stats_.recovered_snapshot = report_.snapshot_id;
    stats_.recovered_wal_records = report_.wal_records_replayed;
    stats_.skipped_snapshots = report_.skipped.size();
    stats_.recovery_summary = report_.Summary();
    stats_.recovery_seconds = report_.seconds;
    stats_.oplog_refilled_entries = refilled;
    if (!report_.snapshot_id.empty()) {
      stats_.last_snapshot_id = report_.snapshot_id;
      stats_.last_snapshot_seq = report_.snapshot_seq;
      auto reader = snapshots_.Open(report_.snapshot_id, config_.cluster_id);
      if (reader.ok()) {
        stats_.last_snapshot_bytes = reader.value()->file_bytes();
        stats_.last_snapshot_created_ms = reader.value()->header().created_ms;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    wal_ = std::move(wal).value();
  }
  recovered_ = true;
  deps_.log->SetObserver(this);
  spdlog::info(
      "durability: node {} recovered (epoch {}, seq {}); WAL continues at seq {} (fsync {}), "
      "snapshots every {} s, {} kept",
      config_.node_id, report_.last_epoch, report_.last_seq, report_.last_seq + 1,
      oplog::WalFsyncName(fsync_), config_.snapshot_interval_s, config_.snapshot_retention);
  return Status::Ok();
}

void Durability::Start() {
  if (!recovered_) return;
  std::lock_guard<std::mutex> lock(loop_mu_);
  if (started_) return;
  started_ = true;
  stop_ = false;
  {
    std::lock_guard<std::mutex> waiters_lock(waiters_mu_);
    waiters_stop_ = false;
  }
  {
    std::lock_guard<std::mutex> snapshot_lock(snapshot_mu_);
    writer_ = std::make_unique<LowPriorityRunner>(config_.snapshot_priority);
  }
  snapshot_thread_ = std::thread([this] { SnapshotLoop(); });
  waiter_thread_ = std::thread([this] { WaiterLoop(); });
}

void Durability::Stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stop_ = true;  // also ends the pacing of a snapshot under way (WriteImage)
  }
  loop_cv_.notify_all();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  {
    std::lock_guard<std::mutex> snapshot_lock(snapshot_mu_);
    writer_.reset();
  }
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    waiters_stop_ = true;
  }
  waiters_cv_.notify_all();
  if (waiter_thread_.joinable()) waiter_thread_.join();
  if (recovered_) {
    deps_.log->SetObserver(nullptr);
    recovered_ = false;
    std::lock_guard<std::mutex> lock(wal_mu_);
    if (wal_ != nullptr) {
      if (Status s = wal_->Sync(); !s.ok()) spdlog::error("durability: WAL sync: {}", s.message());
      spdlog::info("durability: WAL closed at seq {} (durable {})", wal_->appended_seq(),
                   wal_->durable_seq());
    }
  }
  std::lock_guard<std::mutex> lock(loop_mu_);
  started_ = false;
}

// ---- The WAL hook ----

void Durability::OnAppend(const tandem::v1::OpLogEntry& entry) {
  std::lock_guard<std::mutex> lock(wal_mu_);
  if (wal_ == nullptr) return;
  const uint64_t seq = entry.sequence_id();
  const uint64_t next = wal_->appended_seq() + 1;
  if (seq < next) return;  // covered by the snapshot the WAL restarted after
  if (seq > next) {
    // Should not happen (every applied entry passes here, and a replaced state comes through
    // OnClear): restart the WAL at this entry and let the next snapshot cover the hole.
    spdlog::error(
        "durability: WAL gap: entry seq {} arrived, the WAL expected seq {}; restarting the WAL "
        "at seq {} and taking a snapshot",
        seq, next, seq);
    if (Status s = wal_->Reset(seq); !s.ok()) {
      NoteWalError(s);
      return;
    }
    {
      std::lock_guard<std::mutex> loop_lock(loop_mu_);
      requests_.push_back([](const StatusOr<SnapshotResult>&) {});
    }
    loop_cv_.notify_one();
  }
  if (Status s = wal_->Enqueue(std::span<const tandem::v1::OpLogEntry>(&entry, 1)); !s.ok()) {
    NoteWalError(s);
  }
}

void Durability::NoteWalError(const Status& status) {
  // wal_mu_ held. Log the first of a run of refusals, count them all.
  if (refused_appends_++ == 0 || wal_error_ != status.message()) {
    spdlog::error(
        "durability: WAL append failed: {} (the node keeps serving from memory; "
        "restart it to recover from its snapshots and WAL)",
        status.message());
  }
  wal_error_ = status.message();
}

void Durability::OnClear() {
  if (!recovered_) return;
  const uint64_t seq = deps_.store->applied_seq();
  spdlog::info(
      "durability: the state was replaced at seq {} (full sync); writing a snapshot of it and "
      "restarting the WAL after it",
      seq);
  StatusOr<SnapshotResult> result = TakeSnapshot(/*rebase=*/true);
  if (!result.ok()) {
    spdlog::error("durability: snapshot after the full sync failed: {}", result.status().message());
  }
}

// ---- Snapshots ----

StatusOr<snapshot::SnapshotInfo> Durability::WriteImage(
    const meta::StateImage& image, bool rebase, const std::function<void()>& between_blocks) {
  snapshot::SnapshotMeta meta;
  meta.cluster_id = config_.cluster_id;
  meta.epoch = deps_.current_epoch ? deps_.current_epoch() : 0;
  meta.epoch = std::max(meta.epoch, image.header().applied_epoch());
  meta.created_ms = deps_.clock->NowMs();
  meta.unpaced = rebase;
  meta.between_blocks = between_blocks;
  meta.stop_pacing = &stop_;
  if (deps_.activity) {
    // Idle since the previous piece: nobody is waiting on this node, so the piece need not wait.
    meta.idle = [activity = deps_.activity, last = deps_.activity()]() mutable {
      const uint64_t now = activity();
      const bool idle = now == last;
      last = now;
      return idle;
    };
  }
  StatusOr<snapshot::SnapshotInfo> written = snapshots_.Write(image, meta);
  if (written.ok() || !rebase || written.status().code() != ErrorCode::kFenced) return written;
  // A replaced state is authoritative: snapshots of a newer epoch here are of a history this
  // node abandoned (a deposed leader's). Remove them and write again.
  auto list = snapshots_.List();
  if (!list.ok()) return list.status();
  for (const snapshot::SnapshotInfo& info : list.value()) {
    auto reader = snapshots_.Open(info.id, config_.cluster_id);
    if (reader.ok() && reader.value()->header().epoch > meta.epoch) {
      spdlog::warn(
          "durability: removing snapshot {} of epoch {}: this node's state was replaced "
          "by a full sync in epoch {}",
          info.id, reader.value()->header().epoch, meta.epoch);
      (void)snapshots_.Remove(info.id);
    }
  }
  return snapshots_.Write(image, meta);
}

StatusOr<SnapshotResult> Durability::TakeSnapshot(bool rebase) {
  std::lock_guard<std::mutex> snapshot_lock(snapshot_mu_);
  if (!recovered_) return Unavailable("durability is not running");
  const auto start = Steady::now();
  // Both the capture and the serialization give the CPU back every ~100 µs (cpu_yielder.h).
  CpuYielder yielder;
  const std::function<void()> yield = [&yielder] { yielder.MaybeYield(); };
  std::unique_ptr<meta::StateImage> image = deps_.store->CaptureImage(yield);
  const double capture_seconds = SecondsSince(start);
  const uint64_t seq = image->header().applied_seq();
  if (rebase) {
    // Order matters for a crash in between: first forget the abandoned history (snapshots past
    // seq, then the WAL), then write the new state. A crash before the write leaves an older
    // snapshot and a WAL that starts after a gap -- an older but consistent state.
    auto list = snapshots_.List();
    if (list.ok()) {
      for (const snapshot::SnapshotInfo& info : list.value()) {
        if (info.seq <= seq) continue;
        spdlog::warn("durability: removing snapshot {}: it is past the replaced state's seq {}",
                     info.id, seq);
        (void)snapshots_.Remove(info.id);
      }
    }
    std::lock_guard<std::mutex> lock(wal_mu_);
    if (Status s = wal_->Reset(seq + 1); !s.ok()) NoteWalError(s);
    if (seq == 0) return SnapshotResult{};  // an empty state: nothing to write
  }
  // Serializing takes a core for a second or more: on a small machine the threads that serve
  // clients go first. No lock is held while it runs. A rebase runs on the follower's thread,
  // which must not wait behind idle-class work: it writes inline, as before.
  auto write = [&] { return WriteImage(*image, rebase, yield); };
  StatusOr<snapshot::SnapshotInfo> written =
      writer_ != nullptr && !rebase ? writer_->Run(write) : write();
  const double seconds = SecondsSince(start);
  if (!written.ok()) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.snapshots_failed;
    stats_.last_snapshot_error = written.status().message();
    spdlog::error("durability: snapshot at seq {} failed: {}", seq, written.status().message());
    return written.status();
  }
  const snapshot::SnapshotInfo& info = written.value();
  SnapshotResult result{info.id,    info.epoch, info.seq,        info.objects,
                        info.bytes, seconds,    capture_seconds, info.paced_seconds};
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.snapshots_taken;
    stats_.last_snapshot_id = info.id;
    stats_.last_snapshot_seq = info.seq;
    stats_.last_snapshot_bytes = info.bytes;
    stats_.last_snapshot_seconds = seconds;
    stats_.last_snapshot_created_ms = deps_.clock->NowMs();
    stats_.last_snapshot_error.clear();
  }
  // The WAL is kept from the previous snapshot on: if this one is found damaged at the next
  // start, the previous one plus the WAL still recover everything.
  uint64_t previous = 0;
  if (auto list = snapshots_.List(); list.ok()) {
    for (const snapshot::SnapshotInfo& other : list.value()) {
      if (other.seq < info.seq) {
        previous = other.seq;
        break;
      }
    }
  }
  if (!rebase) TruncateWindow(info.seq);
  int removed = 0;
  if (previous > 0) {
    StatusOr<int> covered = wal_->RemoveCoveredBy(previous);
    if (covered.ok()) {
      removed = covered.value();
    } else {
      spdlog::warn("durability: removing WAL segments covered by seq {}: {}", previous,
                   covered.status().message());
    }
  }
  spdlog::info(
      "durability: snapshot {} written: seq {} epoch {}, {} objects, {} bytes in {:.3f} s "
      "(capture {:.1f} ms, paced {:.3f} s); {} WAL segment(s) removed",
      info.id, info.seq, info.epoch, info.objects, info.bytes, seconds, capture_seconds * 1e3,
      info.paced_seconds, removed);
  return result;
}

void Durability::TruncateWindow(uint64_t snapshot_seq) {
  oplog::LogBuffer* log = deps_.log;
  const uint64_t needed = deps_.min_needed_seq ? deps_.min_needed_seq() : UINT64_MAX;
  const uint64_t point = SnapshotTruncationPoint(snapshot_seq, needed, log->last_seq());
  if (point == 0) return;
  const uint64_t first_before = log->first_seq();
  log->TruncateBefore(point);
  // Seq ids are contiguous: what left the front (appends racing at the back do not count).
  const uint64_t first_after = log->first_seq();
  const uint64_t dropped =
      first_before != 0 && first_after > first_before ? first_after - first_before : 0;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.oplog_truncated_before = point;
    stats_.oplog_truncated_entries += dropped;
  }
  if (dropped == 0) {
    spdlog::debug(
        "durability: oplog window [{}, {}] not truncated (snapshot seq {}, standbys need from {})",
        first_before, log->last_seq(), snapshot_seq,
        needed == UINT64_MAX ? std::string("none") : std::to_string(needed));
    return;
  }
  spdlog::info(
      "durability: oplog window truncated after snapshot at seq {}: {} entries dropped, window "
      "now starts at seq {} (was {}); connected standbys need from {}",
      snapshot_seq, dropped, log->first_seq(), first_before,
      needed == UINT64_MAX ? std::string("none connected") : "seq " + std::to_string(needed));
}

StatusOr<SnapshotResult> Durability::SnapshotNow() { return TakeSnapshot(/*rebase=*/false); }

void Durability::RequestSnapshot(std::function<void(StatusOr<SnapshotResult>)> done) {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    if (started_ && !stop_) {
      requests_.push_back(std::move(done));
      loop_cv_.notify_one();
      return;
    }
  }
  done(Unavailable("snapshots are not running on this node (starting or stopping)"));
}

void Durability::SnapshotLoop() {
  // Normal priority: the capture takes every shard lock for a moment and then each in turn, the
  // truncation the log's. At SCHED_IDLE a busy machine could leave this thread off the CPU while
  // it holds one, and a client waiting on it would wait as long. Only the serialization runs
  // low (writer_).
  const auto interval = std::chrono::seconds(std::max<int64_t>(config_.snapshot_interval_s, 0));
  auto next = Steady::now() + interval;
  std::unique_lock<std::mutex> lock(loop_mu_);
  while (!stop_) {
    auto wake = [&] { return stop_ || !requests_.empty(); };
    if (interval.count() > 0) {
      loop_cv_.wait_until(lock, next, wake);
    } else {
      loop_cv_.wait(lock, wake);
    }
    if (stop_) break;
    const bool periodic = requests_.empty();
    if (periodic && Steady::now() < next) continue;
    std::deque<std::function<void(StatusOr<SnapshotResult>)>> requests = std::move(requests_);
    requests_.clear();
    lock.unlock();
    StatusOr<SnapshotResult> result = Unavailable("not taken");
    uint64_t last_seq = 0;
    {
      std::lock_guard<std::mutex> stats_lock(stats_mu_);
      last_seq = stats_.last_snapshot_seq;
    }
    if (periodic && deps_.store->applied_seq() == last_seq) {
      spdlog::debug("durability: no change since snapshot at seq {}; periodic snapshot skipped",
                    last_seq);
    } else {
      result = TakeSnapshot(/*rebase=*/false);
    }
    for (auto& done : requests) done(result);
    lock.lock();
    next = Steady::now() + interval;
  }
  std::deque<std::function<void(StatusOr<SnapshotResult>)>> requests = std::move(requests_);
  requests_.clear();
  lock.unlock();
  for (auto& done : requests) done(Unavailable("node is shutting down"));
}

// ---- The write gate ----

Status Durability::Gate::Admit(Access access) {
  WriteGate* inner = owner_->deps_.inner_gate;
  return inner != nullptr ? inner->Admit(access) : Status::Ok();
}

void Durability::Gate::AwaitCommit(uint64_t seq, std::function<void(Status)> done) {
  WriteGate* inner =
      owner_->deps_.inner_gate != nullptr ? owner_->deps_.inner_gate : &owner_->immediate_;
  if (owner_->fsync_ != oplog::WalFsync::kAlways) {
    inner->AwaitCommit(seq, std::move(done));
    return;
  }
  Durability* owner = owner_;
  inner->AwaitCommit(seq, [owner, seq, done = std::move(done)](Status committed) mutable {
    if (!committed.ok()) {
      done(committed);
      return;
    }
    owner->AwaitDurable(seq, std::move(done));
  });
}

void Durability::AwaitDurable(uint64_t seq, std::function<void(Status)> done) {
  oplog::WalWriter* wal = nullptr;
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    wal = wal_.get();
  }
  if (wal == nullptr || wal->durable_seq() >= seq) {
    done(Status::Ok());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (!waiters_stop_ && waiter_thread_.joinable()) {
      waiters_.emplace(seq, std::move(done));
      waiters_cv_.notify_one();
      return;
    }
  }
  done(Unavailable("node is shutting down"));
}

void Durability::WaiterLoop() {
  oplog::WalWriter* wal = nullptr;
  {
    std::lock_guard<std::mutex> lock(wal_mu_);
    wal = wal_.get();
  }
  std::unique_lock<std::mutex> lock(waiters_mu_);
  while (true) {
    waiters_cv_.wait(lock, [&] { return waiters_stop_ || !waiters_.empty(); });
    if (waiters_stop_) break;
    const uint64_t target = waiters_.begin()->first;
    lock.unlock();
    (void)wal->WaitDurable(target, std::chrono::milliseconds(100));
    const Status failed = wal->status();
    const uint64_t durable = wal->durable_seq();
    std::vector<std::function<void(Status)>> ready;
    lock.lock();
    auto end = failed.ok() ? waiters_.upper_bound(durable) : waiters_.end();
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
    lock.unlock();
    const Status result = failed.ok() ? Status::Ok()
                                      : Status(ErrorCode::kInternal,
                                               "the write-ahead log failed: " + failed.message());
    for (auto& done : ready) done(result);
    lock.lock();
  }
  std::multimap<uint64_t, std::function<void(Status)>> rest = std::move(waiters_);
  waiters_.clear();
  lock.unlock();
  for (auto& [seq, done] : rest) done(Unavailable("node is shutting down"));
}

// ---- Status and metrics ----

DurabilityStatus Durability::GetStatus() const {
  DurabilityStatus out;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    out = stats_;
  }
  out.recovering = recovering();
  out.wal_fsync = std::string(oplog::WalFsyncName(fsync_));
  out.wal_dir = wal_dir_;
  out.snapshot_dir = snapshot_dir_;
  out.oplog_first_seq = deps_.log->first_seq();
  out.oplog_last_seq = deps_.log->last_seq();
  std::lock_guard<std::mutex> lock(wal_mu_);
  out.enabled = wal_ != nullptr;
  out.wal_error = wal_error_;
  if (wal_ != nullptr) {
    const oplog::WalStats wal = wal_->stats();
    out.wal_appended_seq = wal.appended_seq;
    out.wal_durable_seq = wal.durable_seq;
    out.wal_bytes = wal.bytes_on_disk;
    out.wal_segments = wal.segments;
    out.wal_fsyncs = wal.fsyncs;
    if (Status s = wal_->status(); !s.ok()) out.wal_error = s.message();
  }
  return out;
}

void Durability::RegisterMetrics(metrics::Registry* registry) {
  auto snapshot = std::make_shared<DurabilityStatus>();
  auto now_ms = std::make_shared<uint64_t>(0);
  Clock* clock = deps_.clock;
  registry->AddCollector([this, snapshot, now_ms, clock] {
    *snapshot = GetStatus();
    *now_ms = clock->NowMs();
  });
  using metrics::MetricType;
  auto add = [&](const char* name, const char* help, MetricType type, auto field) {
    registry->AddCallback(name, help, type,
                          [snapshot, field] { return static_cast<double>(field(*snapshot)); });
  };
  registry->AddCallback(
      "tandem_snapshot_age_seconds", "Seconds since the newest snapshot was written (-1: none)",
      MetricType::kGauge, [snapshot, now_ms] {
        if (snapshot->last_snapshot_created_ms == 0) return -1.0;
        return *now_ms > snapshot->last_snapshot_created_ms
                   ? static_cast<double>(*now_ms - snapshot->last_snapshot_created_ms) / 1000.0
                   : 0.0;
      });
  add("tandem_snapshot_last_bytes", "Size of the newest snapshot", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.last_snapshot_bytes; });
  add("tandem_snapshot_last_duration_seconds", "Capture + write time of the last snapshot",
      MetricType::kGauge, [](const DurabilityStatus& s) { return s.last_snapshot_seconds; });
  add("tandem_snapshot_last_seq", "Sequence id the newest snapshot is the state at",
      MetricType::kGauge, [](const DurabilityStatus& s) { return s.last_snapshot_seq; });
  add("tandem_snapshots_taken_total", "Snapshots written by this process", MetricType::kCounter,
      [](const DurabilityStatus& s) { return s.snapshots_taken; });
  add("tandem_snapshots_failed_total", "Snapshots that failed", MetricType::kCounter,
      [](const DurabilityStatus& s) { return s.snapshots_failed; });
  add("tandem_wal_bytes", "Bytes in the write-ahead log's segment files", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.wal_bytes; });
  add("tandem_wal_segments", "Write-ahead log segment files", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.wal_segments; });
  add("tandem_wal_appended_seq", "Highest seq queued to the write-ahead log", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.wal_appended_seq; });
  add("tandem_wal_durable_seq", "Highest seq the --wal-fsync policy made durable",
      MetricType::kGauge, [](const DurabilityStatus& s) { return s.wal_durable_seq; });
  add("tandem_wal_fsyncs_total", "fsync calls on the write-ahead log", MetricType::kCounter,
      [](const DurabilityStatus& s) { return s.wal_fsyncs; });
  add("tandem_recovery_seconds", "Duration of the last cold start (snapshot load + WAL replay)",
      MetricType::kGauge, [](const DurabilityStatus& s) { return s.recovery_seconds; });
  add("tandem_recovered_seq", "Sequence id the last cold start recovered", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.recovered_seq; });
  add("tandem_recovered_wal_records", "WAL records replayed by the last cold start",
      MetricType::kGauge, [](const DurabilityStatus& s) { return s.recovered_wal_records; });
  add("tandem_recovery_skipped_snapshots",
      "Damaged or foreign snapshots the last cold start skipped", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.skipped_snapshots; });
  add("tandem_recovering", "1 while the node recovers its state at start-up", MetricType::kGauge,
      [](const DurabilityStatus& s) { return s.recovering ? 1 : 0; });
}

}  // namespace tandem::server
