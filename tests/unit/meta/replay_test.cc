// Replay determinism: a standby fed the leader's entries through Apply holds the same state, Apply
// is idempotent by sequence id, and an entry that does not fit the state is refused untouched.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

Options SmallOptions() {
  Options options;
  options.eviction_high_watermark = 0.5;
  options.eviction_ratio = 0.1;
  return options;
}

// Drives every kind of entry through a leader store.
void DriveMixedSequence(MetaStore& leader, RecordingSink& sink) {
  ASSERT_TRUE(leader.MountSegment(Seg("a", 1000, 0x1000), "node-a", 0).ok());
  ASSERT_TRUE(leader.MountSegment(Seg("b", 1000, 0x2000), "node-b", 0).ok());
  ASSERT_TRUE(leader.MountSegment(Seg("c", 1000, 0x3000), "", 0).ok());  // static
  ASSERT_TRUE(leader.MountSegment(Seg("d", 1000, 0x4000), "node-d", 0).ok());
  for (int i = 0; i < 12; ++i) {
    std::string key = "obj-" + std::to_string(i);
    PutStartArgs args = Put(key, 40 + i, 1 + i % 3);
    args.soft_pin = i % 4 == 0;
    ASSERT_TRUE(leader.PutStart(args, 100 + i).ok()) << key;
    if (i % 5 != 4) {
      ASSERT_TRUE(leader.PutEnd(key, "c1", 200 + i).ok());
    }
  }
  ASSERT_TRUE(leader.PutStart(Put("revoked", 10), 300).ok());
  ASSERT_TRUE(leader.PutRevoke("revoked", "c1", 301).ok());
  ASSERT_TRUE(leader.Remove("obj-0", 400).ok());
  ASSERT_TRUE(leader.GetReplicaList("obj-1", 400).ok());  // soft state only
  ASSERT_TRUE(leader.UnmountSegment("a", "node-a", 500).ok());
  ASSERT_TRUE(leader.PutStart(Put("stale", 30), 600).ok());
  EXPECT_GE(leader.ReapStalePuts(600 + leader.options().put_timeout_ms + 1), 1u);
  // Fill past the watermark, then evict.
  for (int i = 0; i < 10; ++i) {
    std::string key = "fill-" + std::to_string(i);
    ASSERT_TRUE(leader.PutStart(Put(key, 150, 1), 40'000 + i).ok()) << key;
    ASSERT_TRUE(leader.PutEnd(key, "c1", 40'000 + i).ok());
  }
  EXPECT_GT(leader.EvictIfNeeded(50'000), 0u);
  // An epoch change, written by the node layer straight through the sink and Apply.
  OpLogEntry epoch;
  epoch.set_sequence_id(sink.TakeSeq());
  epoch.set_epoch(2);
  epoch.set_op_type(OpType::EPOCH_START);
  tandem::v1::EpochStartEffect effect;
  effect.set_leader_node_id("node-2");
  epoch.set_payload(effect.SerializeAsString());
  ASSERT_TRUE(leader.Apply(epoch).ok());
  sink.Record(epoch);
  sink.SetEpoch(2);
  ASSERT_TRUE(leader.Ping("node-d", 55'000).ok());
  EXPECT_EQ(leader.ExpireClients(60'000), 1u);  // node-b; node-d pinged, c is static
  ASSERT_TRUE(leader.PutStart(Put("late", 20), 61'000).ok());
  ASSERT_TRUE(leader.PutEnd("late", "c1", 61'000).ok());
  EXPECT_GT(leader.RemoveAll(62'000).removed, 0u);
  ASSERT_TRUE(leader.PutStart(Put("last", 20, 2), 63'000).ok());
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leader_ = std::make_unique<MetaStore>(options_, &sink_);
    DriveMixedSequence(*leader_, sink_);
  }
  Options options_ = SmallOptions();
  RecordingSink sink_;
  RefusingSink standby_sink_;
  std::unique_ptr<MetaStore> leader_;
};

TEST_F(ReplayTest, TheSequenceCoversEveryOpType) {
  std::set<int> types;
  for (const OpLogEntry& e : sink_.entries()) types.insert(e.op_type());
  for (int t = OpType::PUT_START; t <= OpType::EPOCH_START; ++t) {
    EXPECT_TRUE(types.contains(t)) << tandem::v1::OpType_Name(static_cast<OpType>(t));
  }
}

TEST_F(ReplayTest, AStandbyReplayingTheLogHoldsTheSameState) {
  std::unique_ptr<MetaStore> standby = Replay(sink_.entries(), options_, &standby_sink_);
  EXPECT_EQ(standby->StateDigest(), leader_->StateDigest());
  for (int shard = 0; shard < kShardCount; ++shard) {
    ASSERT_EQ(standby->ShardDigest(shard), leader_->ShardDigest(shard)) << shard;
  }
  EXPECT_EQ(DumpState(*standby), DumpState(*leader_));
  EXPECT_EQ(standby->applied_seq(), leader_->applied_seq());
  EXPECT_EQ(standby->applied_seq(), sink_.entries().size());
  EXPECT_EQ(standby->applied_epoch(), 2u);
  EXPECT_TRUE(CheckInvariants(*standby));
  EXPECT_FALSE(Objects(*standby).empty());
}

TEST_F(ReplayTest, ApplyingEntriesAgainChangesNothing) {
  std::unique_ptr<MetaStore> standby = Replay(sink_.entries(), options_, &standby_sink_);
  const uint64_t digest = standby->StateDigest();
  const std::string dump = DumpState(*standby);
  for (const OpLogEntry& e : sink_.entries()) ASSERT_TRUE(standby->Apply(e).ok());
  EXPECT_EQ(standby->StateDigest(), digest);
  EXPECT_EQ(DumpState(*standby), dump);
  EXPECT_EQ(standby->applied_seq(), sink_.entries().size());
}

TEST_F(ReplayTest, DigestsTellDifferentStatesApart) {
  std::vector<OpLogEntry> entries = sink_.entries();
  entries.pop_back();  // "last" was never put
  std::unique_ptr<MetaStore> behind = Replay(entries, options_, &standby_sink_);
  EXPECT_NE(behind->StateDigest(), leader_->StateDigest());
  EXPECT_NE(DumpState(*behind), DumpState(*leader_));
}

TEST_F(ReplayTest, DigestExcludesSoftState) {
  std::unique_ptr<MetaStore> standby = Replay(sink_.entries(), options_, &standby_sink_);
  for (const ObjectInfo& o : Objects(*leader_)) {
    if (o.state == ReplicaState::kComplete) {
      ASSERT_TRUE(leader_->GetReplicaList(o.key, 90'000).ok());
    }
  }
  leader_->RefreshSoftState(99'000);
  EXPECT_EQ(standby->StateDigest(), leader_->StateDigest());
}

// ---- Refused entries ----

class ApplyRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(leader_.MountSegment(Seg("a", 1000), "node-a", 0).ok());
    ASSERT_TRUE(leader_.PutStart(Put("k", 100), 10).ok());
    ASSERT_TRUE(leader_.PutStart(Put("done", 100), 10).ok());
    ASSERT_TRUE(leader_.PutEnd("done", "c1", 10).ok());
    for (const OpLogEntry& e : sink_.entries()) ASSERT_TRUE(standby_.Apply(e).ok());
    handle_ = standby_.ListSegments()[0].handle;
  }

  OpLogEntry Entry(OpType type, std::string key, std::string payload) {
    OpLogEntry e;
    e.set_sequence_id(standby_.applied_seq() + 1);
    e.set_epoch(1);
    e.set_timestamp_ms(20);
    e.set_op_type(type);
    e.set_object_key(std::move(key));
    e.set_payload(std::move(payload));
    return e;
  }
  std::string PutStartPayload(uint32_t handle, uint64_t offset, uint64_t size,
                              uint64_t replica_size) {
    tandem::v1::PutStartEffect effect;
    effect.set_value_size(size);
    auto* r = effect.add_replicas();
    r->set_segment_handle(handle);
    r->set_offset(offset);
    r->set_size(replica_size);
    return effect.SerializeAsString();
  }
  std::string KeyList(std::vector<std::string> keys) {
    tandem::v1::KeyListEffect effect;
    for (auto& k : keys) effect.add_keys(k);
    return effect.SerializeAsString();
  }

  // Applies `entry` and expects INTERNAL with nothing changed.
  void ExpectRefused(const OpLogEntry& entry) {
    const uint64_t digest = standby_.StateDigest();
    const uint64_t seq = standby_.applied_seq();
    const std::string dump = DumpState(standby_);
    Status s = standby_.Apply(entry);
    EXPECT_EQ(s.code(), ErrorCode::kInternal) << tandem::v1::OpType_Name(entry.op_type());
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(standby_.StateDigest(), digest);
    EXPECT_EQ(standby_.applied_seq(), seq);
    EXPECT_EQ(DumpState(standby_), dump);
  }

  RecordingSink sink_;
  MetaStore leader_{Options(), &sink_};
  RefusingSink refusing_;
  MetaStore standby_{Options(), &refusing_};
  uint32_t handle_ = 0;
};

TEST_F(ApplyRefusalTest, CorruptPayloads) {
  for (OpType type :
       {OpType::PUT_START, OpType::PUT_REVOKE, OpType::MOUNT_SEGMENT, OpType::UNMOUNT_SEGMENT,
        OpType::EVICTION, OpType::REMOVE_ALL, OpType::CLIENT_EXPIRED, OpType::EPOCH_START}) {
    ExpectRefused(Entry(type, type == OpType::PUT_REVOKE ? "k" : "new", "\xff\xff\xff"));
  }
}

TEST_F(ApplyRefusalTest, PutStartThatContradictsTheState) {
  ExpectRefused(Entry(OpType::PUT_START, "x", PutStartPayload(handle_, 50, 10, 10)));   // overlap
  ExpectRefused(Entry(OpType::PUT_START, "x", PutStartPayload(handle_, 995, 10, 10)));  // leaves
  ExpectRefused(Entry(OpType::PUT_START, "x", PutStartPayload(99, 500, 10, 10)));  // no segment
  ExpectRefused(Entry(OpType::PUT_START, "x", PutStartPayload(handle_, 500, 10, 11)));  // size
  ExpectRefused(Entry(OpType::PUT_START, "x", PutStartPayload(handle_, 500, 0, 0)));
  ExpectRefused(Entry(OpType::PUT_START, "k", PutStartPayload(handle_, 500, 10, 10)));  // exists
  ExpectRefused(Entry(OpType::PUT_START, "", PutStartPayload(handle_, 500, 10, 10)));
  tandem::v1::PutStartEffect two_on_one;
  two_on_one.set_value_size(10);
  for (uint64_t offset : {500, 600}) {
    auto* r = two_on_one.add_replicas();
    r->set_segment_handle(handle_);
    r->set_offset(offset);
    r->set_size(10);
  }
  ExpectRefused(Entry(OpType::PUT_START, "x", two_on_one.SerializeAsString()));
  // The same entry at a free offset is fine.
  EXPECT_TRUE(
      standby_.Apply(Entry(OpType::PUT_START, "x", PutStartPayload(handle_, 500, 10, 10))).ok());
  EXPECT_TRUE(CheckInvariants(standby_));
}

TEST_F(ApplyRefusalTest, ObjectTransitionsThatContradictTheState) {
  ExpectRefused(Entry(OpType::PUT_END, "missing", ""));
  ExpectRefused(Entry(OpType::PUT_END, "done", ""));  // already COMPLETE
  ExpectRefused(Entry(OpType::PUT_REVOKE, "done", ""));
  ExpectRefused(Entry(OpType::PUT_REVOKE, "missing", ""));
  ExpectRefused(Entry(OpType::REMOVE, "k", ""));  // PROCESSING
  ExpectRefused(Entry(OpType::REMOVE, "missing", ""));
  ExpectRefused(Entry(OpType::EVICTION, "", KeyList({"done", "k"})));  // k is PROCESSING
  ExpectRefused(Entry(OpType::EVICTION, "", KeyList({"done", "missing"})));
  ExpectRefused(Entry(OpType::REMOVE_ALL, "", KeyList({"done", "done"})));
  ExpectRefused(Entry(OpType::REMOVE_ALL, "", KeyList({})));
  ExpectRefused(Entry(static_cast<OpType>(42), "k", ""));
  ExpectRefused(Entry(OpType::OP_TYPE_UNSPECIFIED, "k", ""));
}

TEST_F(ApplyRefusalTest, SegmentEffectsThatContradictTheState) {
  tandem::v1::MountSegmentEffect mount;
  mount.set_segment_handle(handle_);  // in use
  mount.set_segment_id("z");
  mount.set_name("z");
  mount.set_size(10);
  ExpectRefused(Entry(OpType::MOUNT_SEGMENT, "", mount.SerializeAsString()));
  mount.set_segment_handle(0);  // reserved
  ExpectRefused(Entry(OpType::MOUNT_SEGMENT, "", mount.SerializeAsString()));
  mount.set_segment_handle(7);
  mount.set_segment_id("a");  // id in use
  ExpectRefused(Entry(OpType::MOUNT_SEGMENT, "", mount.SerializeAsString()));
  mount.set_segment_id("z");
  mount.set_size(0);
  ExpectRefused(Entry(OpType::MOUNT_SEGMENT, "", mount.SerializeAsString()));

  tandem::v1::UnmountSegmentEffect unmount;
  unmount.set_segment_handle(99);
  ExpectRefused(Entry(OpType::UNMOUNT_SEGMENT, "", unmount.SerializeAsString()));

  tandem::v1::ClientExpiredEffect expired;
  expired.set_client_id("someone-else");
  expired.add_segment_handles(handle_);
  ExpectRefused(Entry(OpType::CLIENT_EXPIRED, "", expired.SerializeAsString()));
  expired.set_client_id("node-a");
  expired.add_segment_handles(handle_);  // listed twice
  ExpectRefused(Entry(OpType::CLIENT_EXPIRED, "", expired.SerializeAsString()));
}

TEST_F(ApplyRefusalTest, OldSequenceIdsAreIgnored) {
  OpLogEntry old = Entry(OpType::PUT_END, "missing", "");
  old.set_sequence_id(standby_.applied_seq());
  const uint64_t digest = standby_.StateDigest();
  EXPECT_TRUE(standby_.Apply(old).ok());
  old.set_sequence_id(0);
  EXPECT_TRUE(standby_.Apply(old).ok());
  EXPECT_EQ(standby_.StateDigest(), digest);
}

// Apply takes "now" from the entry, never from a clock: the put's start time is the leader's.
TEST_F(ApplyRefusalTest, ApplyUsesTheEntryTimestamp) {
  RecordingSink sink;
  MetaStore promoted(Options(), &sink);
  for (const OpLogEntry& e : sink_.entries()) ASSERT_TRUE(promoted.Apply(e).ok());
  const uint64_t timeout = promoted.options().put_timeout_ms;
  EXPECT_EQ(promoted.ReapStalePuts(10 + timeout), 0u);
  EXPECT_EQ(promoted.ReapStalePuts(10 + timeout + 1), 1u);  // "k", started at 10
}

// ---- Digest sensitivity: every replicated field moves it, soft state does not ----

struct Scenario {
  Scenario() {
    for (uint32_t handle : {1u, 2u}) {
      tandem::v1::MountSegmentEffect& m = handle == 1 ? a : b;
      m.set_segment_handle(handle);
      m.set_segment_id("id-" + std::to_string(handle));
      m.set_name("name-" + std::to_string(handle));
      m.set_base(4096);
      m.set_size(1000);
      m.set_endpoint("host:1");
      m.set_owner_client_id("node");
    }
    put.set_value_size(10);
    auto* r = put.add_replicas();
    r->set_segment_handle(1);
    r->set_offset(0);
    r->set_size(10);
    put.set_owner_client_hash(7);
  }
  tandem::v1::MountSegmentEffect a, b;
  tandem::v1::PutStartEffect put;
  std::string key = "k";
  bool end = false;
};

uint64_t DigestOf(const Scenario& s) {
  RefusingSink sink;
  MetaStore store(Options(), &sink);
  uint64_t seq = 0;
  auto apply = [&](OpType type, const std::string& key, const std::string& payload) {
    OpLogEntry e;
    e.set_sequence_id(++seq);
    e.set_op_type(type);
    e.set_object_key(key);
    e.set_payload(payload);
    e.set_timestamp_ms(seq);
    EXPECT_TRUE(store.Apply(e).ok());
  };
  apply(OpType::MOUNT_SEGMENT, "", s.a.SerializeAsString());
  apply(OpType::MOUNT_SEGMENT, "", s.b.SerializeAsString());
  apply(OpType::PUT_START, s.key, s.put.SerializeAsString());
  if (s.end) apply(OpType::PUT_END, s.key, "");
  return store.StateDigest();
}

TEST(DigestTest, EveryReplicatedFieldChangesTheDigest) {
  const uint64_t base = DigestOf(Scenario());
  EXPECT_EQ(DigestOf(Scenario()), base);  // deterministic
  std::vector<std::pair<std::string, std::function<void(Scenario&)>>> changes = {
      {"key", [](Scenario& s) { s.key = "k2"; }},
      {"state", [](Scenario& s) { s.end = true; }},
      {"value_size",
       [](Scenario& s) {
         s.put.set_value_size(11);
         s.put.mutable_replicas(0)->set_size(11);
       }},
      {"offset", [](Scenario& s) { s.put.mutable_replicas(0)->set_offset(1); }},
      {"handle", [](Scenario& s) { s.put.mutable_replicas(0)->set_segment_handle(2); }},
      {"owner", [](Scenario& s) { s.put.set_owner_client_hash(8); }},
      {"soft_pin", [](Scenario& s) { s.put.set_soft_pin(true); }},
      {"segment id", [](Scenario& s) { s.b.set_segment_id("other"); }},
      {"segment name", [](Scenario& s) { s.b.set_name("other"); }},
      {"segment base", [](Scenario& s) { s.b.set_base(8192); }},
      {"segment size", [](Scenario& s) { s.b.set_size(999); }},
      {"segment endpoint", [](Scenario& s) { s.b.set_endpoint("host:2"); }},
      {"segment owner", [](Scenario& s) { s.b.set_owner_client_id(""); }},
      {"segment handle", [](Scenario& s) { s.b.set_segment_handle(3); }},
  };
  for (auto& [name, change] : changes) {
    Scenario s;
    change(s);
    EXPECT_NE(DigestOf(s), base) << name;
  }
}

TEST(DigestTest, SegmentOrderOfReplicasMatters) {
  Scenario one_two;
  auto* r = one_two.put.add_replicas();
  r->set_segment_handle(2);
  r->set_offset(0);
  r->set_size(10);
  Scenario two_one = one_two;
  two_one.put.mutable_replicas(0)->set_segment_handle(2);
  two_one.put.mutable_replicas(1)->set_segment_handle(1);
  EXPECT_NE(DigestOf(one_two), DigestOf(two_one));
}

}  // namespace
}  // namespace tandem::meta::testing
