// tandem::Client against an in-process fake master: proves the stream multiplexer matches
// out-of-order responses to callers, bounds the window, fails and re-opens broken streams and
// honours deadlines, and that errors map to typed codes. The real master is covered by the
// integration tests.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem {
namespace {

using RW = grpc::ServerReaderWriter<v1::StreamResponse, v1::StreamRequest>;

void SetStatus(v1::Status* s, v1::ErrorCode code, const std::string& message) {
  s->set_code(code);
  s->set_message(message);
}

// A replica list that names the key, so callers can check they got their own answer.
void FillReplicas(const std::string& key, v1::GetReplicaListResponse* out) {
  v1::Replica* r = out->add_replicas();
  r->set_segment_name(key);
  r->set_segment_id("seg-" + key);
  r->set_size(key.size());
  r->set_status(v1::COMPLETE);
  out->set_lease_ttl_ms(5000);
}

v1::StreamResponse Answer(const v1::StreamRequest& req) {
  v1::StreamResponse resp;
  resp.set_id(req.id());
  switch (req.op_case()) {
    case v1::StreamRequest::kGetReplicaList:
      FillReplicas(req.get_replica_list().key(), resp.mutable_get_replica_list());
      break;
    case v1::StreamRequest::kExistKey:
      if (req.exist_key().key() == "mismatch") {
        resp.mutable_remove();  // a broken master answering with another op
      } else {
        resp.mutable_exist_key()->set_exists(req.exist_key().key().starts_with("yes"));
      }
      break;
    case v1::StreamRequest::kPutStart:
      resp.mutable_put_start()->add_replicas()->set_segment_name(req.put_start().key());
      break;
    case v1::StreamRequest::kPutEnd:
      SetStatus(resp.mutable_put_end()->mutable_status(), v1::NOT_OWNER, "not yours");
      break;
    case v1::StreamRequest::kPutRevoke:
      resp.mutable_put_revoke();
      break;
    default:
      resp.mutable_remove();
      break;
  }
  return resp;
}

class FakeMaster final : public v1::Master::Service {
 public:
  enum class Mode { kReverse, kSilent, kBreakFirst };
  std::atomic<Mode> mode{Mode::kReverse};
  std::atomic<int> reply_delay_ms{0};
  std::atomic<int> streams_opened{0};
  std::atomic<int> max_in_flight{0};  // per stream: requests read but not yet answered

  grpc::Status Stream(grpc::ServerContext*, RW* rw) override {
    if (++streams_opened == 1 && mode == Mode::kBreakFirst) {
      v1::StreamRequest first;
      rw->Read(&first);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "boom");
    }
    std::mutex mu;
    std::condition_variable cv;
    std::deque<v1::StreamRequest> queue;
    bool eof = false;
    int in_flight = 0;
    std::thread reader([&] {
      v1::StreamRequest req;
      while (rw->Read(&req)) {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(req);
        int now = ++in_flight, seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        cv.notify_one();
      }
      std::lock_guard<std::mutex> lock(mu);
      eof = true;
      cv.notify_one();
    });
    for (;;) {
      std::deque<v1::StreamRequest> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || eof; });
        if (eof) break;
      }
      // Let requests accumulate, then answer them newest first: responses out of order.
      std::this_thread::sleep_for(std::chrono::milliseconds(reply_delay_ms.load() + 1));
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.swap(queue);
      }
      if (mode == Mode::kSilent) continue;
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        {
          std::lock_guard<std::mutex> lock(mu);
          --in_flight;
        }
        rw->Write(Answer(*it));
      }
    }
    reader.join();
    return grpc::Status::OK;
  }

  grpc::Status GetReplicaList(grpc::ServerContext*, const v1::KeyRequest* req,
                              v1::GetReplicaListResponse* resp) override {
    FillReplicas(req->key(), resp);
    return grpc::Status::OK;
  }
  grpc::Status ExistKey(grpc::ServerContext*, const v1::KeyRequest*,
                        v1::ExistKeyResponse* resp) override {
    SetStatus(resp->mutable_status(), v1::OBJECT_NOT_FOUND, "no such key");
    return grpc::Status::OK;
  }
  grpc::Status Ping(grpc::ServerContext*, const v1::PingRequest*, v1::PingResponse* resp) override {
    SetStatus(resp->mutable_status(), v1::NOT_LEADER, "standby");
    resp->mutable_status()->set_leader_address("10.0.0.1:50051");
    return grpc::Status::OK;
  }
  grpc::Status MountSegment(grpc::ServerContext*, const v1::MountSegmentRequest*,
                            v1::MountSegmentResponse* resp) override {
    resp->mutable_status()->set_code(static_cast<v1::ErrorCode>(99));  // from a newer master
    return grpc::Status::OK;
  }
  grpc::Status BatchGetReplicaList(grpc::ServerContext*, const v1::BatchKeyRequest* req,
                                   v1::BatchGetReplicaListResponse* resp) override {
    for (int i = 0; i < req->keys_size(); ++i) {
      auto* item = resp->add_items();
      if (i % 2 == 0) {
        FillReplicas(req->keys(i), item);
      } else {
        SetStatus(item->mutable_status(), v1::OBJECT_NOT_READY, "processing");
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status BatchExistKey(grpc::ServerContext*, const v1::BatchKeyRequest*,
                             v1::BatchExistKeyResponse* resp) override {
    resp->add_items();  // always one item, whatever was asked: a broken master
    return grpc::Status::OK;
  }
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::GetStatusResponse* resp) override {
    resp->set_node_id("n1");
    resp->set_role("LEADER");
    resp->set_applied_seq(42);
    auto* seg = resp->add_segments();
    seg->set_id("s1");
    seg->set_size(1024);
    resp->set_replication_mode("sync");
    resp->add_standbys()->set_lag_entries(7);
    return grpc::Status::OK;
  }
};

class FakeMasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  ClientOptions Options(bool streams) const {
    ClientOptions o;
    o.address = "127.0.0.1:" + std::to_string(port_);
    o.use_streams = streams;
    o.timeout_ms = 3000;
    o.max_retry_ms = 0;  // each answer as the fake gave it
    return o;
  }

  FakeMaster service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(FakeMasterTest, ConcurrentCallersGetTheirOwnOutOfOrderResponses) {
  Client client(Options(true));
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        auto list = client.GetReplicaList(key);
        if (!list.ok()) {
          ++failed;
        } else if (list->replicas.size() != 1 || list->replicas[0].segment_name != key) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(service_.max_in_flight.load(), 1) << "requests were not pipelined";
  EXPECT_LE(service_.streams_opened.load(), 2);
}

TEST_F(FakeMasterTest, WindowBoundsRequestsInFlightPerStream) {
  service_.reply_delay_ms = 2;
  ClientOptions o = Options(true);
  o.stream_count = 1;
  o.stream_window = 3;
  Client client(o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) EXPECT_TRUE(client.ExistKey("yes").value());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(service_.max_in_flight.load(), 3);
  EXPECT_GE(service_.max_in_flight.load(), 2);
}

TEST_F(FakeMasterTest, EveryStreamOpCarriesItsResult) {
  Client client(Options(true));
  EXPECT_FALSE(client.ExistKey("no").value());
  auto started = client.PutStart("obj", 10);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started.value()[0].segment_name, "obj");
  EXPECT_EQ(client.PutEnd("obj").code(), ErrorCode::kNotOwner);
  EXPECT_TRUE(client.PutRevoke("obj").ok());
  EXPECT_TRUE(client.Remove("obj").ok());
  EXPECT_EQ(client.ExistKey("mismatch").status().code(), ErrorCode::kInternal);
}

TEST_F(FakeMasterTest, BrokenStreamFailsItsCallWithUnavailableAndIsReopened) {
  service_.mode = FakeMaster::Mode::kBreakFirst;
  ClientOptions o = Options(true);
  o.stream_count = 1;
  Client client(o);
  auto first = client.GetReplicaList("a");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(first.status().message().find("boom"), std::string::npos);
  auto second = client.GetReplicaList("b");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->replicas[0].segment_name, "b");
  EXPECT_EQ(service_.streams_opened.load(), 2);
}

TEST_F(FakeMasterTest, SilentStreamCallEndsAtItsDeadline) {
  service_.mode = FakeMaster::Mode::kSilent;
  ClientOptions o = Options(true);
  o.timeout_ms = 200;
  const auto start = std::chrono::steady_clock::now();
  {
    Client client(o);
    auto r = client.ExistKey("x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  }  // the destructor cancels the silent stream
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_GE(ms, 150);
  EXPECT_LT(ms, 2000);
}

TEST_F(FakeMasterTest, DomainErrorsKeepTheirTypedCode) {
  Client client(Options(false));
  auto exists = client.ExistKey("x");
  EXPECT_EQ(exists.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(exists.status().message(), "no such key");
  auto ping = client.Ping();
  EXPECT_EQ(ping.status().code(), ErrorCode::kNotLeader);
  EXPECT_NE(ping.status().message().find("10.0.0.1:50051"), std::string::npos);
  EXPECT_EQ(ping.status().leader_address(), "10.0.0.1:50051");
  Status mount = client.MountSegment(Segment{"", "s", 0, 1, ""});
  EXPECT_EQ(mount.code(), ErrorCode::kInternal);
  EXPECT_NE(mount.message().find("99"), std::string::npos);
}

TEST_F(FakeMasterTest, UnaryAndStreamGiveTheSameReplicaList) {
  Client unary(Options(false)), streamed(Options(true));
  auto a = unary.GetReplicaList("key1");
  auto b = streamed.GetReplicaList("key1");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  EXPECT_EQ(a->replicas[0].segment_id, b->replicas[0].segment_id);
  EXPECT_EQ(a->replicas[0].size, 4u);
  EXPECT_TRUE(a->replicas[0].complete);
  EXPECT_EQ(a->lease_ttl_ms, b->lease_ttl_ms);
}

TEST_F(FakeMasterTest, BatchResultsArePerKeyAndCountChecked) {
  Client client(Options(false));
  std::vector<std::string> keys{"a", "b", "c"};
  auto lists = client.BatchGetReplicaList(keys);
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->size(), 3u);
  EXPECT_EQ(lists.value()[0]->replicas[0].segment_name, "a");
  EXPECT_EQ(lists.value()[1].status().code(), ErrorCode::kObjectNotReady);
  EXPECT_EQ(lists.value()[2]->replicas[0].segment_name, "c");
  auto exists = client.BatchExistKey(keys);
  ASSERT_FALSE(exists.ok());
  EXPECT_EQ(exists.status().code(), ErrorCode::kInternal);
}

TEST_F(FakeMasterTest, StatusIsConverted) {
  Client client(Options(false));
  auto st = client.GetStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->node_id, "n1");
  EXPECT_EQ(st->role, "LEADER");
  EXPECT_EQ(st->applied_seq, 42u);
  ASSERT_EQ(st->segments.size(), 1u);
  EXPECT_EQ(st->segments[0].size, 1024u);
  EXPECT_EQ(st->replication_mode, "sync");
  ASSERT_EQ(st->standbys.size(), 1u);
  EXPECT_EQ(st->standbys[0].lag_entries, 7u);
  EXPECT_FALSE(st->follower.has_value());
}

TEST(ClientWithoutMaster, EveryPathReportsUnavailable) {
  ClientOptions o;
  o.address = "127.0.0.1:1";  // nothing listens on port 1
  o.timeout_ms = 2000;
  o.max_retry_ms = 300;  // retried (bounded), then the last UNAVAILABLE
  Client streamed(o);
  EXPECT_EQ(streamed.GetReplicaList("k").status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(streamed.PutEnd("k").code(), ErrorCode::kUnavailable);
  EXPECT_GE(streamed.Stats().retries, 2u);
  o.use_streams = false;
  Client unary(o);
  EXPECT_EQ(unary.GetStatus().status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(unary.BatchRemove(std::vector<std::string>{"a"}).status().code(),
            ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace tandem
