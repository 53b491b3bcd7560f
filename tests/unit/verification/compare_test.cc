// Pure verification logic (src/verification/compare.h) and MetaStore's verification support.
#include "verification/compare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "meta/digest.h"
#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "verification/answer.h"

namespace tandem::verification {
namespace {

using meta::MetaStore;

std::vector<KeyChecksum> Sorted(std::vector<KeyChecksum> v) {
  std::sort(v.begin(), v.end(), [](const KeyChecksum& a, const KeyChecksum& b) {
    return MetaStore::VerifyOrderLess(a.key, b.key);
  });
  return v;
}

TEST(CompareShard, EqualListsHaveNoDifference) {
  auto keys = Sorted({{"a", 1}, {"b", 2}, {"c", 3}});
  ShardComparison c = CompareShard(keys, true, keys, {});
  EXPECT_TRUE(c.differences.empty());
  EXPECT_EQ(c.checked, 3u);
  EXPECT_EQ(c.skipped, 0u);
}

TEST(CompareShard, FindsEveryKind) {
  auto standby = Sorted({{"a", 1}, {"b", 99}, {"extra", 5}});
  auto primary = Sorted({{"a", 1}, {"b", 2}, {"missing", 7}});
  ShardComparison c = CompareShard(standby, true, primary, {});
  ASSERT_EQ(c.differences.size(), 3u);
  EXPECT_EQ(c.checked, 4u);
  auto find = [&](const std::string& key) {
    return *std::find_if(c.differences.begin(), c.differences.end(),
                         [&](const Difference& d) { return d.key == key; });
  };
  EXPECT_EQ(find("b"), (Difference{"b", Verdict::kMismatch, 2, 99}));
  EXPECT_EQ(find("extra"), (Difference{"extra", Verdict::kMissingOnPrimary, 0, 5}));
  EXPECT_EQ(find("missing"), (Difference{"missing", Verdict::kMissingOnStandby, 7, 0}));
}

TEST(CompareShard, TouchedKeysAreSkippedNeverReported) {
  auto standby = Sorted({{"a", 1}, {"b", 99}});
  auto primary = Sorted({{"a", 1}, {"c", 3}});
  TouchedKeys touched;
  touched.keys = {"b", "c"};
  ShardComparison c = CompareShard(standby, true, primary, touched);
  EXPECT_TRUE(c.differences.empty());
  EXPECT_EQ(c.checked, 1u);
  EXPECT_EQ(c.skipped, 2u);
  touched.all = true;
  c = CompareShard(standby, true, primary, touched);
  EXPECT_TRUE(c.differences.empty());
  EXPECT_EQ(c.skipped, 3u);
}

TEST(CompareShard, IncompleteSampleBoundsTheRange) {
  std::vector<KeyChecksum> all;
  for (int i = 0; i < 20; ++i) all.push_back({"k" + std::to_string(i), uint64_t(i + 1)});
  all = Sorted(all);
  std::vector<KeyChecksum> sample(all.begin(), all.begin() + 5);
  // The primary has every key: the ones after the sample's last are out of range.
  ShardComparison c = CompareShard(sample, false, all, {});
  EXPECT_TRUE(c.differences.empty());
  EXPECT_EQ(c.checked, 5u);
  // Complete: the rest is missing on the standby.
  c = CompareShard(sample, true, all, {});
  EXPECT_EQ(c.differences.size(), 15u);
  // A key inside the range missing on the standby is found.
  std::vector<KeyChecksum> holed = sample;
  holed.erase(holed.begin() + 2);
  c = CompareShard(holed, false, all, {});
  ASSERT_EQ(c.differences.size(), 1u);
  EXPECT_EQ(c.differences[0].key, sample[2].key);
  EXPECT_EQ(c.differences[0].verdict, Verdict::kMissingOnStandby);
}

TEST(CollectTouched, KeysAndSegmentOps) {
  std::vector<tandem::v1::OpLogEntry> entries(3);
  entries[0].set_op_type(tandem::v1::PUT_START);
  entries[0].set_object_key("x");
  entries[1].set_op_type(tandem::v1::EVICTION);
  tandem::v1::KeyListEffect keys;
  keys.add_keys("y");
  keys.add_keys("z");
  keys.SerializeToString(entries[1].mutable_payload());
  entries[2].set_op_type(tandem::v1::DIGEST);
  TouchedKeys t;
  CollectTouched(entries, &t);
  EXPECT_FALSE(t.all);
  EXPECT_TRUE(t.Contains("x") && t.Contains("y") && t.Contains("z"));
  EXPECT_FALSE(t.Contains("w"));
  entries.resize(1);
  entries[0].set_op_type(tandem::v1::UNMOUNT_SEGMENT);
  CollectTouched(entries, &t);
  EXPECT_TRUE(t.all);
}

TEST(ShardSelector, RoundRobinCoversEveryShardAndPriorityFirst) {
  EXPECT_EQ(ShardsPerRound(1024, 0.1), 103);
  EXPECT_EQ(ShardsPerRound(1024, 1.0), 1024);
  EXPECT_EQ(ShardsPerRound(1024, 0.0), 1);
  EXPECT_EQ(ShardsPerRound(1024, 5.0), 1024);
  ShardSelector s(10);
  std::vector<int> seen;
  for (int round = 0; round < 4; ++round) {
    auto next = s.Next(3, {});
    seen.insert(seen.end(), next.begin(), next.end());
  }
  std::vector<int> expected = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1};
  EXPECT_EQ(seen, expected);
  auto next = s.Next(3, {7, 7, 2});
  EXPECT_EQ(next, (std::vector<int>{7, 2, 3, 4}));  // 2 is both: once; the cursor moved 3
}

// ---- MetaStore support ----

class NullSink : public meta::EntrySink {
 public:
  Status Append(tandem::v1::OpLogEntry&) override {
    return Status(ErrorCode::kNotLeader, "replica");
  }
};

struct Leader {
  Leader()
      : log(oplog::LogBufferOptions{}), sequencer(&log, 1, 1), store(meta::Options{}, &sequencer) {}
  void Mount() {
    meta::SegmentSpec spec{"seg", "seg", 0x100000000ull, 1ull << 30, "10.0.0.1:1"};
    ASSERT_TRUE(store.MountSegment(spec, "", 1).ok());
  }
  void Put(const std::string& key, uint64_t size = 4096) {
    meta::PutStartArgs args;
    args.key = key;
    args.value_size = size;
    args.client_id = "c";
    ASSERT_TRUE(store.PutStart(args, 1).ok());
    ASSERT_TRUE(store.PutEnd(key, "c", 1).ok());
  }
  oplog::LogBuffer log;
  oplog::Sequencer sequencer;
  MetaStore store;
};

// Keys landing in one shard, found by trying names.
std::vector<std::string> KeysInShard(int shard, int n) {
  std::vector<std::string> keys;
  for (int i = 0; static_cast<int>(keys.size()) < n && i < 10000000; ++i) {
    std::string k = "k" + std::to_string(i);
    if (MetaStore::ShardOf(k) == shard) keys.push_back(k);
  }
  return keys;
}

TEST(MetaStoreVerification, ShardKeysOrderAfterAndLimit) {
  Leader l;
  l.Mount();
  auto keys = KeysInShard(5, 30);
  for (const auto& k : keys) l.Put(k);
  auto all = l.store.ShardKeys(5, "", 1000);
  ASSERT_EQ(all.size(), 30u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return MetaStore::VerifyOrderLess(a.key, b.key);
  }));
  for (const auto& k : all) EXPECT_EQ(l.store.KeyChecksumOf(k.key), k.checksum);
  auto first = l.store.ShardKeys(5, "", 10);
  EXPECT_EQ(first, std::vector<KeyChecksum>(all.begin(), all.begin() + 10));
  auto next = l.store.ShardKeys(5, first.back().key, 10);
  EXPECT_EQ(next, std::vector<KeyChecksum>(all.begin() + 10, all.begin() + 20));
  EXPECT_TRUE(l.store.ShardKeys(6, "", 10).empty());
  // A bounded range (the primary answering one standby page): (after, up_to], inclusive end.
  auto range = l.store.ShardKeys(5, all[4].key, SIZE_MAX, all[14].key);
  EXPECT_EQ(range, std::vector<KeyChecksum>(all.begin() + 5, all.begin() + 15));
  auto from_start = l.store.ShardKeys(5, "", SIZE_MAX, all[2].key);
  EXPECT_EQ(from_start, std::vector<KeyChecksum>(all.begin(), all.begin() + 3));
  EXPECT_TRUE(l.store.ShardKeys(5, all[14].key, SIZE_MAX, all[14].key).empty());
  EXPECT_EQ(l.store.ShardKeys(5, all[9].key, 2, all[20].key),
            std::vector<KeyChecksum>(all.begin() + 10, all.begin() + 12));
}

TEST(MetaStoreVerification, RepairsAreCompareAndSetAndKeepSpaceConsistent) {
  Leader l;
  l.Mount();
  l.Put("a");
  l.Put("b");
  const uint64_t digest = l.store.StateDigest();
  uint64_t sum_a = 0;
  auto rec = l.store.GetObjectRecord("a", &sum_a);
  ASSERT_TRUE(rec.has_value());
  // Change a replica's offset; a stale expected checksum changes nothing.
  tandem::v1::ObjectRecord moved = *rec;
  moved.mutable_replicas(0)->set_offset((1ull << 30) - 8192);
  EXPECT_EQ(l.store.RepairUpsert(moved, sum_a + 1, 2).code(), ErrorCode::kInvalidState);
  ASSERT_TRUE(l.store.RepairUpsert(moved, sum_a, 2).ok());
  EXPECT_NE(l.store.StateDigest(), digest);
  // Overlapping b's replica does not fit: nothing changes.
  auto rec_b = l.store.GetObjectRecord("b");
  tandem::v1::ObjectRecord clash = *rec;
  clash.mutable_replicas(0)->set_offset(rec_b->replicas(0).offset());
  EXPECT_EQ(l.store.RepairUpsert(clash, l.store.KeyChecksumOf("a"), 2).code(),
            ErrorCode::kInternal);
  // Back to the original.
  ASSERT_TRUE(l.store.RepairUpsert(*rec, l.store.KeyChecksumOf("a"), 2).ok());
  EXPECT_EQ(l.store.StateDigest(), digest);
  // Delete and re-create.
  ASSERT_TRUE(l.store.RepairDelete("a", sum_a).ok());
  EXPECT_FALSE(l.store.KeyChecksumOf("a").has_value());
  ASSERT_TRUE(l.store.RepairUpsert(*rec, std::nullopt, 2).ok());
  EXPECT_EQ(l.store.StateDigest(), digest);
  EXPECT_EQ(l.store.GetStats().bytes_used, 2u * 4096u);
}

TEST(MetaStoreVerification, DigestEntryChangesNothingAndDetectsDivergenceOnApply) {
  Leader l;
  l.Mount();
  for (int i = 0; i < 50; ++i) l.Put("key-" + std::to_string(i));
  const uint64_t digest = l.store.StateDigest();
  auto seq = l.store.AppendDigest(5);
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(seq.value(), l.store.applied_seq());
  EXPECT_EQ(l.store.StateDigest(), digest);
  EXPECT_TRUE(l.store.TakeDigestMismatches().empty());
  EXPECT_EQ(l.store.GetDigestCheckStats().checks, 1u);

  // A replica store fed the same log, with one key dropped before the DIGEST entry.
  NullSink sink;
  MetaStore replica(meta::Options{}, &sink);
  auto entries = l.log.EntriesSince(0, 1000);
  ASSERT_TRUE(entries.ok());
  for (const auto& e : entries.value()) {
    if (e.op_type() == tandem::v1::DIGEST) {
      ASSERT_TRUE(replica.RepairDelete("key-7", replica.KeyChecksumOf("key-7")).ok());
    }
    ASSERT_TRUE(replica.Apply(e).ok());
  }
  bool segments = true;
  auto shards = replica.TakeDigestMismatches(&segments);
  EXPECT_EQ(shards, std::vector<int>{MetaStore::ShardOf("key-7")});
  EXPECT_FALSE(segments);
  EXPECT_TRUE(replica.TakeDigestMismatches().empty());  // taken
  EXPECT_EQ(replica.GetDigestCheckStats().mismatched_shards, 1u);
}

TEST(AnswerVerify, GapAboveThresholdAndMaxRepairsNeedFullSync) {
  Leader l;
  l.Mount();
  for (int i = 0; i < 20; ++i) l.Put("key-" + std::to_string(i));
  tandem::v1::VerifyRequest req;
  req.set_applied_seq(l.store.applied_seq());
  auto* shard = req.add_shards();
  shard->set_shard(static_cast<uint32_t>(MetaStore::ShardOf("key-3")));
  shard->set_complete(true);  // the standby has nothing there: every key is missing on it
  AnswerLimits limits;
  tandem::v1::VerifyResponse resp;
  ASSERT_TRUE(AnswerVerify(req, l.store, l.log, limits, &resp).ok());
  EXPECT_FALSE(resp.need_full_sync());
  ASSERT_GE(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).verdict(), tandem::v1::VERIFY_MISSING_ON_STANDBY);
  EXPECT_TRUE(resp.results(0).has_record());
  limits.max_repairs = 0;
  ASSERT_TRUE(AnswerVerify(req, l.store, l.log, limits, &resp).ok());
  EXPECT_TRUE(resp.need_full_sync());
  // Behind by more than the threshold.
  limits = AnswerLimits{};
  limits.seq_diff_threshold = 5;
  req.set_applied_seq(l.store.applied_seq() - 10);
  ASSERT_TRUE(AnswerVerify(req, l.store, l.log, limits, &resp).ok());
  EXPECT_TRUE(resp.need_full_sync());
  EXPECT_NE(resp.reason().find("behind"), std::string::npos);
  // Within the threshold, the keys changed since are skipped (key-19 was the last put).
  limits.seq_diff_threshold = 1000;
  shard->set_shard(static_cast<uint32_t>(MetaStore::ShardOf("key-19")));
  ASSERT_TRUE(AnswerVerify(req, l.store, l.log, limits, &resp).ok());
  EXPECT_FALSE(resp.need_full_sync());
  EXPECT_GT(resp.keys_skipped(), 0u);
  // A shard out of range is a bad request.
  shard->set_shard(5000);
  EXPECT_EQ(AnswerVerify(req, l.store, l.log, limits, &resp).code(), ErrorCode::kInvalidParams);
}

}  // namespace
}  // namespace tandem::verification
