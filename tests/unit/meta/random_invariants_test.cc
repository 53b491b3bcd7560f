// Randomized sequences of every operation over a few segments, keys and clients (fixed seeds).
// After every step: space accounting is exact and free of overlaps, replicas sit on distinct
// mounted segments, no leased object disappeared (except with its segment); at the end of each
// sequence a standby fed the log holds the same state, and an image of it loads.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "meta/meta_store.h"
#include "test_support.h"

namespace tandem::meta::testing {
namespace {

constexpr int kSeeds = 200;
constexpr int kSteps = 300;

class RandomDriver {
 public:
  RandomDriver(uint32_t seed, MetaStore& store) : rng_(seed), store_(store) {}

  std::string Pick(const char* prefix, int n) { return prefix + std::to_string(rng_() % n); }
  std::string Client() { return rng_() % 4 == 0 ? std::string() : Pick("cl", 3); }

  // Runs one random operation at `now`; returns its name and whether it may drop leased objects.
  std::pair<std::string, bool> Step(uint64_t now) {
    const int dice = rng_() % 100;
    const std::string key = Pick("k", 24);
    Status s;
    if (dice < 5) {
      s = store_.MountSegment(Seg(Pick("s", 6), 100 + rng_() % 900), Client(), now);
      return Check("mount", s, false);
    }
    if (dice < 8) return Check("unmount", store_.UnmountSegment(Pick("s", 6), Client(), now), true);
    if (dice < 33) {
      std::string preferred = rng_() % 5 == 0 ? Pick("s", 6) : "";
      std::string client = Pick("cl", 2);
      PutStartArgs args = Put(key, 1 + rng_() % 200, rng_() % 4, client);
      args.preferred_segment = preferred;
      args.soft_pin = rng_() % 5 == 0;
      return Check("put_start", store_.PutStart(args, now).status(), false);
    }
    if (dice < 50) return Check("put_end", store_.PutEnd(key, Pick("cl", 2), now), false);
    if (dice < 55) return Check("put_revoke", store_.PutRevoke(key, Pick("cl", 2), now), false);
    if (dice < 70) return Check("get", store_.GetReplicaList(key, now).status(), false);
    if (dice < 78) return Check("remove", store_.Remove(key, now), false);
    if (dice < 79) {
      store_.RemoveAll(now);
      return {"remove_all", false};
    }
    if (dice < 87) return Check("ping", store_.Ping(Pick("cl", 3), now), false);
    if (dice < 90) {
      store_.ExpireClients(now);
      return {"expire", true};
    }
    if (dice < 93) {
      store_.ReapStalePuts(now);
      return {"reap", false};
    }
    if (dice < 99) {
      store_.EvictIfNeeded(now);
      return {"evict", false};
    }
    store_.RefreshSoftState(now);
    return {"refresh", false};
  }

  uint64_t NextTime(uint64_t now) { return now + rng_() % 200; }

 private:
  std::pair<std::string, bool> Check(const char* name, const Status& s, bool drops_leased) {
    EXPECT_NE(s.code(), ErrorCode::kInternal) << name << ": " << s.ToString();
    return {name, drops_leased};
  }

  std::mt19937 rng_;
  MetaStore& store_;
};

Options RandomOptions() {
  Options options;
  options.lease_ttl_ms = 1000;
  options.soft_pin_ttl_ms = 5000;
  options.put_timeout_ms = 2000;
  options.client_ttl_ms = 3000;
  options.eviction_high_watermark = 0.7;
  options.eviction_ratio = 0.2;
  options.max_replicas = 4;
  return options;
}

// Keys of COMPLETE objects whose read lease is still running at `now`.
std::vector<std::string> Leased(const std::vector<ObjectInfo>& objects, uint64_t now) {
  std::vector<std::string> keys;
  for (const ObjectInfo& o : objects) {
    if (o.state == ReplicaState::kComplete && o.lease_deadline_ms > now) keys.push_back(o.key);
  }
  return keys;
}

TEST(RandomInvariantsTest, EveryStepKeepsTheInvariantsAndEverySequenceReplays) {
  const Options options = RandomOptions();
  std::map<int, uint64_t> entries_by_type;
  for (uint32_t seed = 1; seed <= kSeeds; ++seed) {
    RecordingSink sink;
    MetaStore store(options, &sink);
    RandomDriver driver(seed, store);
    uint64_t now = 0;
    std::vector<ObjectInfo> objects;  // as of the end of the previous step
    for (int step = 0; step < kSteps; ++step) {
      now = driver.NextTime(now);
      const std::vector<std::string> leased = Leased(objects, now);
      auto [op, drops_leased] = driver.Step(now);
      ASSERT_TRUE(CheckInvariants(store, &objects))
          << "seed " << seed << " step " << step << " " << op;
      if (!drops_leased) {
        for (const std::string& key : leased) {
          ASSERT_TRUE(store.ExistKey(key))
              << "seed " << seed << " step " << step << " " << op << " dropped leased " << key;
        }
      }
    }
    RefusingSink refusing;
    std::unique_ptr<MetaStore> standby = Replay(sink.entries(), options, &refusing);
    ASSERT_EQ(standby->StateDigest(), store.StateDigest()) << "seed " << seed;
    ASSERT_EQ(DumpState(*standby), DumpState(store)) << "seed " << seed;
    ASSERT_EQ(standby->applied_seq(), store.applied_seq()) << "seed " << seed;
    // The incrementally kept digest equals one rebuilt from scratch (LoadImage checks it).
    std::unique_ptr<StateImage> image = store.CaptureImage();
    std::vector<tandem::v1::ObjectChunk> chunks;
    image->ForEachChunk(64, [&](const tandem::v1::ObjectChunk& c) {
      chunks.push_back(c);
      return true;
    });
    MetaStore loaded(options, &refusing);
    size_t next = 0;
    Status load = loaded.LoadImage(
        image->header(),
        [&](tandem::v1::ObjectChunk* out) {
          if (next == chunks.size()) return false;
          *out = chunks[next++];
          return true;
        },
        now);
    ASSERT_TRUE(load.ok()) << "seed " << seed << ": " << load.ToString();
    for (const OpLogEntry& e : sink.entries()) ++entries_by_type[e.op_type()];
  }
  // The sequences must reach every kind of change for the checks above to mean anything.
  for (int t = OpType::PUT_START; t <= OpType::CLIENT_EXPIRED; ++t) {
    EXPECT_GT(entries_by_type[t], 10u) << tandem::v1::OpType_Name(static_cast<OpType>(t));
  }
}

}  // namespace
}  // namespace tandem::meta::testing
