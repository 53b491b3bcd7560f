// Object operations of the leader: PutStart, PutEnd, PutRevoke, GetReplicaList, ExistKey, Remove.
#include <gtest/gtest.h>

#include <set>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

class ObjectOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.MountSegment(Seg("seg-a", 1000, 0x1000), "node-a", 0).ok());
    ASSERT_TRUE(store_.MountSegment(Seg("seg-b", 1000, 0x2000), "node-b", 0).ok());
    ASSERT_TRUE(store_.MountSegment(Seg("seg-c", 1000, 0x3000), "node-c", 0).ok());
    mounts_ = sink_.size();
  }
  // Entries logged since the mounts.
  size_t logged() const { return sink_.size() - mounts_; }
  void PutComplete(std::string_view key, uint64_t size, uint32_t replicas = 1) {
    ASSERT_TRUE(store_.PutStart(Put(key, size, replicas), 10).ok());
    ASSERT_TRUE(store_.PutEnd(key, "c1", 20).ok());
  }

  RecordingSink sink_;
  Options options_;
  MetaStore store_{options_, &sink_};
  size_t mounts_ = 0;
};

TEST_F(ObjectOpsTest, PutStartPlacesReplicasOnDistinctSegmentsAndLogsTheAllocation) {
  auto views = store_.PutStart(Put("k1", 100, 2), 50);
  ASSERT_TRUE(views.ok()) << views.status().ToString();
  ASSERT_EQ(views->size(), 2u);
  EXPECT_NE(views.value()[0].segment_id, views.value()[1].segment_id);
  std::set<std::string> segments;
  for (const ReplicaView& v : views.value()) {
    EXPECT_EQ(v.size, 100u);
    EXPECT_EQ(v.state, ReplicaState::kProcessing);
    EXPECT_EQ(v.endpoint, "10.0.0.1:7000");
    segments.insert(v.segment_name);
  }
  EXPECT_EQ(segments.size(), 2u);

  ASSERT_EQ(logged(), 1u);
  OpLogEntry entry = sink_.last();
  EXPECT_EQ(entry.op_type(), OpType::PUT_START);
  EXPECT_EQ(entry.object_key(), "k1");
  EXPECT_EQ(entry.timestamp_ms(), 50u);
  auto effect = PayloadOf<tandem::v1::PutStartEffect>(entry);
  EXPECT_EQ(effect.value_size(), 100u);
  ASSERT_EQ(effect.replicas_size(), 2);
  EXPECT_EQ(effect.replicas(0).size(), 100u);
  EXPECT_NE(effect.replicas(0).segment_handle(), effect.replicas(1).segment_handle());
  EXPECT_EQ(store_.applied_seq(), entry.sequence_id());
  EXPECT_TRUE(CheckInvariants(store_));

  std::vector<ObjectInfo> objects = Objects(store_);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].state, ReplicaState::kProcessing);
  // The view's address is the segment base plus the logged offset.
  for (const ReplicaView& v : views.value()) {
    for (const SegmentInfo& s : store_.ListSegments()) {
      if (s.spec.id == v.segment_id) {
        EXPECT_EQ(v.address, s.spec.base + v.offset);
      }
    }
  }
}

TEST_F(ObjectOpsTest, ReplicaNumZeroMeansOne) {
  auto views = store_.PutStart(Put("k1", 10, 0), 0);
  ASSERT_TRUE(views.ok());
  EXPECT_EQ(views->size(), 1u);
}

TEST_F(ObjectOpsTest, RoundRobinSpreadsPutsOverSegments) {
  std::set<std::string> used;
  for (int i = 0; i < 3; ++i) {
    auto views = store_.PutStart(Put("k" + std::to_string(i), 10), 0);
    ASSERT_TRUE(views.ok());
    used.insert(views.value()[0].segment_id);
  }
  EXPECT_EQ(used.size(), 3u);
}

TEST_F(ObjectOpsTest, PreferredSegmentIsTheFirstCandidate) {
  for (int i = 0; i < 4; ++i) {
    const std::string key = "k" + std::to_string(i);  // PutStartArgs only views it
    PutStartArgs args = Put(key, 10, 2);
    args.preferred_segment = "seg-c";
    auto views = store_.PutStart(args, 0);
    ASSERT_TRUE(views.ok());
    EXPECT_EQ(views.value()[0].segment_id, "seg-c");
    EXPECT_NE(views.value()[1].segment_id, "seg-c");
  }
}

TEST_F(ObjectOpsTest, FullPreferredSegmentFallsBackToOthers) {
  PutStartArgs fill = Put("fill", 1000);
  fill.preferred_segment = "seg-a";
  ASSERT_TRUE(store_.PutStart(fill, 0).ok());
  PutStartArgs args = Put("k", 10);
  args.preferred_segment = "seg-a";
  auto views = store_.PutStart(args, 0);
  ASSERT_TRUE(views.ok());
  EXPECT_NE(views.value()[0].segment_id, "seg-a");
}

TEST_F(ObjectOpsTest, UnknownPreferredSegmentIsSegmentNotFound) {
  PutStartArgs args = Put("k", 10);
  args.preferred_segment = "nope";
  auto views = store_.PutStart(args, 0);
  EXPECT_EQ(views.status().code(), ErrorCode::kSegmentNotFound);
  EXPECT_EQ(logged(), 0u);
}

TEST_F(ObjectOpsTest, PutStartRejectsBadInput) {
  const std::string long_key(options_.max_key_bytes + 1, 'k');
  const std::string long_client(257, 'c');
  std::vector<PutStartArgs> bad = {
      Put("", 10),
      Put(long_key, 10),
      Put("k", 0),
      Put("k", options_.max_object_size + 1),
      Put("k", UINT64_MAX),
      Put("k", 10, options_.max_replicas + 1),
      Put("k", 10, UINT32_MAX),
      Put("k", 10, 1, long_client),
  };
  for (const PutStartArgs& args : bad) {
    auto views = store_.PutStart(args, 0);
    EXPECT_EQ(views.status().code(), ErrorCode::kInvalidParams)
        << "key size " << args.key.size() << " value " << args.value_size;
    EXPECT_FALSE(views.status().message().empty());
  }
  EXPECT_EQ(logged(), 0u);
  EXPECT_TRUE(store_.PutStart(Put(std::string(options_.max_key_bytes, 'k'), 10), 0).ok());
}

TEST_F(ObjectOpsTest, MoreReplicasThanSegmentsIsInvalidParamsNamingBothNumbers) {
  auto views = store_.PutStart(Put("k", 10, 4), 0);
  ASSERT_EQ(views.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(views.status().message().find('4'), std::string::npos);
  EXPECT_NE(views.status().message().find('3'), std::string::npos);
  EXPECT_EQ(logged(), 0u);
}

TEST_F(ObjectOpsTest, ExistingKeyIsObjectAlreadyExistsInAnyState) {
  ASSERT_TRUE(store_.PutStart(Put("k", 10), 0).ok());
  EXPECT_EQ(store_.PutStart(Put("k", 10), 0).status().code(), ErrorCode::kObjectAlreadyExists);
  ASSERT_TRUE(store_.PutEnd("k", "c1", 0).ok());
  EXPECT_EQ(store_.PutStart(Put("k", 10), 0).status().code(), ErrorCode::kObjectAlreadyExists);
  EXPECT_EQ(logged(), 2u);
}

TEST_F(ObjectOpsTest, NoRoomIsNoAvailableSpaceAndChangesNothing) {
  PutStartArgs big = Put("big", 600);
  big.preferred_segment = "seg-a";
  ASSERT_TRUE(store_.PutStart(big, 0).ok());
  const uint64_t digest = store_.StateDigest();
  EXPECT_EQ(store_.PutStart(Put("k", 1001), 0).status().code(), ErrorCode::kNoAvailableSpace);
  // seg-b and seg-c have room for a replica each, seg-a does not: 2 of 3.
  EXPECT_EQ(store_.PutStart(Put("k", 500, 3), 0).status().code(), ErrorCode::kNoAvailableSpace);
  EXPECT_EQ(store_.StateDigest(), digest);
  EXPECT_EQ(logged(), 1u);
  EXPECT_TRUE(store_.PutStart(Put("k", 400, 3), 0).ok());  // exactly what seg-a has left
  EXPECT_EQ(store_.GetStats().bytes_used, 1800u);
  EXPECT_TRUE(CheckInvariants(store_));
}

TEST(ObjectOpsNoSegmentsTest, PutStartWithoutSegmentsIsInvalidParams) {
  RecordingSink sink;
  MetaStore store(Options(), &sink);
  EXPECT_EQ(store.PutStart(Put("k", 10), 0).status().code(), ErrorCode::kInvalidParams);
}

TEST_F(ObjectOpsTest, PutEndMakesTheObjectCompleteAndReadable) {
  ASSERT_TRUE(store_.PutStart(Put("k", 10, 2), 0).ok());
  EXPECT_EQ(store_.GetReplicaList("k", 5).status().code(), ErrorCode::kObjectNotReady);
  ASSERT_TRUE(store_.PutEnd("k", "c1", 10).ok());
  EXPECT_EQ(sink_.last().op_type(), OpType::PUT_END);
  EXPECT_TRUE(sink_.last().payload().empty());
  auto got = store_.GetReplicaList("k", 20);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->replicas.size(), 2u);
  EXPECT_EQ(got->replicas[0].state, ReplicaState::kComplete);
  EXPECT_EQ(got->lease_ttl_ms, options_.lease_ttl_ms);
}

TEST_F(ObjectOpsTest, PutEndErrors) {
  EXPECT_EQ(store_.PutEnd("missing", "c1", 0).code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(store_.PutEnd("", "c1", 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutStart(Put("k", 10, 1, "c1"), 0).ok());
  EXPECT_EQ(store_.PutEnd("k", "c2", 0).code(), ErrorCode::kNotOwner);
  EXPECT_EQ(store_.PutEnd("k", "", 0).code(), ErrorCode::kNotOwner);
  EXPECT_EQ(store_.PutEnd("k", std::string(257, 'c'), 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutEnd("k", "c1", 0).ok());
  EXPECT_EQ(store_.PutEnd("k", "c1", 0).code(), ErrorCode::kInvalidState);
  EXPECT_EQ(logged(), 2u);
}

TEST_F(ObjectOpsTest, AnonymousPutsAreEndedAnonymouslyOnly) {
  ASSERT_TRUE(store_.PutStart(Put("k", 10, 1, ""), 0).ok());
  EXPECT_EQ(store_.PutEnd("k", "c1", 0).code(), ErrorCode::kNotOwner);
  EXPECT_TRUE(store_.PutEnd("k", "", 0).ok());
}

TEST_F(ObjectOpsTest, PutRevokeFreesTheSpace) {
  ASSERT_TRUE(store_.PutStart(Put("k", 100, 3), 0).ok());
  EXPECT_EQ(store_.GetStats().bytes_used, 300u);
  ASSERT_TRUE(store_.PutRevoke("k", "c1", 5).ok());
  EXPECT_EQ(sink_.last().op_type(), OpType::PUT_REVOKE);
  EXPECT_EQ(PayloadOf<tandem::v1::PutRevokeEffect>(sink_.last()).reason(),
            tandem::v1::REVOKE_BY_CLIENT);
  EXPECT_FALSE(store_.ExistKey("k"));
  EXPECT_EQ(store_.GetStats().bytes_used, 0u);
  EXPECT_TRUE(CheckInvariants(store_));
}

TEST_F(ObjectOpsTest, PutRevokeErrors) {
  EXPECT_EQ(store_.PutRevoke("missing", "c1", 0).code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(store_.PutRevoke(std::string(5000, 'k'), "c1", 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutStart(Put("k", 10, 1, "c1"), 0).ok());
  EXPECT_EQ(store_.PutRevoke("k", "c2", 0).code(), ErrorCode::kNotOwner);
  EXPECT_EQ(store_.PutRevoke("k", std::string(257, 'c'), 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutEnd("k", "c1", 0).ok());
  EXPECT_EQ(store_.PutRevoke("k", "c1", 0).code(), ErrorCode::kInvalidState);
  EXPECT_TRUE(store_.ExistKey("k"));
  EXPECT_EQ(logged(), 2u);
}

TEST_F(ObjectOpsTest, GetReplicaListErrors) {
  EXPECT_EQ(store_.GetReplicaList("missing", 0).status().code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(store_.GetReplicaList("", 0).status().code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutStart(Put("k", 10), 0).ok());
  EXPECT_EQ(store_.GetReplicaList("k", 0).status().code(), ErrorCode::kObjectNotReady);
}

TEST_F(ObjectOpsTest, GetGrantsALeaseThatOnlyExtendsAndIsNotLogged) {
  PutComplete("k", 10);
  const size_t before = sink_.size();
  const uint64_t digest = store_.StateDigest();
  ASSERT_TRUE(store_.GetReplicaList("k", 1000).ok());
  EXPECT_EQ(Objects(store_)[0].lease_deadline_ms, 1000 + options_.lease_ttl_ms);
  ASSERT_TRUE(store_.GetReplicaList("k", 500).ok());  // an older "now" never shortens it
  EXPECT_EQ(Objects(store_)[0].lease_deadline_ms, 1000 + options_.lease_ttl_ms);
  ASSERT_TRUE(store_.GetReplicaList("k", 3000).ok());
  EXPECT_EQ(Objects(store_)[0].lease_deadline_ms, 3000 + options_.lease_ttl_ms);
  EXPECT_EQ(sink_.size(), before);
  EXPECT_EQ(store_.StateDigest(), digest);  // leases are soft state
}

TEST_F(ObjectOpsTest, ExistKey) {
  EXPECT_FALSE(store_.ExistKey("k"));
  ASSERT_TRUE(store_.PutStart(Put("k", 10), 0).ok());
  EXPECT_TRUE(store_.ExistKey("k"));  // PROCESSING counts
  ASSERT_TRUE(store_.PutEnd("k", "c1", 0).ok());
  EXPECT_TRUE(store_.ExistKey("k"));
  EXPECT_FALSE(store_.ExistKey(""));
  EXPECT_FALSE(store_.ExistKey(std::string(5000, 'k')));
}

TEST_F(ObjectOpsTest, RemoveDropsACompleteObjectAndFreesItsSpace) {
  PutComplete("k", 100, 2);
  ASSERT_TRUE(store_.Remove("k", 100).ok());
  EXPECT_EQ(sink_.last().op_type(), OpType::REMOVE);
  EXPECT_FALSE(store_.ExistKey("k"));
  EXPECT_EQ(store_.GetStats().bytes_used, 0u);
  EXPECT_EQ(store_.Remove("k", 100).code(), ErrorCode::kObjectNotFound);
}

TEST_F(ObjectOpsTest, RemoveErrors) {
  EXPECT_EQ(store_.Remove("", 0).code(), ErrorCode::kInvalidParams);
  ASSERT_TRUE(store_.PutStart(Put("k", 10), 0).ok());
  EXPECT_EQ(store_.Remove("k", 0).code(), ErrorCode::kInvalidState);
  ASSERT_TRUE(store_.PutEnd("k", "c1", 0).ok());
  ASSERT_TRUE(store_.GetReplicaList("k", 1000).ok());  // leased until 1000 + ttl
  EXPECT_EQ(store_.Remove("k", 1000 + options_.lease_ttl_ms - 1).code(),
            ErrorCode::kObjectHasLease);
  EXPECT_TRUE(store_.ExistKey("k"));
  EXPECT_TRUE(store_.Remove("k", 1000 + options_.lease_ttl_ms).ok());  // the lease has ended
}

TEST_F(ObjectOpsTest, SpaceFreedByRemoveIsReused) {
  PutComplete("a", 1000, 3);
  EXPECT_EQ(store_.PutStart(Put("b", 1), 0).status().code(), ErrorCode::kNoAvailableSpace);
  ASSERT_TRUE(store_.Remove("a", 0).ok());
  EXPECT_TRUE(store_.PutStart(Put("b", 1000, 3), 0).ok());
  EXPECT_TRUE(CheckInvariants(store_));
}

// A sink that refuses (not leader, fenced) aborts every write before anything changes.
TEST_F(ObjectOpsTest, AFailingSinkChangesNothing) {
  PutComplete("done", 10);
  ASSERT_TRUE(store_.PutStart(Put("pending", 10), 0).ok());
  const uint64_t digest = store_.StateDigest();
  const uint64_t seq = store_.applied_seq();
  const std::string dump = DumpState(store_);
  sink_.FailWith(Status(ErrorCode::kNotLeader, "fenced"));

  EXPECT_EQ(store_.PutStart(Put("new", 10), 0).status().code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.PutEnd("pending", "c1", 0).code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.PutRevoke("pending", "c1", 0).code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.Remove("done", 0).code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.MountSegment(Seg("seg-d", 100), "node-d", 0).code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.UnmountSegment("seg-a", "", 0).code(), ErrorCode::kNotLeader);
  EXPECT_EQ(store_.RemoveAll(0).removed, 0u);
  EXPECT_EQ(store_.ReapStalePuts(1'000'000), 0u);
  EXPECT_EQ(store_.ExpireClients(1'000'000), 0u);

  EXPECT_EQ(store_.StateDigest(), digest);
  EXPECT_EQ(store_.applied_seq(), seq);
  EXPECT_EQ(DumpState(store_), dump);
  EXPECT_TRUE(CheckInvariants(store_));
}

}  // namespace
}  // namespace tandem::meta::testing
