// Segments and clients: MountSegment, UnmountSegment, Ping, ExpireClients, ListSegments.
#include <gtest/gtest.h>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

class SegmentOpsTest : public ::testing::Test {
 protected:
  RecordingSink sink_;
  Options options_;
  MetaStore store_{options_, &sink_};
};

TEST_F(SegmentOpsTest, MountLogsTheEffectWithAFreshHandle) {
  SegmentSpec spec = Seg("pool-a", 4096, 0x7f0000000000);
  spec.id = "id-a";
  ASSERT_TRUE(store_.MountSegment(spec, "node-a", 7).ok());
  ASSERT_EQ(sink_.size(), 1u);
  OpLogEntry entry = sink_.last();
  EXPECT_EQ(entry.op_type(), OpType::MOUNT_SEGMENT);
  EXPECT_TRUE(entry.object_key().empty());
  auto effect = PayloadOf<tandem::v1::MountSegmentEffect>(entry);
  EXPECT_EQ(effect.segment_handle(), 1u);
  EXPECT_EQ(effect.segment_id(), "id-a");
  EXPECT_EQ(effect.name(), "pool-a");
  EXPECT_EQ(effect.base(), 0x7f0000000000u);
  EXPECT_EQ(effect.size(), 4096u);
  EXPECT_EQ(effect.owner_client_id(), "node-a");

  std::vector<SegmentInfo> list = store_.ListSegments();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].handle, 1u);
  EXPECT_EQ(list[0].spec.id, "id-a");
  EXPECT_EQ(list[0].owner_client_id, "node-a");
  EXPECT_EQ(list[0].used, 0u);
  EXPECT_EQ(store_.GetStats().bytes_total, 4096u);
}

TEST_F(SegmentOpsTest, IdDefaultsToName) {
  ASSERT_TRUE(store_.MountSegment(Seg("pool-a", 100), "n", 0).ok());
  EXPECT_EQ(store_.ListSegments()[0].spec.id, "pool-a");
  EXPECT_TRUE(store_.UnmountSegment("pool-a", "n", 0).ok());
}

TEST_F(SegmentOpsTest, HandlesAreNeverReused) {
  ASSERT_TRUE(store_.MountSegment(Seg("a", 100), "n", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 100), "n", 0).ok());
  ASSERT_TRUE(store_.UnmountSegment("b", "n", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 100), "n", 0).ok());
  EXPECT_EQ(PayloadOf<tandem::v1::MountSegmentEffect>(sink_.last()).segment_handle(), 3u);
}

TEST_F(SegmentOpsTest, DuplicateIdOrNameIsSegmentAlreadyExists) {
  SegmentSpec a = Seg("name-a", 100);
  a.id = "id-a";
  ASSERT_TRUE(store_.MountSegment(a, "n", 0).ok());
  SegmentSpec same_id = Seg("name-b", 100);
  same_id.id = "id-a";
  EXPECT_EQ(store_.MountSegment(same_id, "n", 0).code(), ErrorCode::kSegmentAlreadyExists);
  SegmentSpec same_name = Seg("name-a", 100);
  same_name.id = "id-b";
  EXPECT_EQ(store_.MountSegment(same_name, "n", 0).code(), ErrorCode::kSegmentAlreadyExists);
  EXPECT_EQ(store_.MountSegment(a, "other", 0).code(), ErrorCode::kSegmentAlreadyExists);
  EXPECT_EQ(sink_.size(), 1u);
}

TEST_F(SegmentOpsTest, BadSegmentParamsAreInvalidParams) {
  const std::string too_long(257, 'x');
  std::vector<std::pair<SegmentSpec, std::string>> bad;
  bad.emplace_back(Seg("", 100), "n");
  bad.emplace_back(Seg(too_long, 100), "n");
  SegmentSpec long_id = Seg("a", 100);
  long_id.id = too_long;
  bad.emplace_back(long_id, "n");
  bad.emplace_back(Seg("a", 0), "n");
  bad.emplace_back(Seg("a", options_.max_segment_size + 1), "n");
  bad.emplace_back(Seg("a", 100, UINT64_MAX - 50), "n");  // base + size overflows
  SegmentSpec long_endpoint = Seg("a", 100);
  long_endpoint.endpoint = too_long;
  bad.emplace_back(long_endpoint, "n");
  bad.emplace_back(Seg("a", 100), too_long);
  for (const auto& [spec, client] : bad) {
    Status s = store_.MountSegment(spec, client, 0);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidParams) << spec.name.size() << " " << spec.size;
    EXPECT_FALSE(s.message().empty());
  }
  EXPECT_EQ(sink_.size(), 0u);
  EXPECT_TRUE(
      store_.MountSegment(Seg(std::string(256, 'x'), options_.max_segment_size), "n", 0).ok());
}

TEST_F(SegmentOpsTest, UnmountErrors) {
  EXPECT_EQ(store_.UnmountSegment("nope", "", 0).code(), ErrorCode::kSegmentNotFound);
  EXPECT_EQ(store_.UnmountSegment("", "", 0).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(store_.UnmountSegment(std::string(257, 'x'), "", 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.MountSegment(Seg("a", 100), "owner", 0).ok());
  EXPECT_EQ(store_.UnmountSegment("a", "intruder", 0).code(), ErrorCode::kNotOwner);
  EXPECT_EQ(store_.UnmountSegment("a", std::string(257, 'c'), 0).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(store_.ListSegments().size(), 1u);
  EXPECT_EQ(sink_.size(), 1u);
}

TEST_F(SegmentOpsTest, OwnerOrOperatorMayUnmount) {
  ASSERT_TRUE(store_.MountSegment(Seg("a", 100), "owner", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 100), "owner", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("static", 100), "", 0).ok());
  EXPECT_TRUE(store_.UnmountSegment("a", "owner", 0).ok());
  EXPECT_EQ(sink_.last().op_type(), OpType::UNMOUNT_SEGMENT);
  EXPECT_EQ(PayloadOf<tandem::v1::UnmountSegmentEffect>(sink_.last()).segment_handle(), 1u);
  EXPECT_TRUE(store_.UnmountSegment("b", "", 0).ok());             // operator
  EXPECT_TRUE(store_.UnmountSegment("static", "anyone", 0).ok());  // no owner to protect
  EXPECT_TRUE(store_.ListSegments().empty());
  EXPECT_EQ(store_.GetStats().bytes_total, 0u);
}

TEST_F(SegmentOpsTest, UnmountDropsReplicasAndObjectsLeftWithoutOne) {
  ASSERT_TRUE(store_.MountSegment(Seg("a", 1000), "n", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 1000), "n", 0).ok());
  PutStartArgs both = Put("both", 100, 2);
  ASSERT_TRUE(store_.PutStart(both, 0).ok());
  ASSERT_TRUE(store_.PutEnd("both", "c1", 0).ok());
  PutStartArgs only_a = Put("only-a", 50);
  only_a.preferred_segment = "a";
  ASSERT_TRUE(store_.PutStart(only_a, 0).ok());
  ASSERT_TRUE(store_.PutEnd("only-a", "c1", 0).ok());
  PutStartArgs pending_a = Put("pending-a", 30);
  pending_a.preferred_segment = "a";
  ASSERT_TRUE(store_.PutStart(pending_a, 0).ok());
  PutStartArgs only_b = Put("only-b", 20);
  only_b.preferred_segment = "b";
  ASSERT_TRUE(store_.PutStart(only_b, 0).ok());
  ASSERT_TRUE(store_.GetReplicaList("both", 0).ok());  // leased: unmount still drops replicas

  ASSERT_TRUE(store_.UnmountSegment("a", "n", 1).ok());
  EXPECT_FALSE(store_.ExistKey("only-a"));
  EXPECT_FALSE(store_.ExistKey("pending-a"));
  EXPECT_TRUE(store_.ExistKey("only-b"));
  auto got = store_.GetReplicaList("both", 2);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->replicas.size(), 1u);
  EXPECT_EQ(got->replicas[0].segment_id, "b");
  EXPECT_EQ(store_.GetStats().bytes_used, 120u);
  EXPECT_EQ(store_.GetStats().processing_count, 1u);  // only-b
  EXPECT_TRUE(CheckInvariants(store_));
}

TEST_F(SegmentOpsTest, PingRecordsHeartbeatsOfKnownClients) {
  EXPECT_EQ(store_.Ping("", 0).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(store_.Ping(std::string(257, 'c'), 0).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(store_.Ping("stranger", 0).code(), ErrorCode::kClientNotFound);
  ASSERT_TRUE(store_.MountSegment(Seg("a", 100), "node", 0).ok());
  EXPECT_TRUE(store_.Ping("node", 5).ok());
  EXPECT_EQ(sink_.size(), 1u);  // heartbeats are soft state
  ASSERT_TRUE(store_.UnmountSegment("a", "node", 6).ok());
  EXPECT_EQ(store_.Ping("node", 7).code(), ErrorCode::kClientNotFound);
}

TEST_F(SegmentOpsTest, SilentClientsLoseTheirSegmentsInOneEntryEach) {
  ASSERT_TRUE(store_.MountSegment(Seg("a1", 1000), "node-a", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("a2", 1000), "node-a", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 1000), "node-b", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("static", 1000), "", 0).ok());
  PutStartArgs on_a = Put("on-a", 10);
  on_a.preferred_segment = "a1";
  ASSERT_TRUE(store_.PutStart(on_a, 0).ok());
  PutStartArgs on_b = Put("on-b", 10);
  on_b.preferred_segment = "b";
  ASSERT_TRUE(store_.PutStart(on_b, 0).ok());
  ASSERT_TRUE(store_.Ping("node-b", 8000).ok());
  const uint64_t ttl = options_.client_ttl_ms;

  EXPECT_EQ(store_.ExpireClients(ttl), 0u);  // last heartbeat + ttl == now: not yet
  const size_t before = sink_.size();
  EXPECT_EQ(store_.ExpireClients(ttl + 1), 1u);
  ASSERT_EQ(sink_.size(), before + 1);
  OpLogEntry entry = sink_.last();
  EXPECT_EQ(entry.op_type(), OpType::CLIENT_EXPIRED);
  auto effect = PayloadOf<tandem::v1::ClientExpiredEffect>(entry);
  EXPECT_EQ(effect.client_id(), "node-a");
  ASSERT_EQ(effect.segment_handles_size(), 2);
  EXPECT_EQ(effect.segment_handles(0), 1u);
  EXPECT_EQ(effect.segment_handles(1), 2u);
  EXPECT_FALSE(store_.ExistKey("on-a"));
  EXPECT_TRUE(store_.ExistKey("on-b"));
  EXPECT_EQ(store_.ListSegments().size(), 2u);
  EXPECT_EQ(store_.Ping("node-a", ttl + 2).code(), ErrorCode::kClientNotFound);
  EXPECT_EQ(store_.GetStats().expired_clients, 1u);

  EXPECT_EQ(store_.ExpireClients(8000 + ttl + 1), 1u);  // node-b; the static segment stays
  std::vector<SegmentInfo> left = store_.ListSegments();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].spec.name, "static");
  EXPECT_EQ(store_.ExpireClients(UINT32_MAX), 0u);
  EXPECT_TRUE(CheckInvariants(store_));
}

TEST_F(SegmentOpsTest, ListSegmentsReportsUsedBytes) {
  ASSERT_TRUE(store_.MountSegment(Seg("a", 1000), "n", 0).ok());
  ASSERT_TRUE(store_.MountSegment(Seg("b", 500), "n", 0).ok());
  ASSERT_TRUE(store_.PutStart(Put("k", 123, 2), 0).ok());
  for (const SegmentInfo& s : store_.ListSegments()) EXPECT_EQ(s.used, 123u);
  Stats stats = store_.GetStats();
  EXPECT_EQ(stats.segment_count, 2u);
  EXPECT_EQ(stats.bytes_used, 246u);
  EXPECT_EQ(stats.bytes_total, 1500u);
  EXPECT_EQ(stats.object_count, 1u);
  EXPECT_EQ(stats.processing_count, 1u);
}

}  // namespace
}  // namespace tandem::meta::testing
