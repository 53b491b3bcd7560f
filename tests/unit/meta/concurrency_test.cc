// Concurrent clients against one store while segments come and go: the invariants hold and the
// entries, in sequence order, replay to the same state. Its own executable, so it can be run
// alone under TSan (with TSAN_OPTIONS=detect_deadlocks=0: the store may hold all 1024 shard
// locks, more than TSan's deadlock detector can track).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

constexpr int kWorkers = 3;
constexpr int kOpsPerWorker = 4000;

// The threads' shared load: a logical clock, and a count of INTERNAL errors (which would be bugs).
class Load {
 public:
  explicit Load(MetaStore& store) : store_(store) {}

  // Random object operations on 300 keys.
  void Worker(int seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < kOpsPerWorker; ++i) {
      const uint64_t now = clock_.fetch_add(1);
      const std::string key = "k" + std::to_string(rng() % 300);
      switch (rng() % 6) {
        case 0:
          Note(store_.PutStart(Put(key, 1 + rng() % 4000, 1 + rng() % 2), now).status());
          break;
        case 1:
          Note(store_.PutEnd(key, "c1", now));
          break;
        case 2:
          Note(store_.GetReplicaList(key, now).status());
          break;
        case 3:
          Note(store_.Remove(key, now));
          break;
        case 4:
          store_.ExistKey(key);
          break;
        default:
          Note(store_.PutRevoke(key, "c1", now));
          break;
      }
    }
  }

  // Mounts and unmounts segments (and runs eviction and reaping) until the workers are done,
  // and at least 200 rounds.
  void Admin(const std::atomic<bool>& workers_done) {
    std::mt19937 rng(99);
    for (int round = 0; round < 200 || !workers_done.load(); ++round) {
      const uint64_t now = clock_.fetch_add(1);
      const std::string name = "dyn-" + std::to_string(rng() % 3);
      switch (rng() % 6) {
        case 0:
        case 1:
          Note(store_.MountSegment(Seg(name, 32 << 10), "node", now));
          break;
        case 2:
        case 3:
          Note(store_.UnmountSegment(name, "node", now));
          break;
        case 4:
          store_.EvictIfNeeded(now);
          break;
        default:
          store_.ReapStalePuts(now);
          break;
      }
      std::this_thread::yield();
    }
  }

  uint64_t internal_errors() const { return internal_errors_.load(); }

 private:
  void Note(const Status& s) {
    if (s.code() == ErrorCode::kInternal) internal_errors_.fetch_add(1);
  }

  MetaStore& store_;
  std::atomic<uint64_t> clock_{1};
  std::atomic<uint64_t> internal_errors_{0};
};

TEST(ConcurrencyTest, ConcurrentOpsKeepInvariantsAndReplayInSequenceOrder) {
  Options options;
  options.lease_ttl_ms = 20;
  options.put_timeout_ms = 200;
  options.eviction_high_watermark = 0.6;
  RecordingSink sink;
  MetaStore store(options, &sink);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store.MountSegment(Seg("static-" + std::to_string(i), 64 << 10), "", 0).ok());
  }
  Load load(store);
  std::atomic<bool> workers_done{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) workers.emplace_back([&, w] { load.Worker(w + 1); });
  std::thread admin([&] { load.Admin(workers_done); });
  for (std::thread& t : workers) t.join();
  workers_done.store(true);
  admin.join();

  EXPECT_EQ(load.internal_errors(), 0u);
  EXPECT_TRUE(CheckInvariants(store));
  std::vector<OpLogEntry> entries = sink.entries();
  std::sort(entries.begin(), entries.end(), [](const OpLogEntry& a, const OpLogEntry& b) {
    return a.sequence_id() < b.sequence_id();
  });
  for (size_t i = 0; i < entries.size(); ++i) ASSERT_EQ(entries[i].sequence_id(), i + 1);
  EXPECT_GT(entries.size(), static_cast<size_t>(kWorkers * kOpsPerWorker / 10));
  EXPECT_EQ(store.applied_seq(), entries.size());
  const auto unmounts = std::count_if(entries.begin(), entries.end(), [](const OpLogEntry& e) {
    return e.op_type() == OpType::UNMOUNT_SEGMENT;
  });
  EXPECT_GT(unmounts, 10);

  RefusingSink refusing;
  std::unique_ptr<MetaStore> standby = Replay(entries, options, &refusing);
  EXPECT_EQ(standby->StateDigest(), store.StateDigest());
  EXPECT_EQ(DumpState(*standby), DumpState(store));
}

}  // namespace
}  // namespace tandem::meta::testing
