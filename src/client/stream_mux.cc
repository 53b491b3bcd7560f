#include "client/stream_mux.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

#include "client/convert.h"

namespace tandem::client_internal {

// One caller waiting for its response. Lives on the caller's stack; the stream only touches it
// while it is registered in StreamConn::in_flight_ (the caller unregisters before leaving).
struct PendingCall {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  v1::StreamResponse response;

  void Complete(Status s, v1::StreamResponse* r) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    if (r != nullptr) response.Swap(r);
    done = true;
    cv.notify_one();
  }
};

// One bidi stream. Owned by its Slot (and, briefly, by callers using it) until after gRPC's
// OnDone; never destroyed from a reaction: destroying it drops its ClientContext, which may hold
// the last reference to the channel, and a channel must not be destroyed on a gRPC callback
// thread (grpc/grpc#32584: the callback queue's threads would join themselves).
//
// Holds: the reactor takes one hold at open and drops it once the read side has ended and no
// write is in progress. While the hold is held OnDone cannot run, so Send may start a write
// from a caller's thread; StartWrite is never called with mu_ held (a reaction may run inline).
class StreamConn final : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  static std::shared_ptr<StreamConn> Open(v1::Master::Stub* stub) {
    std::shared_ptr<StreamConn> conn(new StreamConn());
    stub->async()->Stream(&conn->context_, conn.get());
    conn->AddHold();
    conn->StartRead(&conn->read_msg_);
    conn->StartCall();
    return conn;
  }

  bool broken() {
    std::lock_guard<std::mutex> lock(mu_);
    return broken_;
  }

  // Registers `call` under `request.id()` and queues the request. False if the stream is broken.
  bool Send(v1::StreamRequest&& request, PendingCall* call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_) return false;
      in_flight_[request.id()] = call;
      if (writing_) {
        queue_.push_back(std::move(request));
        return true;
      }
      writing_ = true;
      write_msg_ = std::move(request);
    }
    StartWrite(&write_msg_);
    return true;
  }

  // Unregisters a call that gave up. False if its response is being delivered right now (the
  // caller must then wait for Complete).
  bool Forget(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_.erase(id) == 1;
  }

  void Cancel() { context_.TryCancel(); }

  void WaitFinished() {
    std::unique_lock<std::mutex> lock(mu_);
    finished_cv_.wait(lock, [this] { return finished_; });
  }

  bool finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::unique_lock<std::mutex> lock(mu_);
      broken_ = true;
      read_done_ = true;
      MaybeDropHold(lock);
      return;
    }
    PendingCall* call = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = in_flight_.find(read_msg_.id());
      if (it != in_flight_.end()) {
        call = it->second;
        in_flight_.erase(it);
      }
    }
    // An unknown id belongs to a caller that timed out: drop the response.
    if (call != nullptr) call->Complete(Status::Ok(), &read_msg_);
    StartRead(&read_msg_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok || broken_ || queue_.empty()) {
      if (!ok) broken_ = true;  // the read side will end too; OnDone fails the registered calls
      writing_ = false;
      MaybeDropHold(lock);
      return;
    }
    write_msg_ = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // No buffer_hint: a hinted write may not complete until a later flush, and the next write
    // starts only on completion (grpc/grpc#12975, #34231), so hints could stall the stream.
    StartWrite(&write_msg_);
  }

  void OnDone(const grpc::Status& status) override {
    std::unordered_map<uint64_t, PendingCall*> orphans;
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
      orphans.swap(in_flight_);
      queue_.clear();
    }
    Status failure = status.ok() ? Status(ErrorCode::kUnavailable, "stream closed by the master")
                                 : FromGrpc(status);
    for (auto& [id, call] : orphans) call->Complete(failure, nullptr);
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;  // from here on the owner may destroy this: touch nothing after unlocking
    finished_cv_.notify_all();
  }

 private:
  StreamConn() { context_.set_wait_for_ready(false); }

  void MaybeDropHold(std::unique_lock<std::mutex>& lock) {
    if (!read_done_ || writing_ || hold_dropped_) return;
    hold_dropped_ = true;
    lock.unlock();
    RemoveHold();
  }

  grpc::ClientContext context_;
  std::mutex mu_;
  bool broken_ = false;     // no new calls: the read or a write failed, or the call ended
  bool writing_ = false;    // a StartWrite is outstanding (or about to be issued)
  bool read_done_ = false;  // the read side has ended
  bool hold_dropped_ = false;
  bool finished_ = false;  // OnDone ran
  std::condition_variable finished_cv_;
  std::deque<v1::StreamRequest> queue_;
  std::unordered_map<uint64_t, PendingCall*> in_flight_;
  v1::StreamRequest write_msg_;  // owned by gRPC between StartWrite and OnWriteDone
  v1::StreamResponse read_msg_;  // owned by gRPC between StartRead and OnReadDone
};

// gRPC 1.51 tears down its process-wide callback completion queue, and joins its threads, when
// the last channel that used the callback API is destroyed; that teardown races with those
// threads ("assertion failed: prior > 0" in grpc_cq_internal_unref, hit by our tests as Clients
// came and went). Keeping the first such channel for the life of the process avoids it.
// Never destroyed. Volatile, so the pointer stays in memory where leak checkers find it.
std::shared_ptr<grpc::Channel>* volatile kept_callback_channel = nullptr;

void RetainCallbackChannel(const std::shared_ptr<grpc::Channel>& channel) {
  static std::once_flag once;
  std::call_once(once,
                 [&] { kept_callback_channel = new std::shared_ptr<grpc::Channel>(channel); });
}

StreamMux::StreamMux(const std::vector<std::shared_ptr<grpc::Channel>>& channels, uint32_t window)
    : window_(window == 0 ? 1 : window) {
  for (const auto& channel : channels) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->channel = channel;
    slots_.back()->stub = v1::Master::NewStub(channel);
  }
}

StreamMux::~StreamMux() {
  std::vector<std::shared_ptr<StreamConn>> conns;
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    if (slot->conn) conns.push_back(std::move(slot->conn));
    for (auto& conn : slot->retired) conns.push_back(std::move(conn));
  }
  for (auto& conn : conns) conn->Cancel();
  for (auto& conn : conns) conn->WaitFinished();
}

std::shared_ptr<StreamConn> StreamMux::Acquire(Slot& slot, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(slot.mu);
  if (!slot.window_free.wait_until(lock, deadline, [&] { return slot.in_flight < window_; })) {
    return nullptr;
  }
  ++slot.in_flight;
  if (!slot.conn || slot.conn->broken()) {
    std::erase_if(slot.retired, [](const auto& conn) { return conn->finished(); });
    if (slot.conn) slot.retired.push_back(std::move(slot.conn));
    slot.conn = StreamConn::Open(slot.stub.get());
    RetainCallbackChannel(slot.channel);
  }
  return slot.conn;
}

void StreamMux::Release(Slot& slot) {
  std::lock_guard<std::mutex> lock(slot.mu);
  --slot.in_flight;
  slot.window_free.notify_one();
}

StatusOr<v1::StreamResponse> StreamMux::Call(v1::StreamRequest request,
                                             Clock::time_point deadline) {
  Slot& slot = *slots_[next_slot_.fetch_add(1, std::memory_order_relaxed) % slots_.size()];
  std::shared_ptr<StreamConn> conn = Acquire(slot, deadline);
  if (!conn) return Status(ErrorCode::kUnavailable, "deadline exceeded waiting for stream window");
  struct ReleaseOnExit {
    StreamMux* mux;
    Slot& slot;
    ~ReleaseOnExit() { mux->Release(slot); }
  } release{this, slot};

  const uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  request.set_id(id);
  PendingCall call;
  if (!conn->Send(std::move(request), &call)) {
    return Status(ErrorCode::kUnavailable, "stream broken before send");
  }
  std::unique_lock<std::mutex> lock(call.mu);
  if (!call.cv.wait_until(lock, deadline, [&] { return call.done; })) {
    lock.unlock();
    if (conn->Forget(id)) return Status(ErrorCode::kUnavailable, "deadline exceeded (stream)");
    lock.lock();  // the response is being delivered: Complete is imminent
    call.cv.wait(lock, [&] { return call.done; });
  }
  if (!call.status.ok()) return call.status;
  return std::move(call.response);
}

}  // namespace tandem::client_internal
