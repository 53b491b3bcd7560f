// Batch RPCs with mixed per-key results, and the pipelined Stream path under concurrency,
// against a real standalone master.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "master_fixture.h"

namespace tandem::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class BatchTest : public MasterTest {
 protected:
  std::vector<std::string> MasterArgs() const override {
    return {"--lease-ttl-default-ms", "2000"};
  }
  void SetUp() override {
    MasterTest::SetUp();
    writer_ = NewClient("writer");
    ASSERT_OK(writer_->MountSegment(MakeSegment("s1", kMiB)));
    ASSERT_OK(writer_->MountSegment(MakeSegment("s2", kMiB)));
  }
  void TearDown() override {
    writer_.reset();  // a connected client delays the master's graceful stop
    MasterTest::TearDown();
  }
  std::unique_ptr<Client> writer_;
};

std::vector<ErrorCode> Codes(const std::vector<Status>& statuses) {
  std::vector<ErrorCode> out;
  for (const auto& s : statuses) out.push_back(s.code());
  return out;
}

TEST_F(BatchTest, BatchPutStartReportsEachKey) {
  ASSERT_OK(writer_->PutStart("exists", 10));
  std::vector<PutItem> items = {{"a", 100, {}},
                                {"exists", 100, {}},
                                {"", 100, {}},
                                {"zero", 0, {}},
                                {"two", 200, PutOptions{2, "", false}},
                                {"three", 200, PutOptions{3, "", false}},
                                {"huge", 4 * kMiB, {}}};
  auto results = writer_->BatchPutStart(items);
  ASSERT_OK(results);
  ASSERT_EQ(results->size(), items.size());
  const auto& r = results.value();
  ASSERT_OK(r[0]);
  EXPECT_EQ(r[0]->size(), 1u);
  EXPECT_CODE(r[1], ErrorCode::kObjectAlreadyExists);
  EXPECT_CODE(r[2], ErrorCode::kInvalidParams);
  EXPECT_CODE(r[3], ErrorCode::kInvalidParams);
  ASSERT_OK(r[4]);
  EXPECT_EQ(r[4]->size(), 2u);
  EXPECT_CODE(r[5], ErrorCode::kInvalidParams);
  EXPECT_CODE(r[6], ErrorCode::kNoAvailableSpace);
  EXPECT_EQ(MasterState().bytes_used, 10u + 100u + 400u);
}

TEST_F(BatchTest, BatchPutEndAndRevokeReportEachKey) {
  for (const char* key : {"a", "b", "c", "done"}) ASSERT_OK(writer_->PutStart(key, 10));
  ASSERT_OK(writer_->PutEnd("done"));
  auto other = NewClient("other");
  auto not_owner = other->BatchPutEnd(std::vector<std::string>{"a", "b"});
  ASSERT_OK(not_owner);
  EXPECT_EQ(Codes(not_owner.value()),
            (std::vector<ErrorCode>{ErrorCode::kNotOwner, ErrorCode::kNotOwner}));
  auto ended = writer_->BatchPutEnd(std::vector<std::string>{"a", "missing", "done", "", "b"});
  ASSERT_OK(ended);
  EXPECT_EQ(
      Codes(ended.value()),
      (std::vector<ErrorCode>{ErrorCode::kOk, ErrorCode::kObjectNotFound, ErrorCode::kInvalidState,
                              ErrorCode::kInvalidParams, ErrorCode::kOk}));
  auto revoked = writer_->BatchPutRevoke(std::vector<std::string>{"c", "a", "missing"});
  ASSERT_OK(revoked);
  EXPECT_EQ(Codes(revoked.value()),
            (std::vector<ErrorCode>{ErrorCode::kOk, ErrorCode::kInvalidState,
                                    ErrorCode::kObjectNotFound}));
  EXPECT_FALSE(writer_->ExistKey("c").value());
  EXPECT_EQ(MasterState().object_count, 3u);
}

TEST_F(BatchTest, BatchGetExistAndRemoveReportEachKey) {
  for (const char* key : {"a", "b", "pending"}) ASSERT_OK(writer_->PutStart(key, 10));
  ASSERT_OK(writer_->BatchPutEnd(std::vector<std::string>{"a", "b"}));
  auto lists = writer_->BatchGetReplicaList(std::vector<std::string>{"a", "missing", "pending"});
  ASSERT_OK(lists);
  ASSERT_EQ(lists->size(), 3u);
  ASSERT_OK(lists.value()[0]);
  EXPECT_TRUE(lists.value()[0]->replicas[0].complete);
  EXPECT_EQ(lists.value()[0]->lease_ttl_ms, 2000u);
  EXPECT_CODE(lists.value()[1], ErrorCode::kObjectNotFound);
  EXPECT_CODE(lists.value()[2], ErrorCode::kObjectNotReady);

  auto exists = writer_->BatchExistKey(std::vector<std::string>{"a", "missing", "pending", ""});
  ASSERT_OK(exists);
  ASSERT_EQ(exists->size(), 4u);
  EXPECT_TRUE(exists.value()[0].value());
  EXPECT_FALSE(exists.value()[1].value());
  EXPECT_TRUE(exists.value()[2].value());
  EXPECT_FALSE(exists.value()[3].ok() && exists.value()[3].value());

  // "a" is leased by the get above, "b" is not.
  auto removed = writer_->BatchRemove(std::vector<std::string>{"a", "b", "pending", "missing"});
  ASSERT_OK(removed);
  EXPECT_EQ(Codes(removed.value()),
            (std::vector<ErrorCode>{ErrorCode::kObjectHasLease, ErrorCode::kOk,
                                    ErrorCode::kInvalidState, ErrorCode::kObjectNotFound}));
  EXPECT_TRUE(writer_->ExistKey("a").value());
  EXPECT_FALSE(writer_->ExistKey("b").value());
}

TEST_F(BatchTest, EmptyBatchesAnswerEmpty) {
  std::vector<std::string> none;
  EXPECT_TRUE(writer_->BatchExistKey(none)->empty());
  EXPECT_TRUE(writer_->BatchRemove(none)->empty());
  EXPECT_TRUE(writer_->BatchPutStart(std::vector<PutItem>{})->empty());
}

TEST_F(BatchTest, ABatchOf2000KeysRoundTrips) {
  std::vector<PutItem> items;
  std::vector<std::string> keys;
  for (int i = 0; i < 2000; ++i) {
    keys.push_back("bulk-" + std::to_string(i));
    items.push_back({keys.back(), 64, {}});
  }
  auto started = writer_->BatchPutStart(items);
  ASSERT_OK(started);
  for (const auto& r : started.value()) ASSERT_OK(r);
  auto ended = writer_->BatchPutEnd(keys);
  ASSERT_OK(ended);
  for (const auto& s : ended.value()) ASSERT_OK(s);
  auto lists = writer_->BatchGetReplicaList(keys);
  ASSERT_OK(lists);
  for (const auto& l : lists.value()) ASSERT_OK(l);
  EXPECT_EQ(MasterState().object_count, 2000u);
}

class StreamTest : public MasterTest {};

// 8 threads x 500 pipelined ops on one shared client; each thread checks its own answers.
TEST_F(StreamTest, EightThreadsShareTheStreamsWithoutMixingAnswers) {
  ASSERT_OK(NewClient()->MountSegment(MakeSegment("seg", 64 * kMiB)));
  auto client = NewClient("writer", /*streams=*/true);
  std::atomic<int> failures{0};
  std::vector<std::string> errors(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto fail = [&](const std::string& what) {
        if (failures++ == 0) errors[t] = what;
      };
      for (int i = 0; i < 125; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        const uint64_t size = 1 + t * 1000 + i;
        auto started = client->PutStart(key, size);
        if (!started.ok() || started->size() != 1) fail("start " + key);
        if (!client->PutEnd(key).ok()) fail("end " + key);
        auto list = client->GetReplicaList(key);
        if (!list.ok() || list->replicas.size() != 1 || list->replicas[0].size != size) {
          fail("get " + key + ": " + list.status().ToString());
        }
        auto exists = client->ExistKey(key);
        if (!exists.ok() || !exists.value()) fail("exist " + key);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << errors[0] << errors[1] << errors[2] << errors[3];
  EXPECT_EQ(MasterState().object_count, 1000u);
  // Errors travel the stream typed, like unary ones.
  EXPECT_CODE(client->PutEnd("t0-0"), ErrorCode::kInvalidState);
  EXPECT_CODE(client->PutRevoke("missing"), ErrorCode::kObjectNotFound);
  EXPECT_CODE(client->Remove("t0-0"), ErrorCode::kObjectHasLease);
  EXPECT_CODE(NewClient("other", true)->PutEnd("x"), ErrorCode::kObjectNotFound);
}

TEST_F(StreamTest, StreamsReopenAfterTheMasterRestarts) {
  auto client = NewClient("writer", /*streams=*/true, /*timeout_ms=*/2000);
  ASSERT_OK(client->ExistKey("k"));
  master_->process()->Signal(SIGKILL);
  ASSERT_TRUE(master_->process()->WaitExit(std::chrono::seconds(5)));
  std::string error;
  ASSERT_TRUE(master_->Restart(&error)) << error;
  // The old streams died with the old process: calls fail UNAVAILABLE until the client has
  // reconnected (bounded by its reconnect backoff), then every call works again.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = client->ExistKey("k");
        EXPECT_TRUE(r.ok() || r.status().code() == ErrorCode::kUnavailable);
        return r.ok();
      },
      60, std::chrono::milliseconds(50)));
  for (int i = 0; i < 100; ++i) ASSERT_OK(client->ExistKey("k"));
  ASSERT_OK(client->ExistKey("k"));
}

}  // namespace
}  // namespace tandem::testing
