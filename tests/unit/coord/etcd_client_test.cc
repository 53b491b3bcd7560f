// EtcdClient against a real etcd: KV and transaction semantics, leases and keepalive streams,
// watches that resume after a reconnect, endpoint failover and bad endpoints.
#include "coord/etcd_client.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "etcd_harness.h"

namespace tandem::coord::testing {
namespace {

using EtcdClientTest = EtcdTest;

TEST_F(EtcdClientTest, PutGetDeleteAndPrefixReads) {
  StatusOr<int64_t> rev1 = client_->Put("/t/p/a", "1");
  ASSERT_TRUE(rev1.ok()) << rev1.status().ToString();
  ASSERT_TRUE(client_->Put("/t/p/b", "2").ok());
  ASSERT_TRUE(client_->Put("/t/p0", "not under /t/p/").ok());
  StatusOr<int64_t> rev2 = client_->Put("/t/p/a", "1b");
  ASSERT_TRUE(rev2.ok());
  EXPECT_GT(rev2.value(), rev1.value());

  StatusOr<std::optional<KeyValue>> a = client_->Get("/t/p/a");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a.value().has_value());
  EXPECT_EQ(a.value()->value, "1b");
  EXPECT_EQ(a.value()->create_revision, rev1.value());
  EXPECT_EQ(a.value()->mod_revision, rev2.value());
  EXPECT_EQ(a.value()->version, 2);
  EXPECT_EQ(a.value()->lease, 0);

  StatusOr<std::vector<KeyValue>> prefix = client_->GetPrefix("/t/p/");
  ASSERT_TRUE(prefix.ok());
  ASSERT_EQ(prefix.value().size(), 2u);
  EXPECT_EQ(prefix.value()[0].key, "/t/p/a");
  EXPECT_EQ(prefix.value()[1].key, "/t/p/b");

  EXPECT_EQ(client_->Delete("/t/p/a").value(), 1);
  EXPECT_EQ(client_->Delete("/t/p/a").value(), 0);
  EXPECT_FALSE(client_->Get("/t/p/a").value().has_value());
  EXPECT_EQ(client_->Get("").status().code(), ErrorCode::kInvalidParams);
}

TEST_F(EtcdClientTest, TransactionsCompareCreateRevisionAndValue) {
  StatusOr<CreateResult> first = client_->CreateIfAbsent("/t/leader", "A", 0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first.value().created);
  int64_t created_at = first.value().kv.create_revision;
  EXPECT_EQ(client_->Get("/t/leader").value()->create_revision, created_at);

  StatusOr<CreateResult> second = client_->CreateIfAbsent("/t/leader", "B", 0);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second.value().created);
  EXPECT_EQ(second.value().kv.value, "A");  // untouched, and we learn who holds it
  EXPECT_EQ(second.value().kv.create_revision, created_at);

  EXPECT_FALSE(client_->PutIfCreateRevision("/t/leader", "X", 0, created_at + 100).value());
  EXPECT_TRUE(client_->PutIfCreateRevision("/t/leader", "A2", 0, created_at).value());
  EXPECT_EQ(client_->Get("/t/leader").value()->value, "A2");

  EXPECT_FALSE(client_->DeleteIfCreateRevision("/t/leader", created_at + 100).value());
  EXPECT_TRUE(client_->Get("/t/leader").value().has_value());
  EXPECT_TRUE(client_->DeleteIfCreateRevision("/t/leader", created_at).value());
  EXPECT_FALSE(client_->Get("/t/leader").value().has_value());
  EXPECT_FALSE(client_->DeleteIfCreateRevision("/t/leader", created_at).value());

  // A re-created key has a new, larger create_revision.
  StatusOr<CreateResult> again = client_->CreateIfAbsent("/t/leader", "C", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.value().created);
  EXPECT_GT(again.value().kv.create_revision, created_at);

  EXPECT_FALSE(client_->DeleteIfValue("/t/leader", "A").value());
  EXPECT_TRUE(client_->DeleteIfValue("/t/leader", "C").value());
}

TEST_F(EtcdClientTest, KeepAliveKeepsKeyAndItsAbsenceLetsItExpire) {
  StatusOr<GrantedLease> lease = client_->LeaseGrant(2);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(lease.value().ttl_s, 2);
  ASSERT_TRUE(client_->Put("/t/leased", "v", lease.value().id).ok());
  EXPECT_EQ(client_->Get("/t/leased").value()->lease, lease.value().id);
  StatusOr<LeaseInfo> info = client_->LeaseTimeToLive(lease.value().id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().granted_ttl_s, 2);
  EXPECT_GT(info.value().ttl_s, 0);

  auto stream = client_->OpenKeepAlive(lease.value().id);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  uint64_t start = NowMs();
  uint64_t last_renewal = start;
  while (NowMs() - start < 3000) {  // 1.5 TTL of renewals every 600 ms
    last_renewal = NowMs();
    ASSERT_TRUE(stream.value()->Send().ok());
    auto ttl = stream.value()->Next(1000);
    ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
    ASSERT_TRUE(ttl.value().has_value());
    EXPECT_EQ(*ttl.value(), 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
  }
  EXPECT_TRUE(client_->Get("/t/leased").value().has_value()) << "renewed lease lost its key";

  stream.value().reset();  // stop renewing
  ASSERT_TRUE(WaitFor([&] { return !client_->Get("/t/leased").value().has_value(); }, 4000));
  uint64_t gone_after = NowMs() - last_renewal;
  spdlog::info("measured: key deleted {} ms after the last renewal (TTL 2000 ms)", gone_after);
  EXPECT_LE(gone_after, 2000u + 1000u);
  EXPECT_EQ(client_->LeaseTimeToLive(lease.value().id).value().ttl_s, -1);
}

TEST_F(EtcdClientTest, KeepAliveAnswersTtlZeroForARevokedLease) {
  StatusOr<GrantedLease> lease = client_->LeaseGrant(5);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client_->LeaseRevoke(lease.value().id).ok());
  EXPECT_TRUE(client_->LeaseRevoke(lease.value().id).ok()) << "revoking twice is not an error";
  auto stream = client_->OpenKeepAlive(lease.value().id);
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE(stream.value()->Send().ok());
  auto ttl = stream.value()->Next(2000);
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  ASSERT_TRUE(ttl.value().has_value());
  EXPECT_EQ(*ttl.value(), 0);
  // A put under an unknown lease is refused as bad input, naming the endpoint.
  StatusOr<int64_t> put = client_->Put("/t/x", "v", lease.value().id);
  EXPECT_EQ(put.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(put.status().message().find(etcd_->endpoint()), std::string::npos);
}

TEST_F(EtcdClientTest, FailsOverToTheNextEndpoint) {
  std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  auto client = Connect({dead, etcd_->endpoint()});
  uint64_t start = NowMs();
  ASSERT_TRUE(client->Put("/t/failover", "v").ok());
  EXPECT_LT(NowMs() - start, 1500u);
  EXPECT_EQ(client->current_endpoint(), etcd_->endpoint());
}

struct Recorder {
  std::mutex mu;
  std::vector<std::string> seen;  // "PUT key=value" / "DELETE key"
  bool snapshot = false;
  void Add(const WatchBatch& batch) {
    std::lock_guard<std::mutex> lock(mu);
    snapshot = snapshot || batch.snapshot;
    for (const WatchEvent& e : batch.events) {
      seen.push_back(e.type == WatchEvent::Type::kPut ? "PUT " + e.kv.key + "=" + e.kv.value
                                                      : "DELETE " + e.kv.key);
    }
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  }
  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  }
};

TEST_F(EtcdClientTest, WatchResumesAfterReconnectAndStopsWhenCancelled) {
  TcpProxy proxy(std::stoi(etcd_->endpoint().substr(etcd_->endpoint().rfind(':') + 1)));
  auto watch_client = Connect({proxy.endpoint()});
  ASSERT_TRUE(client_->Put("/w/before", "old").ok());
  Recorder recorder;
  WatchOptions options;
  options.key = "/w/";
  options.prefix = true;
  options.initial_snapshot = true;
  auto handle = watch_client->Watch(options, [&](const WatchBatch& b) { recorder.Add(b); });
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(WaitFor([&] { return recorder.size() == 1; }, 3000));
  EXPECT_TRUE(recorder.snapshot);
  ASSERT_TRUE(client_->Put("/w/k1", "1").ok());
  ASSERT_TRUE(WaitFor([&] { return recorder.size() == 2; }, 3000));

  proxy.DropAll(/*refuse=*/true);  // the watcher is cut off while these happen
  ASSERT_TRUE(client_->Put("/w/k2", "2").ok());
  ASSERT_TRUE(client_->Put("/w/k3", "3").ok());
  ASSERT_TRUE(client_->Delete("/w/k1").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(recorder.size(), 2u);
  proxy.Refuse(false);
  ASSERT_TRUE(WaitFor([&] { return recorder.size() >= 5; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<std::string> expected = {"PUT /w/before=old", "PUT /w/k1=1", "PUT /w/k2=2",
                                       "PUT /w/k3=3", "DELETE /w/k1"};
  EXPECT_EQ(recorder.get(), expected) << "each event once, in order, none lost";

  handle.value()->Cancel();
  ASSERT_TRUE(client_->Put("/w/k4", "4").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(recorder.size(), 5u) << "no callback after Cancel()";
}

TEST(EtcdClientEndpoints, MalformedEndpointsAreRejectedAtOnce) {
  for (const char* bad :
       {"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:abc", ":2379",
        "https://127.0.0.1:2379", "a b:1", "unix:///tmp/x"}) {
    EtcdOptions options;
    options.endpoints = {bad};
    StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::Create(options);
    ASSERT_FALSE(client.ok()) << bad;
    EXPECT_EQ(client.status().code(), ErrorCode::kInvalidParams) << bad;
    EXPECT_NE(client.status().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << client.status().message();
  }
  EXPECT_EQ(EtcdClient::Create(EtcdOptions{}).status().code(), ErrorCode::kInvalidParams);
  EXPECT_FALSE(EtcdClient::ParseEndpointList("a:1,,b:2").ok());
  auto list = EtcdClient::ParseEndpointList(" a:1, http://b:2 ");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list.value(), (std::vector<std::string>{"a:1", "http://b:2"}));
}

TEST(EtcdClientEndpoints, UnreachableEndpointsFailWithinBoundedTime) {
  std::string refused = "127.0.0.1:" + std::to_string(FreePort());
  SilentServer silent;  // accepts TCP, never speaks HTTP/2
  EtcdOptions options;
  options.endpoints = {refused, silent.endpoint()};
  options.call_timeout_ms = 500;
  uint64_t start = NowMs();
  StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::Create(options);
  uint64_t took = NowMs() - start;
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(client.status().message().find(refused), std::string::npos);
  EXPECT_NE(client.status().message().find(silent.endpoint()), std::string::npos);
  EXPECT_LT(took, 2 * 500u + 700u) << client.status().message();
  spdlog::info("unreachable endpoints reported in {} ms: {}", took, client.status().message());
}

}  // namespace
}  // namespace tandem::coord::testing
