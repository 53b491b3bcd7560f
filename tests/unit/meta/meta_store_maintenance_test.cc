// Leader maintenance: ReapStalePuts, RemoveAll, EvictIfNeeded, RefreshSoftState.
#include <gtest/gtest.h>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

std::vector<std::string> KeysOf(const OpLogEntry& entry) {
  auto effect = PayloadOf<tandem::v1::KeyListEffect>(entry);
  return {effect.keys().begin(), effect.keys().end()};
}

class MaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.eviction_high_watermark = 0.9;
    options_.eviction_ratio = 0.2;
    store_ = std::make_unique<MetaStore>(options_, &sink_);
    ASSERT_TRUE(store_->MountSegment(Seg("a", 1000), "n", 0).ok());
  }
  void PutComplete(const std::string& key, uint64_t size, uint64_t now, bool pin = false) {
    PutStartArgs args = Put(key, size);
    args.soft_pin = pin;
    ASSERT_TRUE(store_->PutStart(args, now).ok());
    ASSERT_TRUE(store_->PutEnd(key, "c1", now).ok());
  }

  RecordingSink sink_;
  Options options_;
  std::unique_ptr<MetaStore> store_;
};

TEST_F(MaintenanceTest, ReapStalePutsRevokesOnlyTimedOutPuts) {
  ASSERT_TRUE(store_->PutStart(Put("old-b", 10), 0).ok());
  ASSERT_TRUE(store_->PutStart(Put("old-a", 10), 0).ok());
  ASSERT_TRUE(store_->PutStart(Put("young", 10), 5000).ok());
  PutComplete("done", 10, 0);
  const uint64_t timeout = options_.put_timeout_ms;
  EXPECT_EQ(store_->ReapStalePuts(timeout), 0u);  // start + timeout == now: not yet
  const size_t before = sink_.size();
  EXPECT_EQ(store_->ReapStalePuts(timeout + 1), 2u);
  std::vector<OpLogEntry> entries = sink_.entries();
  ASSERT_EQ(entries.size(), before + 2);
  for (size_t i = before; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].op_type(), OpType::PUT_REVOKE);
    EXPECT_EQ(PayloadOf<tandem::v1::PutRevokeEffect>(entries[i]).reason(),
              tandem::v1::REVOKE_PUT_TIMEOUT);
  }
  EXPECT_FALSE(store_->ExistKey("old-a"));
  EXPECT_FALSE(store_->ExistKey("old-b"));
  EXPECT_TRUE(store_->ExistKey("young"));
  EXPECT_TRUE(store_->ExistKey("done"));
  EXPECT_EQ(store_->GetStats().reaped_puts, 2u);
  EXPECT_EQ(store_->GetStats().bytes_used, 20u);
}

TEST_F(MaintenanceTest, RemoveAllLogsExactlyTheRemovedKeysSorted) {
  PutComplete("k3", 10, 0);
  PutComplete("k1", 10, 0);
  PutComplete("leased", 10, 0);
  PutComplete("k2", 10, 0);
  ASSERT_TRUE(store_->PutStart(Put("pending", 10), 0).ok());
  ASSERT_TRUE(store_->GetReplicaList("leased", 100).ok());
  RemoveAllResult result = store_->RemoveAll(200);
  EXPECT_EQ(result.removed, 3u);
  EXPECT_EQ(result.kept, 2u);  // the leased one and the pending put
  OpLogEntry entry = sink_.last();
  EXPECT_EQ(entry.op_type(), OpType::REMOVE_ALL);
  EXPECT_EQ(KeysOf(entry), (std::vector<std::string>{"k1", "k2", "k3"}));
  EXPECT_TRUE(store_->ExistKey("leased"));
  EXPECT_TRUE(store_->ExistKey("pending"));
  EXPECT_EQ(store_->GetStats().bytes_used, 20u);

  const size_t before = sink_.size();
  result = store_->RemoveAll(300);  // nothing removable: no entry
  EXPECT_EQ(result.removed, 0u);
  EXPECT_EQ(result.kept, 2u);
  EXPECT_EQ(sink_.size(), before);
  EXPECT_TRUE(CheckInvariants(*store_));
}

TEST_F(MaintenanceTest, NoEvictionBelowTheHighWatermark) {
  for (int i = 0; i < 9; ++i) PutComplete("k" + std::to_string(i), 100, i);
  const size_t before = sink_.size();
  EXPECT_EQ(store_->EvictIfNeeded(1000), 0u);  // 90 % is not above 90 %
  EXPECT_EQ(sink_.size(), before);
}

TEST_F(MaintenanceTest, EvictsLeastRecentlyUsedUnleasedObjectsUntilTheRatioIsFreed) {
  for (int i = 0; i < 10; ++i) PutComplete("k" + std::to_string(i), 100, 10 + i);
  ASSERT_TRUE(store_->GetReplicaList("k0", 100).ok());  // most recent, and leased
  ASSERT_TRUE(store_->GetReplicaList("k2", 50).ok());   // recent again, lease ends at 5050
  const uint64_t now = 6000;                            // every lease but k0's has ended
  ASSERT_TRUE(store_->GetReplicaList("k0", now).ok());
  const size_t before = sink_.size();
  // 20 % of 1000 bytes = 2 objects: the least recently used are k1 (t=11) and k3 (t=13).
  EXPECT_EQ(store_->EvictIfNeeded(now), 2u);
  EXPECT_FALSE(store_->ExistKey("k1"));
  EXPECT_FALSE(store_->ExistKey("k3"));
  EXPECT_TRUE(store_->ExistKey("k0"));
  EXPECT_TRUE(store_->ExistKey("k2"));
  std::vector<OpLogEntry> entries = sink_.entries();
  std::vector<std::string> evicted;
  for (size_t i = before; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].op_type(), OpType::EVICTION);
    std::vector<std::string> keys = KeysOf(entries[i]);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    for (const std::string& key : keys) {
      // One entry per shard: every key in it belongs to the same shard.
      EXPECT_EQ(MetaStore::ShardOf(key), MetaStore::ShardOf(keys[0]));
      evicted.push_back(key);
    }
  }
  std::sort(evicted.begin(), evicted.end());
  EXPECT_EQ(evicted, (std::vector<std::string>{"k1", "k3"}));
  Stats stats = store_->GetStats();
  EXPECT_EQ(stats.evicted_objects, 2u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.bytes_used, 800u);
  EXPECT_EQ(store_->EvictIfNeeded(now), 0u);  // below the watermark again
}

TEST_F(MaintenanceTest, SoftPinnedObjectsGoOnlyWhenNothingElseCanAndLeasedOnesNever) {
  for (int i = 0; i < 8; ++i) PutComplete("leased" + std::to_string(i), 100, 0);
  PutComplete("pinned-old", 100, 1, /*pin=*/true);
  PutComplete("pinned-new", 100, 2, /*pin=*/true);
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(store_->GetReplicaList("leased" + std::to_string(i), 10).ok());
  EXPECT_EQ(store_->EvictIfNeeded(20), 2u);  // needs 200 bytes: both pinned objects
  EXPECT_FALSE(store_->ExistKey("pinned-old"));
  EXPECT_FALSE(store_->ExistKey("pinned-new"));
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(store_->ExistKey("leased" + std::to_string(i)));

  // Everything leased: nothing may be evicted even though space is short.
  PutComplete("x", 100, 30);
  PutComplete("y", 100, 30);
  ASSERT_TRUE(store_->GetReplicaList("x", 40).ok());
  ASSERT_TRUE(store_->GetReplicaList("y", 40).ok());
  EXPECT_EQ(store_->EvictIfNeeded(50), 0u);
  EXPECT_EQ(store_->GetStats().object_count, 10u);
}

TEST_F(MaintenanceTest, UnpinnedObjectsGoBeforeSoftPinnedOnesEvenIfNewer) {
  PutComplete("pinned", 100, 0, /*pin=*/true);
  for (int i = 0; i < 9; ++i) PutComplete("plain" + std::to_string(i), 100, 10 + i);
  EXPECT_EQ(store_->EvictIfNeeded(100), 2u);
  EXPECT_TRUE(store_->ExistKey("pinned"));
  EXPECT_FALSE(store_->ExistKey("plain0"));
  EXPECT_FALSE(store_->ExistKey("plain1"));
}

TEST_F(MaintenanceTest, AnExpiredSoftPinCountsAsUnpinned) {
  PutComplete("pinned", 100, 0, /*pin=*/true);
  for (int i = 0; i < 9; ++i) PutComplete("plain" + std::to_string(i), 100, 10 + i);
  const uint64_t now = options_.soft_pin_ttl_ms + 1;  // the pin has expired
  EXPECT_EQ(store_->EvictIfNeeded(now), 2u);
  EXPECT_FALSE(store_->ExistKey("pinned"));  // oldest access
  EXPECT_FALSE(store_->ExistKey("plain0"));
}

TEST_F(MaintenanceTest, RefreshSoftStateGivesFreshLeasesAndHeartbeats) {
  PutComplete("k", 10, 0);
  store_->RefreshSoftState(50'000);
  EXPECT_EQ(Objects(*store_)[0].lease_deadline_ms, 50'000 + options_.lease_ttl_ms);
  EXPECT_EQ(store_->Remove("k", 50'000).code(), ErrorCode::kObjectHasLease);
  // The client mounted at 0 would have expired at 50'000 without the refresh.
  EXPECT_EQ(store_->ExpireClients(50'000 + options_.client_ttl_ms), 0u);
  EXPECT_EQ(store_->ExpireClients(50'000 + options_.client_ttl_ms + 1), 1u);
}

}  // namespace
}  // namespace tandem::meta::testing
