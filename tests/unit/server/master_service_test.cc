// The gRPC service in-process: a real server on 127.0.0.1:0 with a stub, the state machine
// under a hand-driven clock, and a WriteGate the test controls.
#include "server/master_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "oplog/log_buffer.h"
#include "oplog/sequencer.h"
#include "server/node_status.h"
#include "test_util.h"

namespace tandem::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Passes everything through until told to refuse writes or to hold commits.
class ControlledGate : public WriteGate {
 public:
  Status Admit(Access access) override {
    std::lock_guard<std::mutex> lock(mu_);
    return access == Access::kWrite ? write_admission_ : Status::Ok();
  }
  void AwaitCommit(uint64_t seq, std::function<void(Status)> done) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!hold_) {
      lock.unlock();
      done(Status::Ok());
      return;
    }
    held_.push_back({seq, std::move(done)});
    changed_.notify_all();
  }

  void RefuseWrites(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    write_admission_ = std::move(status);
  }
  void HoldCommits() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  bool WaitForHeld(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, seconds(5), [&] { return held_.size() >= count; });
  }
  // Completes every held write with `status` (as a replication ack would), then stops holding.
  std::vector<uint64_t> ReleaseAll(const Status& status) {
    std::vector<Held> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
      hold_ = false;
    }
    std::vector<uint64_t> positions;
    for (Held& h : held) {
      positions.push_back(h.seq);
      h.done(status);
    }
    return positions;
  }

 private:
  struct Held {
    uint64_t seq;
    std::function<void(Status)> done;
  };
  std::mutex mu_;
  std::condition_variable changed_;
  Status write_admission_;
  bool hold_ = false;
  std::vector<Held> held_;
};

class MasterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
    stub_ = v1::Master::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                                    grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    gate_.ReleaseAll(Status::Ok());  // a held unary call would block Shutdown
    server_->Shutdown(std::chrono::system_clock::now() + seconds(1));
  }

  template <typename Request, typename Response>
  Response Call(grpc::Status (v1::Master::Stub::*method)(grpc::ClientContext*, const Request&,
                                                         Response*),
                const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    Response response;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::ErrorCode Mount(const std::string& id, uint64_t size, const std::string& client_id = "") {
    v1::MountSegmentRequest request;
    request.mutable_segment()->set_id(id);
    request.mutable_segment()->set_name(id);
    request.mutable_segment()->set_base(1 << 20);
    request.mutable_segment()->set_size(size);
    request.mutable_segment()->set_endpoint("127.0.0.1:7000");
    request.set_client_id(client_id);
    return Call(&v1::Master::Stub::MountSegment, request).status().code();
  }
  v1::PutStartResponse PutStart(const std::string& key, uint64_t size = 100) {
    v1::PutStartRequest request;
    request.set_key(key);
    request.set_value_size(size);
    request.set_client_id("writer");
    return Call(&v1::Master::Stub::PutStart, request);
  }
  static v1::KeyRequest Key(const std::string& key, const std::string& client_id = "writer") {
    v1::KeyRequest request;
    request.set_key(key);
    request.set_client_id(client_id);
    return request;
  }
  static v1::BatchKeyRequest Keys(std::initializer_list<const char*> keys) {
    v1::BatchKeyRequest request;
    for (const char* key : keys) request.add_keys(key);
    request.set_client_id("writer");
    return request;
  }
  v1::ErrorCode PutEnd(const std::string& key, const std::string& client_id = "writer") {
    return Call(&v1::Master::Stub::PutEnd, Key(key, client_id)).status().code();
  }
  void PutComplete(const std::string& key, uint64_t size = 100) {
    ASSERT_EQ(PutStart(key, size).status().code(), v1::OK) << key;
    ASSERT_EQ(PutEnd(key), v1::OK) << key;
  }
  bool Exists(const std::string& key) {
    return Call(&v1::Master::Stub::ExistKey, Key(key)).exists();
  }

  testing::ManualClock clock_;
  oplog::LogBuffer buffer_{oplog::LogBufferOptions{}};
  oplog::Sequencer sequencer_{&buffer_, 1, 1};
  meta::MetaStore store_{meta::Options{}, &sequencer_};
  metrics::Registry registry_;
  RpcMetrics rpc_metrics_{&registry_};
  NodeStatusReporter reporter_{"node-a", &store_, &sequencer_, &clock_};
  ControlledGate gate_;
  RequestExecutor executor_{{.store = &store_,
                             .sequencer = &sequencer_,
                             .clock = &clock_,
                             .write_gate = &gate_,
                             .metrics = &rpc_metrics_,
                             .reporter = &reporter_}};
  MasterService service_{&executor_};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Master::Stub> stub_;
};

TEST_F(MasterServiceTest, MountsAndUnmountsSegments) {
  EXPECT_EQ(Mount("seg-1", 1000, "client-1"), v1::OK);
  EXPECT_EQ(Mount("seg-1", 1000, "client-1"), v1::SEGMENT_ALREADY_EXISTS);
  EXPECT_EQ(Mount("seg-0", 0), v1::INVALID_PARAMS);
  v1::UnmountSegmentRequest unmount;
  unmount.set_segment_id("nope");
  EXPECT_EQ(Call(&v1::Master::Stub::UnmountSegment, unmount).status().code(),
            v1::SEGMENT_NOT_FOUND);
  unmount.set_segment_id("seg-1");
  unmount.set_client_id("client-1");
  EXPECT_EQ(Call(&v1::Master::Stub::UnmountSegment, unmount).status().code(), v1::OK);
  EXPECT_EQ(store_.ListSegments().size(), 0u);
}

TEST_F(MasterServiceTest, PutGetAndRemoveOneObject) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  const v1::PutStartResponse started = PutStart("k", 100);
  ASSERT_EQ(started.status().code(), v1::OK) << started.status().message();
  ASSERT_EQ(started.replicas_size(), 1);
  EXPECT_EQ(started.replicas(0).segment_id(), "seg");
  EXPECT_EQ(started.replicas(0).endpoint(), "127.0.0.1:7000");
  EXPECT_EQ(started.replicas(0).address(), (1u << 20) + started.replicas(0).offset());
  EXPECT_EQ(started.replicas(0).status(), v1::PROCESSING);
  EXPECT_EQ(Call(&v1::Master::Stub::GetReplicaList, Key("k")).status().code(),
            v1::OBJECT_NOT_READY);

  ASSERT_EQ(PutEnd("k"), v1::OK);
  const v1::GetReplicaListResponse got = Call(&v1::Master::Stub::GetReplicaList, Key("k"));
  ASSERT_EQ(got.status().code(), v1::OK);
  ASSERT_EQ(got.replicas_size(), 1);
  EXPECT_EQ(got.replicas(0).status(), v1::COMPLETE);
  EXPECT_EQ(got.lease_ttl_ms(), 5000u);
  EXPECT_TRUE(Exists("k"));

  EXPECT_EQ(Call(&v1::Master::Stub::Remove, Key("k")).status().code(), v1::OBJECT_HAS_LEASE);
  clock_.Advance(5001);
  EXPECT_EQ(Call(&v1::Master::Stub::Remove, Key("k")).status().code(), v1::OK);
  EXPECT_FALSE(Exists("k"));
  EXPECT_EQ(Call(&v1::Master::Stub::GetReplicaList, Key("k")).status().code(),
            v1::OBJECT_NOT_FOUND);
}

TEST_F(MasterServiceTest, PutErrorsComeBackInTheResponseStatus) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  ASSERT_EQ(PutStart("k").status().code(), v1::OK);
  EXPECT_EQ(PutStart("k").status().code(), v1::OBJECT_ALREADY_EXISTS);
  EXPECT_EQ(PutStart("big", 5000).status().code(), v1::NO_AVAILABLE_SPACE);
  EXPECT_EQ(PutStart("").status().code(), v1::INVALID_PARAMS);
  EXPECT_FALSE(PutStart("").status().message().empty());
  EXPECT_EQ(PutEnd("k", "someone-else"), v1::NOT_OWNER);
  EXPECT_EQ(Call(&v1::Master::Stub::PutRevoke, Key("k")).status().code(), v1::OK);
  EXPECT_EQ(PutEnd("k"), v1::OBJECT_NOT_FOUND);
  EXPECT_FALSE(Exists("k"));
}

TEST_F(MasterServiceTest, RemoveAllKeepsLeasedObjects) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  PutComplete("a");
  PutComplete("b");
  ASSERT_EQ(Call(&v1::Master::Stub::GetReplicaList, Key("a")).status().code(), v1::OK);
  const v1::RemoveAllResponse removed = Call(&v1::Master::Stub::RemoveAll, v1::RemoveAllRequest());
  EXPECT_EQ(removed.status().code(), v1::OK);
  EXPECT_EQ(removed.removed(), 1u);
  EXPECT_EQ(removed.kept(), 1u);
  EXPECT_TRUE(Exists("a"));
  EXPECT_FALSE(Exists("b"));
}

TEST_F(MasterServiceTest, PingRefreshesKnownClientsOnly) {
  ASSERT_EQ(Mount("seg", 1000, "client-1"), v1::OK);
  v1::PingRequest ping;
  ping.set_client_id("client-1");
  const v1::PingResponse known = Call(&v1::Master::Stub::Ping, ping);
  EXPECT_EQ(known.status().code(), v1::OK);
  EXPECT_EQ(known.client_ttl_ms(), 10000u);
  ping.set_client_id("stranger");
  EXPECT_EQ(Call(&v1::Master::Stub::Ping, ping).status().code(), v1::CLIENT_NOT_FOUND);
}

TEST_F(MasterServiceTest, BatchRpcsAnswerPerKeyInRequestOrder) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  v1::BatchPutStartRequest puts;
  for (const char* key : {"a", "b", "a", ""}) {
    v1::PutStartRequest* item = puts.add_items();
    item->set_key(key);
    item->set_value_size(100);
    item->set_client_id("writer");
  }
  const v1::BatchPutStartResponse started = Call(&v1::Master::Stub::BatchPutStart, puts);
  ASSERT_EQ(started.items_size(), 4);
  EXPECT_EQ(started.items(0).status().code(), v1::OK);
  EXPECT_EQ(started.items(0).replicas_size(), 1);
  EXPECT_EQ(started.items(1).status().code(), v1::OK);
  EXPECT_EQ(started.items(2).status().code(), v1::OBJECT_ALREADY_EXISTS);
  EXPECT_EQ(started.items(3).status().code(), v1::INVALID_PARAMS);

  const v1::BatchStatusResponse ended =
      Call(&v1::Master::Stub::BatchPutEnd, Keys({"a", "missing"}));
  ASSERT_EQ(ended.items_size(), 2);
  EXPECT_EQ(ended.items(0).code(), v1::OK);
  EXPECT_EQ(ended.items(1).code(), v1::OBJECT_NOT_FOUND);

  const v1::BatchGetReplicaListResponse got =
      Call(&v1::Master::Stub::BatchGetReplicaList, Keys({"a", "b", "missing"}));
  ASSERT_EQ(got.items_size(), 3);
  EXPECT_EQ(got.items(0).status().code(), v1::OK);
  EXPECT_EQ(got.items(0).replicas_size(), 1);
  EXPECT_EQ(got.items(1).status().code(), v1::OBJECT_NOT_READY);
  EXPECT_EQ(got.items(2).status().code(), v1::OBJECT_NOT_FOUND);

  const v1::BatchExistKeyResponse exist =
      Call(&v1::Master::Stub::BatchExistKey, Keys({"a", "missing", "b"}));
  ASSERT_EQ(exist.items_size(), 3);
  EXPECT_TRUE(exist.items(0).exists());
  EXPECT_FALSE(exist.items(1).exists());
  EXPECT_TRUE(exist.items(2).exists());

  const v1::BatchStatusResponse revoked = Call(&v1::Master::Stub::BatchPutRevoke, Keys({"b", "a"}));
  EXPECT_EQ(revoked.items(0).code(), v1::OK);
  EXPECT_EQ(revoked.items(1).code(), v1::INVALID_STATE);  // "a" is COMPLETE

  clock_.Advance(5001);  // past the lease BatchGetReplicaList granted on "a"
  const v1::BatchStatusResponse removed = Call(&v1::Master::Stub::BatchRemove, Keys({"a", "b"}));
  EXPECT_EQ(removed.items(0).code(), v1::OK);
  EXPECT_EQ(removed.items(1).code(), v1::OBJECT_NOT_FOUND);

  const std::string text = registry_.Render();
  EXPECT_NE(text.find("tandem_rpc_keys_total{rpc=\"BatchPutStart\"} 4"), std::string::npos);
  EXPECT_NE(text.find("tandem_rpc_errors_total{rpc=\"BatchPutStart\",code=\"INVALID_PARAMS\"} 1"),
            std::string::npos);
}

TEST_F(MasterServiceTest, GetStatusDescribesTheNode) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  PutComplete("k", 100);
  const v1::GetStatusResponse status = Call(&v1::Master::Stub::GetStatus, v1::GetStatusRequest());
  EXPECT_EQ(status.status().code(), v1::OK);
  EXPECT_EQ(status.node_id(), "node-a");
  EXPECT_EQ(status.role(), "standalone");
  EXPECT_EQ(status.epoch(), 1u);
  EXPECT_EQ(status.applied_seq(), 3u);  // mount, put start, put end
  EXPECT_EQ(status.object_count(), 1u);
  EXPECT_EQ(status.segment_count(), 1u);
  EXPECT_EQ(status.bytes_used(), 100u);
  EXPECT_EQ(status.bytes_total(), 1000u);
  EXPECT_EQ(status.state_digest(), DigestToHex(store_.StateDigest()));
  EXPECT_EQ(status.state_digest().size(), 16u);
  ASSERT_EQ(status.segments_size(), 1);
  EXPECT_EQ(status.segments(0).name(), "seg");
  EXPECT_EQ(status.segments(0).size(), 1000u);
}

// ---- Stream ----

v1::StreamRequest StreamOp(uint64_t id, int op, const std::string& key) {
  v1::StreamRequest request;
  request.set_id(id);
  v1::KeyRequest key_request;
  key_request.set_key(key);
  key_request.set_client_id("writer");
  switch (op) {
    case 0:
      request.mutable_put_start()->set_key(key);
      request.mutable_put_start()->set_value_size(100);
      request.mutable_put_start()->set_client_id("writer");
      break;
    case 1:
      *request.mutable_put_end() = key_request;
      break;
    case 2:
      *request.mutable_get_replica_list() = key_request;
      break;
    default:
      *request.mutable_exist_key() = key_request;
      break;
  }
  return request;
}

TEST_F(MasterServiceTest, StreamPipelinesManyRequestsMatchedById) {
  ASSERT_EQ(Mount("seg", 1 << 20), v1::OK);
  constexpr int kKeys = 600;  // 4 ops per key: 2400 messages, more than the server's backlog
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(60));
  auto stream = stub_->Stream(&context);
  std::map<uint64_t, v1::StreamResponse> responses;
  std::thread reader([&] {
    v1::StreamResponse response;
    while (stream->Read(&response)) responses[response.id()] = response;
  });
  uint64_t id = 100;
  for (int i = 0; i < kKeys; ++i) {
    for (int op = 0; op < 4; ++op) {
      ASSERT_TRUE(stream->Write(StreamOp(id++, op, "key-" + std::to_string(i))));
    }
  }
  stream->WritesDone();
  reader.join();
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 4u * kKeys);
  for (uint64_t i = 100; i < id; ++i) {
    ASSERT_EQ(responses.count(i), 1u) << i;
    const v1::StreamResponse& r = responses[i];
    switch ((i - 100) % 4) {
      case 0:
        ASSERT_EQ(r.put_start().status().code(), v1::OK) << i;
        EXPECT_EQ(r.put_start().replicas_size(), 1);
        break;
      case 1:
        ASSERT_EQ(r.put_end().status().code(), v1::OK) << i;
        break;
      case 2:
        ASSERT_EQ(r.get_replica_list().status().code(), v1::OK) << i;
        EXPECT_EQ(r.get_replica_list().replicas(0).status(), v1::COMPLETE);
        break;
      default:
        EXPECT_TRUE(r.exist_key().exists()) << i;
        break;
    }
  }
  EXPECT_EQ(store_.GetStats().object_count, static_cast<uint64_t>(kKeys));
}

TEST_F(MasterServiceTest, StreamErrorsArePerRequest) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  auto stream = stub_->Stream(&context);
  ASSERT_TRUE(stream->Write(StreamOp(1, 1, "missing")));  // PutEnd of nothing
  v1::StreamResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), 1u);
  EXPECT_EQ(response.put_end().status().code(), v1::OBJECT_NOT_FOUND);
  v1::StreamRequest remove;
  remove.set_id(2);
  remove.mutable_remove()->set_key("missing");
  ASSERT_TRUE(stream->Write(remove));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.remove().status().code(), v1::OBJECT_NOT_FOUND);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(MasterServiceTest, StreamFinishesCleanlyWhenTheClientHalfClosesAtOnce) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  auto stream = stub_->Stream(&context);
  stream->WritesDone();
  v1::StreamResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(MasterServiceTest, StreamRequestWithoutOperationEndsTheStream) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  auto stream = stub_->Stream(&context);
  v1::StreamRequest empty;
  empty.set_id(7);
  ASSERT_TRUE(stream->Write(empty));
  v1::StreamResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("7"), std::string::npos);
}

TEST_F(MasterServiceTest, StreamCancelledByTheClientEndsWithoutHanging) {
  ASSERT_EQ(Mount("seg", 1 << 20), v1::OK);
  grpc::ClientContext context;
  auto stream = stub_->Stream(&context);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(stream->Write(StreamOp(i, 3, "k")));
  }
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server is still healthy afterwards.
  EXPECT_EQ(Mount("seg-2", 1000), v1::OK);
}

// ---- WriteGate ----

TEST_F(MasterServiceTest, RefusedWritesNeverTouchTheStore) {
  gate_.RefuseWrites(Status(ErrorCode::kNotLeader, "leader is node-b"));
  EXPECT_EQ(Mount("seg", 1000), v1::NOT_LEADER);
  const v1::PutStartResponse put = PutStart("k");
  EXPECT_EQ(put.status().code(), v1::NOT_LEADER);
  EXPECT_EQ(put.status().message(), "leader is node-b");
  const v1::BatchStatusResponse ended = Call(&v1::Master::Stub::BatchPutEnd, Keys({"a", "b"}));
  ASSERT_EQ(ended.items_size(), 2);
  EXPECT_EQ(ended.items(1).code(), v1::NOT_LEADER);
  EXPECT_EQ(store_.applied_seq(), 0u);
  EXPECT_EQ(store_.ListSegments().size(), 0u);
  EXPECT_FALSE(Exists("k"));  // reads are still admitted
}

TEST_F(MasterServiceTest, UnaryWriteIsAnsweredOnlyAfterTheCommit) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  gate_.HoldCommits();
  std::atomic<bool> answered{false};
  v1::PutStartResponse response;
  std::thread writer([&] {
    response = PutStart("k");
    answered = true;
  });
  ASSERT_TRUE(gate_.WaitForHeld(1));
  EXPECT_TRUE(store_.ExistKey("k"));  // applied...
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(answered.load());  // ...but not acknowledged
  const std::vector<uint64_t> positions = gate_.ReleaseAll(Status::Ok());
  writer.join();
  EXPECT_EQ(positions, std::vector<uint64_t>{2});  // the PutStart entry, after the mount
  EXPECT_EQ(response.status().code(), v1::OK);
  EXPECT_EQ(response.replicas_size(), 1);
}

TEST_F(MasterServiceTest, FailedCommitReplacesOnlyTheOkResults) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  ASSERT_EQ(PutStart("dup").status().code(), v1::OK);
  gate_.HoldCommits();
  v1::BatchPutStartRequest puts;
  for (const char* key : {"new", "dup"}) {
    v1::PutStartRequest* item = puts.add_items();
    item->set_key(key);
    item->set_value_size(10);
  }
  v1::BatchPutStartResponse response;
  std::thread writer([&] { response = Call(&v1::Master::Stub::BatchPutStart, puts); });
  ASSERT_TRUE(gate_.WaitForHeld(1));
  gate_.ReleaseAll(Status(ErrorCode::kReplicationTimeout, "no standby acknowledged"));
  writer.join();
  ASSERT_EQ(response.items_size(), 2);
  EXPECT_EQ(response.items(0).status().code(), v1::REPLICATION_TIMEOUT);
  EXPECT_EQ(response.items(0).status().message(), "no standby acknowledged");
  EXPECT_EQ(response.items(1).status().code(), v1::OBJECT_ALREADY_EXISTS);
}

TEST_F(MasterServiceTest, StreamAnswersReadsWhileAWriteAwaitsItsCommit) {
  ASSERT_EQ(Mount("seg", 1000), v1::OK);
  gate_.HoldCommits();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  auto stream = stub_->Stream(&context);
  ASSERT_TRUE(stream->Write(StreamOp(1, 0, "k")));  // PutStart: held
  ASSERT_TRUE(gate_.WaitForHeld(1));
  ASSERT_TRUE(stream->Write(StreamOp(2, 3, "k")));  // ExistKey: answered at once
  v1::StreamResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), 2u);
  EXPECT_TRUE(response.exist_key().exists());
  gate_.ReleaseAll(Status(ErrorCode::kFenced, "lease lost"));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), 1u);
  EXPECT_EQ(response.put_start().status().code(), v1::FENCED);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace tandem::server
