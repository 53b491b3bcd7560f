// Measures MetaStore::CaptureImage and MetaStore::LoadImage for N objects (default 1 000 000):
// wall and CPU seconds, and how long clients stall while an image is captured (the longest single
// ExistKey / PutStart issued by probe threads during CaptureImage, next to the same probes
// without a capture: on a loaded machine, the scheduler alone stalls calls for milliseconds).
//   meta_image_timing [objects] [capture_rounds]
// Not a test (timings are not asserted anywhere). The store is filled as snapshot_timing fills it.
#include <time.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "meta/meta_store.h"

namespace {

using Clock = std::chrono::steady_clock;
using tandem::meta::MetaStore;

class CountingSink : public tandem::meta::EntrySink {
 public:
  tandem::Status Append(tandem::v1::OpLogEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    entry.set_sequence_id(next_seq_++);
    entry.set_epoch(1);
    return tandem::Status::Ok();
  }

 private:
  std::mutex mu_;
  uint64_t next_seq_ = 1;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ProcessCpu() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

std::string Key(uint64_t i) {
  return "tenant-7/model-llama/layer-" + std::to_string(i % 80) + "/block-" + std::to_string(i);
}

bool PutObject(MetaStore& store, uint64_t i) {
  std::string key = Key(i);
  const std::string client = "client-" + std::to_string(i % 8);
  tandem::meta::PutStartArgs args;
  args.key = key;
  args.value_size = 4096 + i % 65536;
  args.replica_num = 1 + i % 2;
  args.client_id = client;
  if (!store.PutStart(args, 10).ok()) return false;
  return i % 4 == 0 || store.PutEnd(key, client, 10).ok();
}

bool Fill(MetaStore& store, uint64_t objects) {
  for (int i = 0; i < 8; ++i) {
    tandem::meta::SegmentSpec spec;
    spec.name = "segment-" + std::to_string(i);
    spec.base = (static_cast<uint64_t>(i) + 1) << 40;
    spec.size = 1ull << 40;
    spec.endpoint = "10.0.0." + std::to_string(i) + ":7000";
    if (!store.MountSegment(spec, "client-" + std::to_string(i), 1).ok()) return false;
  }
  for (uint64_t i = 0; i < objects; ++i) {
    if (!PutObject(store, i)) return false;
  }
  return true;
}

// Longest single call of a probe thread while it runs.
class Probe {
 public:
  template <typename Call>
  explicit Probe(Call call)
      : thread_([this, call]() mutable {
          uint64_t n = 0;
          while (!stop_.load(std::memory_order_relaxed)) {
            auto start = Clock::now();
            call(n++);
            auto took = Clock::now() - start;
            if (took > max_) max_ = took;
            if (took > std::chrono::milliseconds(1)) ++over_1ms_;
            ++calls_;
          }
        }) {}
  void Stop() {
    stop_ = true;
    thread_.join();
  }
  double max_ms() const { return Seconds(max_) * 1e3; }
  uint64_t calls() const { return calls_; }
  uint64_t over_1ms() const { return over_1ms_; }

 private:
  std::atomic<bool> stop_{false};
  Clock::duration max_{};
  uint64_t calls_ = 0;
  uint64_t over_1ms_ = 0;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  const uint64_t objects = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  CountingSink sink;
  MetaStore source(tandem::meta::Options(), &sink);
  auto start = Clock::now();
  if (!Fill(source, objects)) {
    std::fprintf(stderr, "fill failed\n");
    return 1;
  }
  std::printf("objects          %llu (filled in %.2f s)\n",
              static_cast<unsigned long long>(objects), Seconds(Clock::now() - start));

  // CaptureImage alone: the calling thread's CPU, no other thread running.
  std::unique_ptr<tandem::meta::StateImage> image;
  for (int r = 0; r < rounds; ++r) {
    image.reset();
    auto wall = Clock::now();
    double cpu = ThreadCpu();
    image = source.CaptureImage();
    std::printf("capture          %.3f s wall, %.3f s cpu (CaptureImage, no other thread)\n",
                Seconds(Clock::now() - wall), ThreadCpu() - cpu);
  }

  // CaptureImage with a reader and a writer probing: the longest call either saw is a stall.
  for (int r = 0; r < 2 * rounds; ++r) {
    std::mt19937_64 rng(r);
    std::vector<uint64_t> picks(1 << 16);
    for (uint64_t& p : picks) p = rng() % std::max<uint64_t>(objects, 1);
    Probe reader([&](uint64_t n) { (void)source.ExistKey(Key(picks[n % picks.size()])); });
    Probe writer([&](uint64_t n) {
      std::string key = "probe-" + std::to_string(r) + "-" + std::to_string(n);
      tandem::meta::PutStartArgs args;
      args.key = key;
      args.value_size = 64;
      args.client_id = "client-0";
      (void)source.PutStart(args, 10);
    });
    // Odd rounds capture nothing: the longest calls then are the machine's scheduling noise.
    const bool capture = r % 2 == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto wall = Clock::now();
    if (capture) {
      auto captured = source.CaptureImage();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
    }
    double took = Seconds(Clock::now() - wall);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reader.Stop();
    writer.Stop();
    std::printf(
        "%s %.3f s wall; longest ExistKey %.3f ms (%llu calls, %llu > 1 ms), "
        "longest PutStart %.3f ms (%llu calls, %llu > 1 ms)\n",
        capture ? "capture+probes  " : "probes alone    ", took, reader.max_ms(),
        static_cast<unsigned long long>(reader.calls()),
        static_cast<unsigned long long>(reader.over_1ms()), writer.max_ms(),
        static_cast<unsigned long long>(writer.calls()),
        static_cast<unsigned long long>(writer.over_1ms()));
  }

  // LoadImage from chunks already in memory.
  std::vector<tandem::v1::ObjectChunk> chunks;
  XXH64_state_t* bytes = XXH64_createState();
  XXH64_reset(bytes, 0);
  std::string serialized = image->header().SerializeAsString();
  XXH64_update(bytes, serialized.data(), serialized.size());
  image->ForEachChunk(4096, [&](const tandem::v1::ObjectChunk& c) {
    chunks.push_back(c);
    c.SerializeToString(&serialized);
    XXH64_update(bytes, serialized.data(), serialized.size());
    return true;
  });
  // Equal across versions of the store when the image format and order are unchanged.
  std::printf("image_xxh64      %016llx (header + chunks of 4096, serialized)\n",
              static_cast<unsigned long long>(XXH64_digest(bytes)));
  XXH64_freeState(bytes);
  MetaStore loaded(tandem::meta::Options(), &sink);
  size_t next = 0;
  auto wall = Clock::now();
  double cpu = ProcessCpu();
  tandem::Status s = loaded.LoadImage(
      image->header(),
      [&](tandem::v1::ObjectChunk* out) {
        if (next == chunks.size()) return false;
        out->Swap(&chunks[next++]);
        return true;
      },
      0);
  std::printf("loadimage        %.3f s wall, %.3f s cpu (%s)\n", Seconds(Clock::now() - wall),
              ProcessCpu() - cpu, s.ok() ? "LoadImage from parsed chunks" : "FAILED");
  if (!s.ok() || loaded.StateDigest() != image->header().state_digest()) {
    std::fprintf(stderr, "load failed: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
