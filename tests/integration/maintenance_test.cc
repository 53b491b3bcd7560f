// The master's timers, observed from outside with short settings: stale puts are reaped, silent
// clients lose their segments (and the objects on them), and eviction frees space at the high
// watermark without touching leased, soft-pinned or unfinished objects. Every wait is bounded.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "master_fixture.h"

namespace tandem::testing {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

bool HasSegment(const MasterStatus& st, const std::string& name) {
  for (const Segment& s : st.segments) {
    if (s.name == name) return true;
  }
  return false;
}

class PutTimeoutTest : public MasterTest {
 protected:
  std::vector<std::string> MasterArgs() const override {
    return {"--put-timeout-ms", "300", "--maintenance-interval-ms", "50"};
  }
};

TEST_F(PutTimeoutTest, AnUnfinishedPutIsDiscardedAndItsSpaceReclaimed) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  ASSERT_OK(c->PutStart("done", 100));
  ASSERT_OK(c->PutEnd("done"));
  ASSERT_OK(c->PutStart("stale", 1000));
  EXPECT_EQ(MasterState().bytes_used, 1100u);
  EXPECT_TRUE(WaitUntil([&] { return !c->ExistKey("stale").value(); }, 60));
  EXPECT_EQ(MasterState().bytes_used, 100u);
  EXPECT_CODE(c->PutEnd("stale"), ErrorCode::kObjectNotFound);
  EXPECT_TRUE(c->ExistKey("done").value()) << "a completed object was reaped";
}

class ClientTtlTest : public MasterTest {
 protected:
  std::vector<std::string> MasterArgs() const override {
    return {"--client-ttl-ms", "800", "--maintenance-interval-ms", "50"};
  }
};

TEST_F(ClientTtlTest, ASilentClientLosesItsSegmentsAndTheirObjects) {
  auto silent = NewClient("silent-node"), alive = NewClient("alive-node");
  auto writer = NewClient("writer");
  ASSERT_OK(silent->MountSegment(MakeSegment("silent-seg", kMiB)));
  ASSERT_OK(alive->MountSegment(MakeSegment("alive-seg", kMiB)));
  ASSERT_OK(NewClient()->MountSegment(MakeSegment("static-seg", kMiB)));
  ASSERT_OK(writer->PutStart("on-silent", 100, PutOptions{1, "silent-seg", false}));
  ASSERT_OK(writer->PutEnd("on-silent"));
  ASSERT_OK(writer->PutStart("on-alive", 100, PutOptions{1, "alive-seg", false}));
  ASSERT_OK(writer->PutEnd("on-alive"));
  ASSERT_OK(writer->PutStart("on-both", 100, PutOptions{2, "silent-seg", false}));
  ASSERT_OK(writer->PutEnd("on-both"));

  std::atomic<bool> stop{false};
  std::thread heartbeat([&] {
    while (!stop) {
      alive->Ping();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const bool expired = WaitUntil([&] { return !HasSegment(MasterState(), "silent-seg"); }, 100);
  stop = true;
  heartbeat.join();
  ASSERT_TRUE(expired) << "silent client kept its segment";

  MasterStatus st = MasterState();
  EXPECT_TRUE(HasSegment(st, "alive-seg"));
  EXPECT_TRUE(HasSegment(st, "static-seg")) << "a static segment expired";
  EXPECT_FALSE(writer->ExistKey("on-silent").value());
  EXPECT_TRUE(writer->ExistKey("on-alive").value());
  auto both = writer->GetReplicaList("on-both");  // lost one replica, kept the other
  ASSERT_OK(both);
  ASSERT_EQ(both->replicas.size(), 1u);
  EXPECT_NE(both->replicas[0].segment_name, "silent-seg");
  EXPECT_CODE(silent->Ping(), ErrorCode::kClientNotFound);
  ASSERT_OK(alive->Ping());
}

class EvictionTest : public MasterTest {
 protected:
  std::vector<std::string> MasterArgs() const override {
    return {"--eviction-high-watermark", "0.5", "--eviction-ratio", "0.2",
            "--maintenance-interval-ms", "50"};
  }
};

TEST_F(EvictionTest, HighWatermarkEvictsOnlyWhatMayBeEvicted) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("small", kMiB)));
  auto put = [&](const std::string& key, bool pin) {
    ASSERT_OK(c->PutStart(key, 64 * kKiB, PutOptions{1, "", pin}));
    ASSERT_OK(c->PutEnd(key));
  };
  put("leased", false);
  ASSERT_OK(c->GetReplicaList("leased"));  // 5 s read lease, taken before any eviction
  put("pinned", true);
  for (int i = 0; i < 8; ++i) put("o" + std::to_string(i), false);
  ASSERT_OK(c->PutStart("pending", 64 * kKiB));

  ASSERT_TRUE(WaitUntil(
      [&] {
        MasterStatus st = MasterState();
        return st.bytes_used <= st.bytes_total / 2 && st.object_count < 11;
      },
      60))
      << "no eviction below the watermark";
  EXPECT_TRUE(c->ExistKey("pinned").value());
  EXPECT_TRUE(c->ExistKey("leased").value());
  EXPECT_TRUE(c->ExistKey("pending").value());
  int evicted = 0;
  for (int i = 0; i < 8; ++i) evicted += c->ExistKey("o" + std::to_string(i)).value() ? 0 : 1;
  EXPECT_GE(evicted, 1);
}

}  // namespace
}  // namespace tandem::testing
