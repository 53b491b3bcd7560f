// Concurrent clients against one store while segments come and go: the invariants hold and the
// entries, in sequence order, replay to the same state. Its own executable, so it can be run
// alone under TSan.
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
  std::atomic<uint64_t> clock{1};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> internal_errors{0};
  auto note = [&](const Status& s) {
    if (s.code() == ErrorCode::kInternal) internal_errors.fetch_add(1);
  };

  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w + 1);
      for (int i = 0; i < kOpsPerWorker; ++i) {
        const uint64_t now = clock.fetch_add(1);
        const std::string key = "k" + std::to_string(rng() % 300);
        switch (rng() % 6) {
          case 0:
            note(store.PutStart(Put(key, 1 + rng() % 4000, 1 + rng() % 2), now).status());
            break;
          case 1:
            note(store.PutEnd(key, "c1", now));
            break;
          case 2:
            note(store.GetReplicaList(key, now).status());
            break;
          case 3:
            note(store.Remove(key, now));
            break;
          case 4:
            store.ExistKey(key);
            break;
          default:
            note(store.PutRevoke(key, "c1", now));
            break;
        }
      }
    });
  }
  std::thread admin([&] {
    std::mt19937 rng(99);
    // At least 200 rounds, so segments do come and go while the workers run.
    for (int round = 0; round < 200 || !done.load(); ++round) {
      const uint64_t now = clock.fetch_add(1);
      const std::string name = "dyn-" + std::to_string(rng() % 3);
      switch (rng() % 6) {
        case 0:
        case 1:
          note(store.MountSegment(Seg(name, 32 << 10), "node", now));
          break;
        case 2:
        case 3:
          note(store.UnmountSegment(name, "node", now));
          break;
        case 4:
          store.EvictIfNeeded(now);
          break;
        default:
          store.ReapStalePuts(now);
          break;
      }
      std::this_thread::yield();
    }
  });
  for (std::thread& t : workers) t.join();
  done.store(true);
  admin.join();

  EXPECT_EQ(internal_errors.load(), 0u);
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
