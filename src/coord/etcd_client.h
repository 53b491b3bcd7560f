// EtcdClient: a small synchronous client of etcd's v3 API (KV, Lease, Watch) over gRPC.
//
// Endpoints are "host:port" (an "http://" prefix is accepted; TLS is not supported). Every unary
// call tries the current endpoint with a deadline of call_timeout_ms; when the endpoint cannot be
// reached (gRPC UNAVAILABLE or DEADLINE_EXCEEDED, which etcd also uses for "no leader" and "request
// timed out") it moves on to the next one, each at most once per call, so a call returns within
// endpoints × call_timeout_ms. The endpoint that answered becomes the current one.
//
// Errors: kUnavailable when no endpoint answered (the message lists each endpoint and why),
// kInvalidParams for bad input (a malformed endpoint, an empty key, a lease etcd does not know,
// a compacted revision), kInternal for anything else etcd refused. Messages name the endpoint.
//
// Retries after a transport error may apply a write twice (the first attempt may have reached
// etcd); every write here is either idempotent or a compare-and-swap whose caller checks the
// outcome (see CreateIfAbsent: a retried create finds its own key).
//
// Streams: OpenKeepAlive() and Watch() use long-lived bidi streams without deadline. A watch
// runs on its own thread, reconnects (any endpoint) and resumes from the last revision it
// delivered + 1, until its handle is cancelled or destroyed.
//
// Thread-safe. The client must outlive every stream and watch handle it created. gRPC stays out
// of this header (etcd_client_impl.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tandem::coord {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "host:port" or "http://host:port"
  uint32_t call_timeout_ms = 2000;     // deadline of one attempt of a unary call
  uint32_t connect_timeout_ms = 1000;  // how long a new stream waits for one endpoint to connect
  bool probe = true;                   // Create() fails unless some endpoint answers a read
};

// mvccpb.KeyValue.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: no lease
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  int64_t revision = 0;       // store revision the read saw
};

struct CreateResult {
  bool created = false;  // false: the key already existed and was left alone
  KeyValue kv;           // the key as it is after the transaction (ours if created)
};

struct GrantedLease {
  int64_t id = 0;
  int64_t ttl_s = 0;  // as granted by etcd
};

struct LeaseInfo {
  int64_t id = 0;
  int64_t ttl_s = -1;  // remaining; -1: expired or unknown to etcd
  int64_t granted_ttl_s = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete only key and mod_revision (the deletion's revision) are set
};

struct WatchBatch {
  std::vector<WatchEvent> events;
  // True: `events` are PUTs of every key in the watched range at `revision` (a fresh read, sent
  // first when asked for and again after history was compacted away): replace what you knew.
  bool snapshot = false;
  int64_t revision = 0;  // snapshot revision, or the revision of the last event
};
using WatchCallback = std::function<void(const WatchBatch&)>;

struct WatchOptions {
  std::string key;
  bool prefix = false;            // watch every key starting with `key`
  int64_t start_revision = 0;     // 0: from now
  bool initial_snapshot = false;  // deliver the range's current content first (then watch on)
};

// Stops its watch when cancelled or destroyed; no callback runs after Cancel() returns (unless
// Cancel() is called from inside the callback, which is allowed).
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
  virtual void Cancel() = 0;
};

// One LeaseKeepAlive stream for one lease. etcd answers the requests of a stream in order, so the
// n-th answer belongs to the n-th request. Send() and Next() may be called from different threads.
class KeepAliveStream {
 public:
  virtual ~KeepAliveStream() = default;
  virtual Status Send() = 0;
  // Waits up to timeout_ms for the next answer: the lease's new TTL in seconds (0: etcd no longer
  // knows the lease, i.e. it expired or was revoked), nullopt on timeout, or an error once the
  // stream has ended.
  virtual StatusOr<std::optional<int64_t>> Next(uint32_t timeout_ms) = 0;
  virtual const std::string& endpoint() const = 0;
};

class EtcdClient {
 public:
  // kInvalidParams for a malformed endpoint list; kUnavailable if options.probe and no endpoint
  // answers a read.
  static StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  // "a:1,b:2" -> {"a:1", "b:2"}; kInvalidParams for an empty list or element.
  static StatusOr<std::vector<std::string>> ParseEndpointList(std::string_view csv);
  ~EtcdClient();

  StatusOr<RangeResult> Range(std::string_view key, bool prefix);
  StatusOr<std::optional<KeyValue>> Get(std::string_view key);
  StatusOr<std::vector<KeyValue>> GetPrefix(std::string_view prefix);
  // Returns the revision of the write.
  StatusOr<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0);
  // Returns how many keys were deleted (0 or 1).
  StatusOr<int64_t> Delete(std::string_view key);

  // Txn(create_revision(key) == 0 ? put(key, value, lease) : range(key)).
  StatusOr<CreateResult> CreateIfAbsent(std::string_view key, std::string_view value,
                                        int64_t lease);
  // Txn(create_revision(key) == create_revision ? put : nothing); false if the key is not that one.
  StatusOr<bool> PutIfCreateRevision(std::string_view key, std::string_view value, int64_t lease,
                                     int64_t create_revision);
  // Delete only if the key still has this create_revision (so only "our" incarnation of it).
  StatusOr<bool> DeleteIfCreateRevision(std::string_view key, int64_t create_revision);
  StatusOr<bool> DeleteIfValue(std::string_view key, std::string_view value);

  StatusOr<GrantedLease> LeaseGrant(int64_t ttl_s);
  // A lease etcd no longer knows counts as revoked (OK).
  Status LeaseRevoke(int64_t lease_id);
  StatusOr<LeaseInfo> LeaseTimeToLive(int64_t lease_id);

  // Opens a keepalive stream on the first endpoint (from the current one) that connects within
  // connect_timeout_ms (0: options.connect_timeout_ms).
  StatusOr<std::unique_ptr<KeepAliveStream>> OpenKeepAlive(int64_t lease_id,
                                                           uint32_t connect_timeout_ms = 0);
  // The callback runs on the watch's own thread, one batch at a time, in revision order.
  StatusOr<std::unique_ptr<WatchHandle>> Watch(WatchOptions options, WatchCallback callback);

  // Moves off `endpoint` if it is the current one (a caller saw it stop answering).
  void RotateEndpoint(const std::string& endpoint);
  std::string current_endpoint() const;
  const std::vector<std::string>& endpoints() const;

  struct Impl;  // etcd_client_impl.h

 private:
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::coord
