#include "server/maintenance.h"

#include <gtest/gtest.h>

#include <chrono>

#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "test_util.h"

namespace tandem::server {
namespace {

using std::chrono::milliseconds;

class MaintenanceTest : public ::testing::Test {
 protected:
  static meta::Options SmallOptions() {
    meta::Options options;
    options.put_timeout_ms = 1000;
    options.client_ttl_ms = 2000;
    options.lease_ttl_ms = 500;
    return options;
  }

  void Mount(const std::string& id, uint64_t size, const std::string& client_id) {
    meta::SegmentSpec spec;
    spec.id = id;
    spec.name = id;
    spec.base = 1 << 20;
    spec.size = size;
    spec.endpoint = "127.0.0.1:1";
    ASSERT_TRUE(store_.MountSegment(spec, client_id, clock_.NowMs()).ok());
  }

  void Put(const std::string& key, uint64_t size, bool end) {
    meta::PutStartArgs args;
    args.key = key;
    args.value_size = size;
    args.client_id = "writer";
    ASSERT_TRUE(store_.PutStart(args, clock_.NowMs()).ok()) << key;
    if (end) {
      ASSERT_TRUE(store_.PutEnd(key, "writer", clock_.NowMs()).ok()) << key;
    }
  }

  testing::ManualClock clock_;
  oplog::LogBuffer buffer_{oplog::LogBufferOptions{}};
  oplog::Sequencer sequencer_{&buffer_, 1, 1};
  meta::MetaStore store_{SmallOptions(), &sequencer_};
  Maintenance maintenance_{&store_, &clock_, milliseconds(3'600'000)};
};

TEST_F(MaintenanceTest, ReapsPutsOlderThanThePutTimeout) {
  Mount("seg", 1000, "");
  Put("stale", 10, /*end=*/false);
  maintenance_.RunOnce();
  EXPECT_TRUE(store_.ExistKey("stale"));  // not old enough yet
  clock_.Advance(1001);
  maintenance_.RunOnce();
  EXPECT_FALSE(store_.ExistKey("stale"));
  EXPECT_EQ(store_.GetStats().reaped_puts, 1u);
}

TEST_F(MaintenanceTest, ExpiresSilentClientsAndTheirSegments) {
  Mount("owned", 1000, "client-1");
  Mount("static", 1000, "");
  clock_.Advance(2001);
  maintenance_.RunOnce();
  const std::vector<meta::SegmentInfo> segments = store_.ListSegments();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].spec.name, "static");
  EXPECT_EQ(store_.GetStats().expired_clients, 1u);
}

TEST_F(MaintenanceTest, EvictsAboveTheHighWatermark) {
  Mount("seg", 1000, "");
  for (int i = 0; i < 97; ++i) Put("k" + std::to_string(i), 10, /*end=*/true);
  maintenance_.RunOnce();
  EXPECT_LT(store_.GetStats().bytes_used, 970u);
  EXPECT_GT(store_.GetStats().evicted_objects, 0u);
}

TEST_F(MaintenanceTest, StopReturnsPromptlyDespiteALongInterval) {
  maintenance_.Start();
  const auto start = std::chrono::steady_clock::now();
  maintenance_.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  maintenance_.Stop();  // idempotent
}

TEST_F(MaintenanceTest, ThreadRunsRoundsOnItsInterval) {
  Maintenance fast(&store_, &clock_, milliseconds(5));
  Mount("seg", 1000, "");
  Put("stale", 10, /*end=*/false);
  clock_.Advance(1001);
  fast.Start();
  for (int i = 0; i < 400 && store_.ExistKey("stale"); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  fast.Stop();
  EXPECT_FALSE(store_.ExistKey("stale"));
}

}  // namespace
}  // namespace tandem::server
