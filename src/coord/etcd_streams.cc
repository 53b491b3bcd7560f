// EtcdClient's long-lived streams: LeaseKeepAlive (a reader thread feeding a queue) and Watch (a
// thread per watch that reconnects and resumes from the last delivered revision + 1).
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "coord/etcd_client.h"
#include "coord/etcd_client_impl.h"

namespace tandem::coord {

namespace pb = etcdserverpb;

namespace {

// ---- LeaseKeepAlive ----

class KeepAliveStreamImpl : public KeepAliveStream {
 public:
  KeepAliveStreamImpl(Endpoint& endpoint, int64_t lease_id)
      : endpoint_(endpoint.address), lease_id_(lease_id) {
    // No "hasleader" here, unlike watches: a member without a leader then holds the request and
    // answers the moment a new leader is elected (measured: rejecting it instead made clients
    // spin on reconnects and answered later); a member that stays silent is left by the keeper.
    stream_ = endpoint.lease->LeaseKeepAlive(&context_);
    reader_ = std::thread([this] { ReadLoop(); });
  }

  ~KeepAliveStreamImpl() override {
    context_.TryCancel();
    reader_.join();
  }

  Status Send() override {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (finished_) return Ended();
    pb::LeaseKeepAliveRequest request;
    request.set_id(lease_id_);
    if (!stream_->Write(request)) {
      return Status(ErrorCode::kUnavailable,
                    "etcd LeaseKeepAlive at " + endpoint_ + ": stream closed while sending");
    }
    return Status::Ok();
  }

  StatusOr<std::optional<int64_t>> Next(uint32_t timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                 [&] { return !ttls_.empty() || ended_; });
    if (!ttls_.empty()) {
      int64_t ttl = ttls_.front();
      ttls_.pop_front();
      return std::optional<int64_t>(ttl);
    }
    if (ended_) return end_status_;
    return std::optional<int64_t>();
  }

  const std::string& endpoint() const override { return endpoint_; }

 private:
  Status Ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_ ? end_status_ : Status(ErrorCode::kUnavailable, "etcd LeaseKeepAlive ended");
  }

  void ReadLoop() {
    pb::LeaseKeepAliveResponse response;
    while (stream_->Read(&response)) {
      std::lock_guard<std::mutex> lock(mu_);
      ttls_.push_back(response.ttl());
      cv_.notify_all();
    }
    grpc::Status status;
    {
      // Finish must not race a Write; Send() checks finished_ under the same mutex.
      std::lock_guard<std::mutex> lock(write_mu_);
      finished_ = true;
      status = stream_->Finish();
    }
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    // However it ended, the remedy is the same: open a new stream (maybe elsewhere).
    end_status_ = Status(ErrorCode::kUnavailable, "etcd LeaseKeepAlive at " + endpoint_ +
                                                      ": stream ended: " + status.error_message());
    cv_.notify_all();
  }

  const std::string endpoint_;
  const int64_t lease_id_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>>
      stream_;
  std::thread reader_;

  std::mutex write_mu_;
  bool finished_ = false;  // guarded by write_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int64_t> ttls_;  // answers not yet taken by Next()
  bool ended_ = false;
  Status end_status_;
};

// ---- Watch ----

// Shared by the handle and the watch thread, so that a handle destroyed from inside its own
// callback leaves the thread a valid object to finish with.
class WatchWorker : public std::enable_shared_from_this<WatchWorker> {
 public:
  WatchWorker(EtcdClient* client, EtcdClient::Impl* impl, WatchOptions options,
              WatchCallback callback)
      : client_(client),
        impl_(impl),
        options_(std::move(options)),
        callback_(std::move(callback)),
        next_revision_(options_.start_revision) {}

  void Start() {
    auto self = shared_from_this();
    thread_ = std::thread([self] { self->Run(); });
  }

  void Cancel() {
    stop_.store(true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_context_ != nullptr) active_context_->TryCancel();
      cv_.notify_all();
    }
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // cancelled from the callback: the thread ends when it returns
    } else {
      thread_.join();
    }
  }

 private:
  void Run() {
    uint32_t backoff_ms = 100;
    bool need_snapshot = options_.initial_snapshot;
    while (!stop_.load()) {
      if (need_snapshot && !DeliverSnapshot()) {
        Sleep(backoff_ms);
        backoff_ms = std::min<uint32_t>(backoff_ms * 2, 1000);
        continue;
      }
      need_snapshot = false;
      bool progressed = false;
      Status status = WatchOnce(&progressed, &need_snapshot);
      if (stop_.load()) break;
      if (progressed) backoff_ms = 100;
      spdlog::warn("etcd watch '{}': {}; resuming from revision {} in {} ms", options_.key,
                   status.message(), next_revision_, backoff_ms);
      Sleep(backoff_ms);
      backoff_ms = std::min<uint32_t>(backoff_ms * 2, 1000);
    }
  }

  void Sleep(uint32_t ms) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
  }

  // A fresh read of the range, delivered as a snapshot; the watch then resumes right after it.
  bool DeliverSnapshot() {
    StatusOr<RangeResult> range = client_->Range(options_.key, options_.prefix);
    if (!range.ok()) {
      spdlog::warn("etcd watch '{}': snapshot read failed: {}", options_.key,
                   range.status().message());
      return false;
    }
    WatchBatch batch;
    batch.snapshot = true;
    batch.revision = range->revision;
    for (KeyValue& kv : range->kvs) {
      batch.events.push_back(WatchEvent{WatchEvent::Type::kPut, std::move(kv)});
    }
    next_revision_ = range->revision + 1;
    if (!stop_.load()) callback_(batch);
    return true;
  }

  // One stream: connect, create the watcher, deliver events until the stream breaks.
  Status WatchOnce(bool* progressed, bool* need_snapshot) {
    StatusOr<size_t> index = impl_->ConnectForStream(impl_->options.connect_timeout_ms, &stop_);
    if (!index.ok()) return index.status();
    Endpoint& endpoint = impl_->endpoints[index.value()];
    grpc::ClientContext context;
    RequireLeader(&context);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_.load()) return Status::Ok();
      active_context_ = &context;
    }
    auto stream = endpoint.watch->Watch(&context);
    pb::WatchRequest request;
    pb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(options_.key);
    if (options_.prefix) create->set_range_end(PrefixRangeEnd(options_.key));
    create->set_start_revision(next_revision_);
    std::optional<Status> result;
    if (stream->Write(request))
      result = ReadEvents(stream.get(), endpoint, progressed, need_snapshot);
    context.TryCancel();  // we may stop reading early (cancel, compaction): end the call
    grpc::Status status = stream->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_context_ = nullptr;
    }
    if (result.has_value()) return *result;
    // A member without a raft leader ends "hasleader" streams at once: try another one next.
    if (!*progressed) client_->RotateEndpoint(endpoint.address);
    return Status(ErrorCode::kUnavailable, "etcd Watch at " + endpoint.address +
                                               ": stream ended: " + status.error_message());
  }

  // Returns why it stopped reading, or nullopt when the stream itself ended.
  std::optional<Status> ReadEvents(
      grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>* stream,
      const Endpoint& endpoint, bool* progressed, bool* need_snapshot) {
    pb::WatchResponse response;
    while (!stop_.load() && stream->Read(&response)) {
      if (response.compact_revision() > 0) {
        // History we had not seen yet was compacted away: re-read the range instead.
        *need_snapshot = true;
        return Status(ErrorCode::kInvalidParams, "history before revision " +
                                                     std::to_string(response.compact_revision()) +
                                                     " was compacted; re-reading");
      }
      if (response.canceled()) {
        return Status(
            ErrorCode::kInternal,
            "etcd at " + endpoint.address + " cancelled the watch: " + response.cancel_reason());
      }
      if (response.created()) {
        // A watch from "now" resumes after the revision it was created at.
        if (next_revision_ == 0) next_revision_ = response.header().revision() + 1;
        *progressed = true;
        continue;
      }
      Deliver(response);
      *progressed = true;
    }
    if (stop_.load()) return Status::Ok();
    return std::nullopt;
  }

  void Deliver(const pb::WatchResponse& response) {
    WatchBatch batch;
    for (const auto& event : response.events()) {
      WatchEvent out;
      out.type = event.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                       : WatchEvent::Type::kPut;
      out.kv = FromProto(event.kv());
      next_revision_ = std::max(next_revision_, out.kv.mod_revision + 1);
      batch.revision = out.kv.mod_revision;
      batch.events.push_back(std::move(out));
    }
    if (!batch.events.empty() && !stop_.load()) callback_(batch);
  }

  EtcdClient* const client_;
  EtcdClient::Impl* const impl_;
  const WatchOptions options_;
  const WatchCallback callback_;
  int64_t next_revision_;  // watch thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* active_context_ = nullptr;  // guarded by mu_
};

class WatchHandleImpl : public WatchHandle {
 public:
  explicit WatchHandleImpl(std::shared_ptr<WatchWorker> worker) : worker_(std::move(worker)) {}
  ~WatchHandleImpl() override { Cancel(); }
  void Cancel() override {
    if (worker_ != nullptr) worker_->Cancel();
    worker_.reset();
  }

 private:
  std::shared_ptr<WatchWorker> worker_;
};

}  // namespace

StatusOr<std::unique_ptr<KeepAliveStream>> EtcdClient::OpenKeepAlive(int64_t lease_id,
                                                                     uint32_t connect_timeout_ms) {
  if (connect_timeout_ms == 0) connect_timeout_ms = impl_->options.connect_timeout_ms;
  StatusOr<size_t> index = impl_->ConnectForStream(connect_timeout_ms, nullptr);
  if (!index.ok()) return index.status();
  return std::unique_ptr<KeepAliveStream>(
      new KeepAliveStreamImpl(impl_->endpoints[index.value()], lease_id));
}

StatusOr<std::unique_ptr<WatchHandle>> EtcdClient::Watch(WatchOptions options,
                                                         WatchCallback callback) {
  if (options.key.empty()) return Status(ErrorCode::kInvalidParams, "etcd Watch: empty key");
  if (!callback) return Status(ErrorCode::kInvalidParams, "etcd Watch: no callback");
  if (options.start_revision < 0) {
    return Status(ErrorCode::kInvalidParams, "etcd Watch: negative start revision");
  }
  auto worker =
      std::make_shared<WatchWorker>(this, impl_.get(), std::move(options), std::move(callback));
  worker->Start();
  return std::unique_ptr<WatchHandle>(new WatchHandleImpl(std::move(worker)));
}

}  // namespace tandem::coord
