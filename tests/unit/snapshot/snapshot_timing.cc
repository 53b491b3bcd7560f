// Measures snapshot write and load for N objects (default 1 000 000), and a cold start from that
// snapshot plus a WAL tail (default 100 000 entries); prints wall and CPU seconds and sizes.
//   snapshot_timing [objects] [dir] [wal_tail_entries]
// Not a test (timings are not asserted anywhere); bench/run.sh may call it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "oplog/entry_codec.h"
#include "oplog/wal_writer.h"
#include "snapshot/local_dir_store.h"
#include "snapshot/recovery.h"

namespace {

using Clock = std::chrono::steady_clock;

// Sequences entries; records (sealed) the ones produced while `recording` is set.
class CountingSink : public tandem::meta::EntrySink {
 public:
  tandem::Status Append(tandem::v1::OpLogEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    entry.set_sequence_id(next_seq_++);
    entry.set_epoch(1);
    if (recording) {
      tandem::oplog::Seal(entry);
      recorded.push_back(entry);
    }
    return tandem::Status::Ok();
  }
  bool recording = false;
  std::vector<tandem::v1::OpLogEntry> recorded;

 private:
  std::mutex mu_;
  uint64_t next_seq_ = 1;
};

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds of this process: on a shared box, wall time alone says little.
double CpuNow() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Wall and CPU time of one step.
struct Step {
  Clock::time_point wall = Clock::now();
  double cpu = CpuNow();
  void Print(const char* name, const char* what) const {
    std::printf("%-16s %.3f s wall, %.3f s cpu (%s)\n", name, Since(wall), CpuNow() - cpu, what);
  }
};

// LoadImage alone, from chunks already in memory: the store's share of a load.
void TimeLoadImageAlone(const tandem::meta::StateImage& image, tandem::meta::EntrySink* sink) {
  std::vector<tandem::v1::ObjectChunk> chunks;
  image.ForEachChunk(4096, [&](const tandem::v1::ObjectChunk& c) {
    chunks.push_back(c);
    return true;
  });
  tandem::meta::MetaStore store(tandem::meta::Options(), sink);
  size_t next = 0;
  Step step;
  tandem::Status s = store.LoadImage(
      image.header(),
      [&](tandem::v1::ObjectChunk* out) {
        if (next == chunks.size()) return false;
        out->Swap(&chunks[next++]);
        return true;
      },
      0);
  step.Print("loadimage_only", s.ok() ? "MetaStore::LoadImage from parsed chunks" : "FAILED");
}

bool PutObject(tandem::meta::MetaStore& store, uint64_t i) {
  std::string key =
      "tenant-7/model-llama/layer-" + std::to_string(i % 80) + "/block-" + std::to_string(i);
  const std::string client = "client-" + std::to_string(i % 8);
  tandem::meta::PutStartArgs args;
  args.key = key;
  args.value_size = 4096 + i % 65536;
  args.replica_num = 1 + i % 2;
  args.client_id = client;
  if (auto put = store.PutStart(args, 10); !put.ok()) {
    std::fprintf(stderr, "put %s: %s\n", key.c_str(), put.status().ToString().c_str());
    return false;
  }
  return i % 4 == 0 || store.PutEnd(key, client, 10).ok();
}

// N objects of 1-2 replicas over 8 segments; one in four left PROCESSING.
bool Fill(tandem::meta::MetaStore& store, uint64_t objects) {
  for (int i = 0; i < 8; ++i) {
    tandem::meta::SegmentSpec spec;
    spec.name = "segment-" + std::to_string(i);
    spec.base = (static_cast<uint64_t>(i) + 1) << 40;
    spec.size = 1ull << 40;
    spec.endpoint = "10.0.0." + std::to_string(i) + ":7000";
    tandem::Status s = store.MountSegment(spec, "client-" + std::to_string(i), 1);
    if (!s.ok()) {
      std::fprintf(stderr, "mount: %s\n", s.ToString().c_str());
      return false;
    }
  }
  for (uint64_t i = 0; i < objects; ++i) {
    if (!PutObject(store, i)) return false;
  }
  return true;
}

// Cold start: the snapshot in `store` plus a WAL tail of about `tail` entries.
bool TimeRecovery(tandem::meta::MetaStore& source, CountingSink& sink,
                  tandem::snapshot::SnapshotStore& store, const std::string& wal_dir,
                  uint64_t first_object, uint64_t tail) {
  sink.recording = true;
  for (uint64_t i = first_object; sink.recorded.size() < tail; ++i) {
    if (!PutObject(source, i)) return false;
  }
  sink.recording = false;
  {
    tandem::oplog::WalOptions options{wal_dir, "timing", tandem::oplog::WalFsync::kNever};
    auto wal = tandem::oplog::WalWriter::Open(options, sink.recorded.front().sequence_id());
    if (!wal.ok() || !wal.value()->AppendBatch(sink.recorded).ok()) return false;
  }
  tandem::meta::MetaStore recovered(tandem::meta::Options(), &sink);
  Step step;
  auto report = tandem::snapshot::RecoverState(&recovered, store, wal_dir, "timing", 0);
  step.Print("recovery", "newest snapshot + WAL tail");
  if (!report.ok() || recovered.StateDigest() != source.StateDigest()) return false;
  std::printf("recovery_detail  %s\n", report->Summary().c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t objects = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const std::string dir = argc > 2 ? argv[2] : "/tmp/tandem-snapshot-timing";
  spdlog::set_level(spdlog::level::warn);
  CountingSink sink;
  tandem::meta::MetaStore source(tandem::meta::Options(), &sink);
  auto start = Clock::now();
  if (!Fill(source, objects)) {
    std::fprintf(stderr, "fill failed\n");
    return 1;
  }
  std::printf("objects          %llu (filled in %.2f s)\n",
              static_cast<unsigned long long>(objects), Since(start));

  Step capture;
  auto image = source.CaptureImage();
  capture.Print("capture",
                "CaptureImage: copy under the store's locks; the key sort is the writer's");
  tandem::snapshot::LocalDirStore store(dir, 1);
  Step write;
  auto info = store.Write(*image, {"timing", 1, 0});
  write.Print("write", "serialize + checksum + write + fsync + rename");
  if (!info.ok()) {
    std::fprintf(stderr, "write failed: %s\n", info.status().ToString().c_str());
    return 1;
  }
  {
    Step verify;
    auto reader = store.Open(info->id, "timing");
    tandem::Status s = reader.ok() ? reader.value()->Verify() : reader.status();
    verify.Print("verify", s.ok() ? "read + check every checksum, no parsing" : "FAILED");
  }
  TimeLoadImageAlone(*image, &sink);
  image.reset();

  tandem::meta::MetaStore loaded(tandem::meta::Options(), &sink);
  Step load;
  auto reader = store.Open(info->id, "timing");
  tandem::Status s = reader.ok() ? reader.value()->LoadInto(&loaded, 0) : reader.status();
  load.Print("load", "read + verify + parse + LoadImage");
  if (!s.ok() || loaded.StateDigest() != source.StateDigest()) {
    std::fprintf(stderr, "load failed: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("file_bytes       %llu (%.1f MiB, %.1f bytes/object)\n",
              static_cast<unsigned long long>(info->bytes), info->bytes / 1048576.0,
              objects ? static_cast<double>(info->bytes) / objects : 0.0);
  const uint64_t tail = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100'000;
  bool recovered = tail == 0 || TimeRecovery(source, sink, store, dir + "/wal", objects, tail);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!recovered) std::fprintf(stderr, "recovery failed\n");
  return recovered ? 0 : 1;
}
