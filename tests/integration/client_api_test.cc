// Every RPC of tandem.v1.Master through tandem::Client against a real standalone master: the
// happy path, each domain error reachable in standalone mode, and bad input that must be refused
// with a typed error without changing state.
#include <signal.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "master_fixture.h"

namespace tandem::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class ClientApiTest : public MasterTest {
 protected:
  // Short leases so tests can wait one out.
  std::vector<std::string> MasterArgs() const override { return {"--lease-ttl-default-ms", "500"}; }
};

TEST_F(ClientApiTest, SegmentsAreMountedListedAndUnmounted) {
  auto owner = NewClient("node-a");
  ASSERT_OK(NewClient()->MountSegment(MakeSegment("static-0", 4 * kMiB, 1 << 30)));
  ASSERT_OK(owner->MountSegment(MakeSegment("owned-0", 8 * kMiB)));
  MasterStatus st = MasterState();
  EXPECT_EQ(st.segment_count, 2u);
  EXPECT_EQ(st.bytes_total, 12 * kMiB);
  ASSERT_EQ(st.segments.size(), 2u);
  for (const Segment& s : st.segments) {
    EXPECT_TRUE(s.name == "static-0" || s.name == "owned-0") << s.name;
    if (s.name == "static-0") {
      EXPECT_EQ(s.base, 1u << 30);
      EXPECT_EQ(s.endpoint, "static-0.node:7000");
    }
  }
  ASSERT_OK(owner->UnmountSegment("owned-0"));
  EXPECT_EQ(MasterState().segment_count, 1u);
}

TEST_F(ClientApiTest, MountRefusesBadAndDuplicateSegments) {
  auto c = NewClient();
  EXPECT_CODE(c->MountSegment(MakeSegment("", kMiB)), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->MountSegment(MakeSegment("zero", 0)), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->MountSegment(MakeSegment("absurd", 1ull << 62)), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->MountSegment(MakeSegment("wraps", kMiB, UINT64_MAX - 10)),
              ErrorCode::kInvalidParams);
  EXPECT_CODE(c->MountSegment(MakeSegment(std::string(5000, 'n'), kMiB)),
              ErrorCode::kInvalidParams);
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  EXPECT_CODE(c->MountSegment(MakeSegment("seg", kMiB)), ErrorCode::kSegmentAlreadyExists);
  Segment same_id{"seg", "other-name", 0, kMiB, ""};
  EXPECT_CODE(c->MountSegment(same_id), ErrorCode::kSegmentAlreadyExists);
  MasterStatus st = MasterState();
  EXPECT_EQ(st.segment_count, 1u);
  EXPECT_EQ(st.bytes_total, kMiB);
}

TEST_F(ClientApiTest, UnmountChecksExistenceAndOwner) {
  auto a = NewClient("node-a"), b = NewClient("node-b");
  ASSERT_OK(a->MountSegment(MakeSegment("a-seg", kMiB)));
  EXPECT_CODE(a->UnmountSegment("nope"), ErrorCode::kSegmentNotFound);
  EXPECT_CODE(a->UnmountSegment(""), ErrorCode::kInvalidParams);
  EXPECT_CODE(b->UnmountSegment("a-seg"), ErrorCode::kNotOwner);
  EXPECT_EQ(MasterState().segment_count, 1u);
  ASSERT_OK(NewClient()->UnmountSegment("a-seg"));  // the operator (no client id) may
  EXPECT_CODE(a->UnmountSegment("a-seg"), ErrorCode::kSegmentNotFound);
}

TEST_F(ClientApiTest, PutLifecycleFromProcessingToReadable) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("seg", 4 * kMiB, 0x10000)));
  auto replicas = c->PutStart("obj", 4096);
  ASSERT_OK(replicas);
  ASSERT_EQ(replicas->size(), 1u);
  const Replica& r = replicas.value()[0];
  EXPECT_EQ(r.segment_name, "seg");
  EXPECT_EQ(r.segment_id, "seg");
  EXPECT_EQ(r.endpoint, "seg.node:7000");
  EXPECT_EQ(r.size, 4096u);
  EXPECT_EQ(r.address, 0x10000 + r.offset);
  EXPECT_FALSE(r.complete);
  EXPECT_TRUE(c->ExistKey("obj").value());
  EXPECT_CODE(c->GetReplicaList("obj"), ErrorCode::kObjectNotReady);
  ASSERT_OK(c->PutEnd("obj"));
  auto list = c->GetReplicaList("obj");
  ASSERT_OK(list);
  ASSERT_EQ(list->replicas.size(), 1u);
  EXPECT_TRUE(list->replicas[0].complete);
  EXPECT_EQ(list->replicas[0].offset, r.offset);
  EXPECT_EQ(list->lease_ttl_ms, 500u);
  MasterStatus st = MasterState();
  EXPECT_EQ(st.object_count, 1u);
  EXPECT_EQ(st.bytes_used, 4096u);
  EXPECT_FALSE(c->ExistKey("other").value());
}

// Every OK answer names the node and epoch that served it (unary and stream); failures don't.
TEST_F(ClientApiTest, SuccessfulCallsSayWhichNodeServedThem) {
  const std::string node_id = MasterState().node_id;
  ASSERT_FALSE(node_id.empty());
  for (bool streams : {false, true}) {
    SCOPED_TRACE(streams ? "stream" : "unary");
    auto c = NewClient("served-" + std::to_string(streams), streams);
    ASSERT_OK(c->MountSegment(MakeSegment("served-seg-" + std::to_string(streams), kMiB)));
    const std::string key = "served-obj-" + std::to_string(streams);
    ASSERT_OK(c->PutStart(key, 1024));
    ASSERT_OK(c->PutEnd(key));
    Client::ServedBy served = Client::LastServedBy();
    EXPECT_EQ(served.node_id, node_id);
    EXPECT_GE(served.epoch, 1u);
    EXPECT_CODE(c->PutEnd("no-such-key"), ErrorCode::kObjectNotFound);
    EXPECT_TRUE(Client::LastServedBy().node_id.empty());
    ASSERT_TRUE(c->ExistKey(key).value());
    EXPECT_EQ(Client::LastServedBy().node_id, node_id);
  }
  // Per thread: another thread's calls do not show here, nor ours there.
  std::thread([] { EXPECT_TRUE(Client::LastServedBy().node_id.empty()); }).join();
}

TEST_F(ClientApiTest, PutStartRefusesBadInputWithoutChangingState) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("s1", kMiB)));
  ASSERT_OK(c->MountSegment(MakeSegment("s2", kMiB)));
  ASSERT_OK(c->PutStart("taken", 100));
  const MasterStatus before = MasterState();
  EXPECT_CODE(c->PutStart("", 100), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart(std::string(5 * 1024, 'k'), 100), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart("zero", 0), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart("absurd", UINT64_MAX), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart("too-big", 2 * kMiB), ErrorCode::kNoAvailableSpace);
  EXPECT_CODE(c->PutStart("r3", 100, PutOptions{3, "", false}), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart("r99", 100, PutOptions{99, "", false}), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->PutStart("pref", 100, PutOptions{1, "nope", false}), ErrorCode::kSegmentNotFound);
  EXPECT_CODE(c->PutStart("taken", 100), ErrorCode::kObjectAlreadyExists);
  const MasterStatus after = MasterState();
  EXPECT_EQ(after.object_count, before.object_count);
  EXPECT_EQ(after.bytes_used, before.bytes_used);
  EXPECT_EQ(after.applied_seq, before.applied_seq) << "a refused request logged an entry";
  EXPECT_EQ(after.state_digest, before.state_digest);
}

TEST_F(ClientApiTest, ReplicasLandOnDistinctSegmentsAndPreferredFirst) {
  auto c = NewClient("writer");
  for (const char* name : {"s1", "s2", "s3"}) ASSERT_OK(c->MountSegment(MakeSegment(name, kMiB)));
  auto replicas = c->PutStart("three", 1000, PutOptions{3, "", false});
  ASSERT_OK(replicas);
  ASSERT_EQ(replicas->size(), 3u);
  std::set<std::string> segments;
  for (const Replica& r : replicas.value()) segments.insert(r.segment_id);
  EXPECT_EQ(segments.size(), 3u);
  auto preferred = c->PutStart("pref", 1000, PutOptions{2, "s2", false});
  ASSERT_OK(preferred);
  ASSERT_EQ(preferred->size(), 2u);
  EXPECT_EQ(preferred.value()[0].segment_id, "s2");
  EXPECT_NE(preferred.value()[1].segment_id, "s2");
  EXPECT_EQ(MasterState().bytes_used, 5000u);
}

TEST_F(ClientApiTest, OnlyTheWriterEndsOrRevokesItsPut) {
  auto writer = NewClient("writer"), other = NewClient("other");
  ASSERT_OK(writer->MountSegment(MakeSegment("seg", kMiB)));
  EXPECT_CODE(writer->PutEnd("missing"), ErrorCode::kObjectNotFound);
  EXPECT_CODE(writer->PutRevoke("missing"), ErrorCode::kObjectNotFound);
  EXPECT_CODE(writer->PutEnd(""), ErrorCode::kInvalidParams);
  ASSERT_OK(writer->PutStart("obj", 512));
  EXPECT_CODE(other->PutEnd("obj"), ErrorCode::kNotOwner);
  EXPECT_CODE(other->PutRevoke("obj"), ErrorCode::kNotOwner);
  ASSERT_OK(writer->PutEnd("obj"));
  EXPECT_CODE(writer->PutEnd("obj"), ErrorCode::kInvalidState);
  EXPECT_CODE(writer->PutRevoke("obj"), ErrorCode::kInvalidState);
  ASSERT_OK(writer->PutStart("revoked", 1024));
  EXPECT_EQ(MasterState().bytes_used, 512u + 1024u);
  ASSERT_OK(writer->PutRevoke("revoked"));
  EXPECT_FALSE(writer->ExistKey("revoked").value());
  EXPECT_EQ(MasterState().bytes_used, 512u);
}

TEST_F(ClientApiTest, RemoveWaitsForLeasesAndCompletion) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  EXPECT_CODE(c->Remove("missing"), ErrorCode::kObjectNotFound);
  EXPECT_CODE(c->Remove(""), ErrorCode::kInvalidParams);
  ASSERT_OK(c->PutStart("pending", 100));
  EXPECT_CODE(c->Remove("pending"), ErrorCode::kInvalidState);
  ASSERT_OK(c->PutStart("obj", 100));
  ASSERT_OK(c->PutEnd("obj"));
  ASSERT_OK(c->GetReplicaList("obj"));  // 500 ms read lease
  EXPECT_CODE(c->Remove("obj"), ErrorCode::kObjectHasLease);
  EXPECT_TRUE(c->ExistKey("obj").value());
  EXPECT_TRUE(WaitUntil([&] { return c->Remove("obj").ok(); }, 80, std::chrono::milliseconds(25)));
  EXPECT_FALSE(c->ExistKey("obj").value());
  EXPECT_CODE(c->GetReplicaList("obj"), ErrorCode::kObjectNotFound);
}

TEST_F(ClientApiTest, RemoveAllKeepsLeasedAndUnfinishedObjects) {
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  for (const char* key : {"a", "b", "leased"}) {
    ASSERT_OK(c->PutStart(key, 100));
    ASSERT_OK(c->PutEnd(key));
  }
  ASSERT_OK(c->PutStart("pending", 100));
  ASSERT_OK(c->GetReplicaList("leased"));
  auto result = c->RemoveAll();
  ASSERT_OK(result);
  EXPECT_EQ(result->removed, 2u);
  EXPECT_EQ(result->kept, 2u);
  EXPECT_TRUE(c->ExistKey("leased").value());
  EXPECT_TRUE(c->ExistKey("pending").value());
  EXPECT_FALSE(c->ExistKey("a").value());
  EXPECT_EQ(MasterState().object_count, 2u);
}

TEST_F(ClientApiTest, PingKnowsOnlyClientsWithSegments) {
  auto node = NewClient("node-a");
  ASSERT_OK(node->MountSegment(MakeSegment("seg", kMiB)));
  auto pong = node->Ping();
  ASSERT_OK(pong);
  EXPECT_EQ(pong->client_ttl_ms, 10000u);  // the documented default
  EXPECT_CODE(NewClient("stranger")->Ping(), ErrorCode::kClientNotFound);
  EXPECT_CODE(NewClient("")->Ping(), ErrorCode::kInvalidParams);
}

TEST_F(ClientApiTest, StatusReportsIdentityDigestAndSequence) {
  MasterStatus st = MasterState();
  EXPECT_EQ(st.node_id, "m1");
  EXPECT_FALSE(st.role.empty());
  EXPECT_EQ(st.state_digest.size(), 16u);
  auto c = NewClient("writer");
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  ASSERT_OK(c->PutStart("k", 10));
  MasterStatus later = MasterState();
  EXPECT_GE(later.applied_seq, st.applied_seq + 2);
  EXPECT_NE(later.state_digest, st.state_digest);
}

TEST_F(ClientApiTest, HugeKeyIsRefusedAndTheMasterCarriesOn) {
  auto c = NewClient("writer", /*streams=*/true);
  ASSERT_OK(c->MountSegment(MakeSegment("seg", kMiB)));
  const std::string huge(1 << 20, 'x');
  EXPECT_CODE(c->PutStart(huge, 10), ErrorCode::kInvalidParams);
  EXPECT_CODE(c->GetReplicaList(huge), ErrorCode::kInvalidParams);
  EXPECT_FALSE(c->ExistKey(huge).value());
  ASSERT_OK(c->PutStart("small", 10));
}

TEST_F(ClientApiTest, CallsFailUnavailableOnceTheMasterIsGone) {
  auto unary = NewClient("w", false, 1000), streamed = NewClient("w", true, 1000);
  ASSERT_OK(streamed->ExistKey("warm-up"));  // opens the streams
  master_->process()->Signal(SIGKILL);
  ASSERT_TRUE(master_->process()->WaitExit(std::chrono::seconds(5)));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_CODE(unary->GetStatus(), ErrorCode::kUnavailable);
  EXPECT_CODE(unary->PutEnd("k"), ErrorCode::kUnavailable);
  EXPECT_CODE(streamed->ExistKey("k"), ErrorCode::kUnavailable);
  EXPECT_CODE(streamed->GetReplicaList("k"), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace tandem::testing
