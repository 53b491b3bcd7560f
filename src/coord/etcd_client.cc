// EtcdClient: endpoints, channels and the unary calls (KV, Lease). Streams: etcd_streams.cc.
#include "coord/etcd_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "coord/etcd_client_impl.h"

namespace tandem::coord {

namespace pb = etcdserverpb;

namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

Status BadEndpoint(std::string_view endpoint, std::string_view why) {
  return Status(ErrorCode::kInvalidParams,
                "etcd endpoint '" + std::string(endpoint) + "' is invalid: " + std::string(why));
}

// "host:port" (host: name, IPv4 or [IPv6]), optionally "http://host:port"; returns "host:port".
StatusOr<std::string> ParseEndpoint(std::string_view raw) {
  std::string_view s = raw;
  if (s.starts_with("http://")) s.remove_prefix(7);
  if (s.starts_with("https://")) return BadEndpoint(raw, "TLS (https) is not supported");
  if (s.find("://") != std::string_view::npos) return BadEndpoint(raw, "unknown scheme");
  if (!s.empty() && s.back() == '/') s.remove_suffix(1);
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return BadEndpoint(raw, "expected host:port");
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);
  if (host.empty()) return BadEndpoint(raw, "empty host");
  bool bracketed = host.front() == '[' && host.back() == ']' && host.size() > 2;
  for (char c : host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
              (bracketed && (c == ':' || c == '[' || c == ']'));
    if (!ok) return BadEndpoint(raw, "bad character in host");
  }
  if (port.empty() || port.size() > 5) return BadEndpoint(raw, "port must be 1..65535");
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return BadEndpoint(raw, "port must be a number");
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return BadEndpoint(raw, "port must be 1..65535");
  return std::string(s);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Own connections per client (tests and failover reason about one client's connection).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // gRPC's default reconnect backoff grows to minutes; an etcd member that comes back must be
  // usable again within about a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // In gRPC this is also the minimum time one connection attempt may take.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Detects a dead peer under an idle watch. etcd refuses pings more often than every 5 s
  // (--grpc-keepalive-min-time), hence 10 s, and only while calls are active.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::string Quote(std::string_view key) { return "'" + std::string(key) + "'"; }

}  // namespace

// ---- helpers shared with etcd_streams.cc ----

bool IsTransportError(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Status FromGrpc(const grpc::Status& status, const std::string& what, const std::string& endpoint) {
  if (status.ok()) return Status::Ok();
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int code = static_cast<int>(status.error_code());
  std::string name = code >= 0 && code <= 16 ? kNames[code] : std::to_string(code);
  ErrorCode ours = ErrorCode::kInternal;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      ours = ErrorCode::kUnavailable;
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:     // etcd: "requested lease not found"
    case grpc::StatusCode::OUT_OF_RANGE:  // etcd: compacted or future revision
    case grpc::StatusCode::FAILED_PRECONDITION:
      ours = ErrorCode::kInvalidParams;
      break;
    default:
      break;
  }
  return Status(
      ours, "etcd " + what + " at " + endpoint + ": " + status.error_message() + " (" + name + ")");
}

std::chrono::system_clock::time_point DeadlineAfterMs(uint32_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  return KeyValue{kv.key(),          kv.value(),   kv.create_revision(),
                  kv.mod_revision(), kv.version(), kv.lease()};
}

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

void RequireLeader(grpc::ClientContext* context) { context->AddMetadata("hasleader", "true"); }

Status EtcdClient::Impl::Call(const std::string& what, const UnaryCall& call) {
  std::string failures;
  size_t start = current.load();
  for (size_t i = 0; i < endpoints.size(); ++i) {
    size_t index = (start + i) % endpoints.size();
    Endpoint& endpoint = endpoints[index];
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfterMs(options.call_timeout_ms));
    grpc::Status status = call(endpoint, context);
    if (!IsTransportError(status)) {
      if (index != start) current.store(index);
      return FromGrpc(status, what, endpoint.address);
    }
    if (!failures.empty()) failures += "; ";
    failures += endpoint.address + ": ";
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      bool connected = endpoint.channel->GetState(false) == GRPC_CHANNEL_READY;
      failures += connected ? "connected but no answer" : "could not connect (timed out)";
    } else {
      failures += status.error_message();
    }
  }
  return Status(ErrorCode::kUnavailable, "etcd " + what + ": no endpoint answered within " +
                                             std::to_string(options.call_timeout_ms) + " ms (" +
                                             failures + ")");
}

StatusOr<size_t> EtcdClient::Impl::ConnectForStream(uint32_t timeout_ms,
                                                    const std::atomic<bool>* stop) {
  std::string failures;
  size_t start = current.load();
  // An endpoint already connected wins: waiting on one that just died would waste the timeout.
  for (size_t i = 0; i < endpoints.size(); ++i) {
    size_t index = (start + i) % endpoints.size();
    if (endpoints[index].channel->GetState(false) == GRPC_CHANNEL_READY) {
      if (index != start) current.store(index);
      return index;
    }
  }
  for (size_t i = 0; i < endpoints.size(); ++i) {
    size_t index = (start + i) % endpoints.size();
    Endpoint& endpoint = endpoints[index];
    auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool connected = false;
    // Short slices so that a stop request is noticed quickly.
    while (!connected && std::chrono::system_clock::now() < deadline) {
      if (stop != nullptr && stop->load()) {
        return Status(ErrorCode::kUnavailable, "etcd stream: stopped");
      }
      auto slice =
          std::min(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      connected = endpoint.channel->WaitForConnected(slice);
    }
    if (connected) {
      if (index != start) current.store(index);
      return index;
    }
    if (!failures.empty()) failures += ", ";
    failures += endpoint.address;
  }
  return Status(ErrorCode::kUnavailable, "etcd stream: no endpoint connected within " +
                                             std::to_string(timeout_ms) + " ms (" + failures + ")");
}

namespace {
constexpr auto kWatchSlice = std::chrono::milliseconds(100);  // also bounds ~EtcdClient
}  // namespace

void EtcdClient::Impl::ArmWatch(size_t index) {
  grpc::Channel& channel = *endpoints[index].channel;
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  channel.NotifyOnStateChange(state, std::chrono::system_clock::now() + kWatchSlice, &watch_cq,
                              reinterpret_cast<void*>(index));
}

void EtcdClient::Impl::StartConnectivityWatch() {
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    for (size_t i = 0; i < endpoints.size(); ++i) ArmWatch(i);
  }
  watch_thread = std::thread([this] {
    void* tag = nullptr;
    bool ok = false;
    while (watch_cq.Next(&tag, &ok)) {
      std::lock_guard<std::mutex> lock(watch_mu);
      if (!watch_stopping) ArmWatch(reinterpret_cast<size_t>(tag));
    }
  });
}

void EtcdClient::Impl::StopConnectivityWatch() {
  if (!watch_thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    watch_stopping = true;
  }
  watch_cq.Shutdown();  // Next() returns false once the armed watches expired (<= one slice)
  watch_thread.join();
}

// ---- EtcdClient ----

StatusOr<std::vector<std::string>> EtcdClient::ParseEndpointList(std::string_view csv) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t comma = csv.find(',', pos);
    std::string item =
        Trim(csv.substr(pos, comma == std::string_view::npos ? csv.npos : comma - pos));
    if (item.empty()) {
      return Status(ErrorCode::kInvalidParams,
                    "etcd endpoint list '" + std::string(csv) + "' has an empty element");
    }
    out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return Status(ErrorCode::kInvalidParams, "no etcd endpoint given");
  }
  if (options.call_timeout_ms == 0 || options.connect_timeout_ms == 0) {
    return Status(ErrorCode::kInvalidParams, "etcd call and connect timeouts must be > 0");
  }
  auto impl = std::make_unique<Impl>();
  for (const std::string& raw : options.endpoints) {
    StatusOr<std::string> address = ParseEndpoint(Trim(raw));
    if (!address.ok()) return address.status();
    Endpoint endpoint;
    endpoint.address = address.value();
    endpoint.channel = MakeChannel(endpoint.address);
    endpoint.kv = pb::KV::NewStub(endpoint.channel);
    endpoint.lease = pb::Lease::NewStub(endpoint.channel);
    endpoint.watch = pb::Watch::NewStub(endpoint.channel);
    impl->endpoints.push_back(std::move(endpoint));
  }
  impl->options = std::move(options);
  impl->StartConnectivityWatch();
  std::unique_ptr<EtcdClient> client(new EtcdClient(std::move(impl)));
  if (client->impl_->options.probe) {
    StatusOr<RangeResult> probe = client->Range("/tandem/", /*prefix=*/false);
    if (!probe.ok()) {
      return Status(probe.status().code(), "etcd is unreachable: " + probe.status().message());
    }
  }
  return client;
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

StatusOr<RangeResult> EtcdClient::Range(std::string_view key, bool prefix) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd Range: empty key");
  pb::RangeRequest request;
  request.set_key(std::string(key));
  if (prefix) request.set_range_end(PrefixRangeEnd(key));
  pb::RangeResponse response;
  Status status = impl_->Call("Range " + Quote(key), [&](Endpoint& e, grpc::ClientContext& c) {
    return e.kv->Range(&c, request, &response);
  });
  if (!status.ok()) return status;
  RangeResult result;
  result.revision = response.header().revision();
  for (const auto& kv : response.kvs()) result.kvs.push_back(FromProto(kv));
  return result;
}

StatusOr<std::optional<KeyValue>> EtcdClient::Get(std::string_view key) {
  StatusOr<RangeResult> range = Range(key, /*prefix=*/false);
  if (!range.ok()) return range.status();
  if (range->kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(range->kvs.front()));
}

StatusOr<std::vector<KeyValue>> EtcdClient::GetPrefix(std::string_view prefix) {
  StatusOr<RangeResult> range = Range(prefix, /*prefix=*/true);
  if (!range.ok()) return range.status();
  return std::move(range->kvs);
}

StatusOr<int64_t> EtcdClient::Put(std::string_view key, std::string_view value, int64_t lease) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd Put: empty key");
  pb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  pb::PutResponse response;
  Status status = impl_->Call("Put " + Quote(key), [&](Endpoint& e, grpc::ClientContext& c) {
    return e.kv->Put(&c, request, &response);
  });
  if (!status.ok()) return status;
  return response.header().revision();
}

StatusOr<int64_t> EtcdClient::Delete(std::string_view key) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd Delete: empty key");
  pb::DeleteRangeRequest request;
  request.set_key(std::string(key));
  pb::DeleteRangeResponse response;
  Status status = impl_->Call("Delete " + Quote(key), [&](Endpoint& e, grpc::ClientContext& c) {
    return e.kv->DeleteRange(&c, request, &response);
  });
  if (!status.ok()) return status;
  return response.deleted();
}

namespace {

pb::Compare CompareCreateRevision(std::string_view key, int64_t create_revision) {
  pb::Compare compare;
  compare.set_key(std::string(key));
  compare.set_target(pb::Compare::CREATE);
  compare.set_result(pb::Compare::EQUAL);
  compare.set_create_revision(create_revision);
  return compare;
}

void AddPut(google::protobuf::RepeatedPtrField<pb::RequestOp>* ops, std::string_view key,
            std::string_view value, int64_t lease) {
  pb::PutRequest* put = ops->Add()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  put->set_lease(lease);
}

}  // namespace

StatusOr<CreateResult> EtcdClient::CreateIfAbsent(std::string_view key, std::string_view value,
                                                  int64_t lease) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd CreateIfAbsent: empty key");
  pb::TxnRequest request;
  *request.add_compare() = CompareCreateRevision(key, 0);
  AddPut(request.mutable_success(), key, value, lease);
  request.add_failure()->mutable_request_range()->set_key(std::string(key));
  pb::TxnResponse response;
  Status status = impl_->Call(
      "CreateIfAbsent " + Quote(key),
      [&](Endpoint& e, grpc::ClientContext& c) { return e.kv->Txn(&c, request, &response); });
  if (!status.ok()) return status;
  CreateResult result;
  result.created = response.succeeded();
  if (result.created) {
    // The put happened at the transaction's revision: that is the key's create_revision.
    int64_t revision = response.header().revision();
    result.kv = KeyValue{std::string(key), std::string(value), revision, revision, 1, lease};
    return result;
  }
  const auto& range = response.responses(0).response_range();
  if (range.kvs_size() == 0) {
    return Status(ErrorCode::kInternal, "etcd CreateIfAbsent " + Quote(key) +
                                            ": key existed but the transaction read nothing");
  }
  result.kv = FromProto(range.kvs(0));
  return result;
}

StatusOr<bool> EtcdClient::PutIfCreateRevision(std::string_view key, std::string_view value,
                                               int64_t lease, int64_t create_revision) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd PutIfCreateRevision: empty key");
  pb::TxnRequest request;
  *request.add_compare() = CompareCreateRevision(key, create_revision);
  AddPut(request.mutable_success(), key, value, lease);
  pb::TxnResponse response;
  Status status = impl_->Call(
      "PutIfCreateRevision " + Quote(key),
      [&](Endpoint& e, grpc::ClientContext& c) { return e.kv->Txn(&c, request, &response); });
  if (!status.ok()) return status;
  return response.succeeded();
}

namespace {

StatusOr<bool> DeleteIf(EtcdClient::Impl* impl, std::string_view key, const pb::Compare& compare,
                        const std::string& what) {
  if (key.empty()) return Status(ErrorCode::kInvalidParams, "etcd " + what + ": empty key");
  pb::TxnRequest request;
  *request.add_compare() = compare;
  request.add_success()->mutable_request_delete_range()->set_key(std::string(key));
  pb::TxnResponse response;
  Status status = impl->Call(what + " " + Quote(key), [&](Endpoint& e, grpc::ClientContext& c) {
    return e.kv->Txn(&c, request, &response);
  });
  if (!status.ok()) return status;
  return response.succeeded() && response.responses(0).response_delete_range().deleted() > 0;
}

}  // namespace

StatusOr<bool> EtcdClient::DeleteIfCreateRevision(std::string_view key, int64_t create_revision) {
  if (create_revision <= 0) {
    return Status(ErrorCode::kInvalidParams,
                  "etcd DeleteIfCreateRevision: create_revision must "
                  "be > 0");
  }
  return DeleteIf(impl_.get(), key, CompareCreateRevision(key, create_revision),
                  "DeleteIfCreateRevision");
}

StatusOr<bool> EtcdClient::DeleteIfValue(std::string_view key, std::string_view value) {
  pb::Compare compare;
  compare.set_key(std::string(key));
  compare.set_target(pb::Compare::VALUE);
  compare.set_result(pb::Compare::EQUAL);
  compare.set_value(std::string(value));
  return DeleteIf(impl_.get(), key, compare, "DeleteIfValue");
}

StatusOr<GrantedLease> EtcdClient::LeaseGrant(int64_t ttl_s) {
  if (ttl_s <= 0) return Status(ErrorCode::kInvalidParams, "etcd LeaseGrant: TTL must be > 0 s");
  pb::LeaseGrantRequest request;
  request.set_ttl(ttl_s);
  pb::LeaseGrantResponse response;
  Status status = impl_->Call("LeaseGrant", [&](Endpoint& e, grpc::ClientContext& c) {
    return e.lease->LeaseGrant(&c, request, &response);
  });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return Status(ErrorCode::kInternal, "etcd LeaseGrant: " + response.error());
  }
  return GrantedLease{response.id(), response.ttl()};
}

Status EtcdClient::LeaseRevoke(int64_t lease_id) {
  pb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  pb::LeaseRevokeResponse response;
  grpc::StatusCode code = grpc::StatusCode::OK;
  Status status = impl_->Call("LeaseRevoke " + std::to_string(lease_id),
                              [&](Endpoint& e, grpc::ClientContext& c) {
                                grpc::Status s = e.lease->LeaseRevoke(&c, request, &response);
                                code = s.error_code();
                                return s;
                              });
  if (code == grpc::StatusCode::NOT_FOUND) return Status::Ok();  // already expired or revoked
  return status;
}

StatusOr<LeaseInfo> EtcdClient::LeaseTimeToLive(int64_t lease_id) {
  pb::LeaseTimeToLiveRequest request;
  request.set_id(lease_id);
  pb::LeaseTimeToLiveResponse response;
  Status status = impl_->Call("LeaseTimeToLive " + std::to_string(lease_id),
                              [&](Endpoint& e, grpc::ClientContext& c) {
                                return e.lease->LeaseTimeToLive(&c, request, &response);
                              });
  if (!status.ok()) return status;
  return LeaseInfo{lease_id, response.ttl(), response.grantedttl()};
}

void EtcdClient::RotateEndpoint(const std::string& endpoint) {
  size_t index = impl_->current.load();
  if (impl_->endpoints[index].address != endpoint) return;
  size_t next = (index + 1) % impl_->endpoints.size();
  if (impl_->current.compare_exchange_strong(index, next) && next != index) {
    spdlog::info("etcd: moving from endpoint {} to {} (no answer)", endpoint,
                 impl_->endpoints[next].address);
  }
}

std::string EtcdClient::current_endpoint() const {
  return impl_->endpoints[impl_->current.load()].address;
}

const std::vector<std::string>& EtcdClient::endpoints() const { return impl_->options.endpoints; }

}  // namespace tandem::coord
