// tandem-meta-bench: MetaStore throughput (PutStart+PutEnd, GetReplicaList, ExistKey; 1 and 2
// threads) and memory per object. The sink sequences under a mutex like the real Sequencer but
// keeps nothing, so neither the log nor I/O is measured -- only the state machine.
//
//   tandem-meta-bench [--memory-objects=N] [--memory-key-bytes=B] [google benchmark flags]
// prints the RSS growth per object for N (default 1 M) objects with B-byte keys (default 12)
// first, then runs the benchmarks.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "meta/meta_store.h"

namespace tandem::meta {
namespace {

class CountingSink : public EntrySink {
 public:
  Status Append(tandem::v1::OpLogEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    entry.set_sequence_id(next_seq_++);
    entry.set_epoch(1);
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  uint64_t next_seq_ = 1;
};

struct Fixture {
  CountingSink sink;
  MetaStore store{Options(), &sink};
  Fixture() {
    for (int i = 0; i < 4; ++i) {
      SegmentSpec spec;
      spec.name = "segment-" + std::to_string(i);
      spec.size = 1ull << 44;  // room for anything a benchmark puts
      spec.base = (1ull << 45) * (i + 1);
      spec.endpoint = "10.0.0." + std::to_string(i + 1) + ":7000";
      store.MountSegment(spec, "bench", 0);
    }
  }
};

// "key-00000001": 12 bytes by default, as in the memory target's definition.
std::string Key(uint64_t i, int bytes = 12) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "key-%0*llu", std::clamp(bytes, 12, 60) - 4,
                static_cast<unsigned long long>(i));
  return buf;
}

void PutComplete(MetaStore& store, const std::string& key) {
  PutStartArgs args;
  args.key = key;
  args.value_size = 4096;
  args.client_id = "bench";
  if (!store.PutStart(args, 1).ok() || !store.PutEnd(key, "bench", 1).ok()) std::abort();
}

// A store shared by the threads of one benchmark run: thread 0 sets it up before the timed loop
// (the framework holds the others at a barrier until then) and drops it after.
std::unique_ptr<Fixture> g_fixture;

void SetUpShared(benchmark::State& state, uint64_t objects) {
  if (state.thread_index() != 0) return;
  g_fixture = std::make_unique<Fixture>();
  for (uint64_t i = 0; i < objects; ++i) PutComplete(g_fixture->store, Key(i));
}

void TearDownShared(benchmark::State& state) {
  if (state.thread_index() == 0) g_fixture.reset();
}

void BM_PutStartPutEnd(benchmark::State& state) {
  SetUpShared(state, 0);
  uint64_t i = static_cast<uint64_t>(state.thread_index()) << 40;  // disjoint keys per thread
  for (auto _ : state) PutComplete(g_fixture->store, Key(i++));
  state.SetItemsProcessed(state.iterations());
  TearDownShared(state);
}

// Reads go to 4096 random keys among range(0) stored objects, a different draw per thread
// (threads walking the same keys in step would measure lock ping-pong, not the store). 1 K
// objects stay in cache; 200 K do not.
std::vector<std::string> ReadKeys(benchmark::State& state) {
  std::mt19937_64 rng(state.thread_index() + 1);
  std::vector<std::string> keys;
  for (int k = 0; k < 4096; ++k) keys.push_back(Key(rng() % state.range(0)));
  return keys;
}

void BM_GetReplicaList(benchmark::State& state) {
  SetUpShared(state, state.range(0));
  const std::vector<std::string> keys = ReadKeys(state);
  uint64_t n = 0;
  for (auto _ : state) {
    auto result = g_fixture->store.GetReplicaList(keys[n++ & 4095], 2);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  TearDownShared(state);
}

void BM_ExistKey(benchmark::State& state) {
  SetUpShared(state, state.range(0));
  const std::vector<std::string> keys = ReadKeys(state);
  uint64_t n = 0;
  for (auto _ : state) benchmark::DoNotOptimize(g_fixture->store.ExistKey(keys[n++ & 4095]));
  state.SetItemsProcessed(state.iterations());
  TearDownShared(state);
}

BENCHMARK(BM_PutStartPutEnd)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_GetReplicaList)->Arg(1000)->Arg(200'000)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ExistKey)->Arg(1000)->Arg(200'000)->Threads(1)->Threads(2)->UseRealTime();

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// RSS growth per object for `count` PutStart+PutEnd with `key_bytes`-byte keys and one replica.
void ReportMemoryPerObject(uint64_t count, int key_bytes) {
  auto fixture = std::make_unique<Fixture>();
  std::vector<std::string> keys;
  keys.reserve(count);
  for (uint64_t i = 0; i < count; ++i) keys.push_back(Key(i, key_bytes));
  const uint64_t before = ResidentBytes();
  for (const std::string& key : keys) PutComplete(fixture->store, key);
  const uint64_t after = ResidentBytes();
  std::printf("memory: %llu objects, RSS +%.1f MiB, %.1f bytes/object (%zu-byte keys, 1 replica)\n",
              static_cast<unsigned long long>(count), (after - before) / 1048576.0,
              static_cast<double>(after - before) / static_cast<double>(count), keys[0].size());
  std::fflush(stdout);
}

}  // namespace
}  // namespace tandem::meta

int main(int argc, char** argv) {
  uint64_t objects = 1'000'000;
  int key_bytes = 12;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--memory-objects=", 17) == 0) {
      objects = std::strtoull(argv[i] + 17, nullptr, 10);
    } else if (std::strncmp(argv[i], "--memory-key-bytes=", 19) == 0) {
      key_bytes = std::atoi(argv[i] + 19);
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  if (objects > 0) tandem::meta::ReportMemoryPerObject(objects, key_bytes);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
