#include "server/stream_reactor.h"

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include "server/proto_convert.h"

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Rpc RpcOf(v1::StreamRequest::OpCase op) {
  switch (op) {
    case v1::StreamRequest::kPutStart:
      return Rpc::kStreamPutStart;
    case v1::StreamRequest::kPutEnd:
      return Rpc::kStreamPutEnd;
    case v1::StreamRequest::kPutRevoke:
      return Rpc::kStreamPutRevoke;
    case v1::StreamRequest::kGetReplicaList:
      return Rpc::kStreamGetReplicaList;
    case v1::StreamRequest::kExistKey:
      return Rpc::kStreamExistKey;
    case v1::StreamRequest::kRemove:
      return Rpc::kStreamRemove;
    case v1::StreamRequest::OP_NOT_SET:
      break;
  }
  return Rpc::kStream;
}

Completion Execute(RequestExecutor* executor, const v1::StreamRequest& request,
                   v1::StreamResponse* response) {
  const Rpc rpc = RpcOf(request.op_case());
  switch (request.op_case()) {
    case v1::StreamRequest::kPutStart:
      return executor->PutStart(rpc, request.put_start(), response->mutable_put_start());
    case v1::StreamRequest::kPutEnd:
      return executor->PutEnd(rpc, request.put_end(), response->mutable_put_end());
    case v1::StreamRequest::kPutRevoke:
      return executor->PutRevoke(rpc, request.put_revoke(), response->mutable_put_revoke());
    case v1::StreamRequest::kGetReplicaList:
      return executor->GetReplicaList(rpc, request.get_replica_list(),
                                      response->mutable_get_replica_list());
    case v1::StreamRequest::kExistKey:
      return executor->ExistKey(rpc, request.exist_key(), response->mutable_exist_key());
    case v1::StreamRequest::kRemove:
      return executor->Remove(rpc, request.remove(), response->mutable_remove());
    case v1::StreamRequest::OP_NOT_SET:
      break;
  }
  return Completion::kNow;  // unreachable: the caller rejects OP_NOT_SET
}

v1::Status* MutableResultStatus(v1::StreamResponse* response) {
  switch (response->result_case()) {
    case v1::StreamResponse::kPutStart:
      return response->mutable_put_start()->mutable_status();
    case v1::StreamResponse::kPutEnd:
      return response->mutable_put_end()->mutable_status();
    case v1::StreamResponse::kPutRevoke:
      return response->mutable_put_revoke()->mutable_status();
    case v1::StreamResponse::kGetReplicaList:
      return response->mutable_get_replica_list()->mutable_status();
    case v1::StreamResponse::kExistKey:
      return response->mutable_exist_key()->mutable_status();
    case v1::StreamResponse::kRemove:
      return response->mutable_remove()->mutable_status();
    case v1::StreamResponse::RESULT_NOT_SET:
      break;
  }
  return nullptr;
}

class StreamReactor final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  explicit StreamReactor(RequestExecutor* executor) : executor_(executor) {
    executor_->metrics()->CountRequest(Rpc::kStream);
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  void HoldUntilCommitted(std::unique_lock<std::mutex> lock, v1::StreamResponse response, Rpc rpc,
                          Clock::time_point start);
  // Decides under the lock what to start next (a write, a read, or Finish), then starts it
  // after unlocking: gRPC may run a reaction inline, which takes the lock again.
  void Pump(std::unique_lock<std::mutex> lock);
  bool stopping() const { return cancelled_ || !error_.ok(); }

  RequestExecutor* const executor_;
  v1::StreamRequest request_;  // owned by gRPC while reading_

  std::mutex mu_;
  // Responses to write; the front is in flight while writing_. A deque keeps the front's
  // address stable while others are appended.
  std::deque<v1::StreamResponse> queue_;
  size_t awaiting_commit_ = 0;  // executed writes whose response the WriteGate still holds
  bool reading_ = false;
  bool writing_ = false;
  bool reads_done_ = false;  // the client half-closed (or the stream broke)
  bool paused_ = false;      // reading stopped by backpressure
  bool cancelled_ = false;   // cancelled, or a write failed: drop what is left
  bool finished_ = false;
  grpc::Status error_;  // set for a malformed request
};

void StreamReactor::OnReadDone(bool ok) {
  if (!ok) {
    std::unique_lock<std::mutex> lock(mu_);
    reading_ = false;
    reads_done_ = true;
    Pump(std::move(lock));
    return;
  }
  // reading_ stays true while the request executes (unlocked): it keeps the stream from
  // finishing, and the reactor from being deleted, under our feet.
  if (request_.op_case() == v1::StreamRequest::OP_NOT_SET) {
    std::unique_lock<std::mutex> lock(mu_);
    reading_ = false;
    error_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "stream request " + std::to_string(request_.id()) + " has no operation");
    Pump(std::move(lock));
    return;
  }
  const Rpc rpc = RpcOf(request_.op_case());
  const Clock::time_point start = Clock::now();
  executor_->metrics()->CountRequest(rpc);
  v1::StreamResponse response;
  response.set_id(request_.id());
  const Completion completion = Execute(executor_, request_, &response);
  std::unique_lock<std::mutex> lock(mu_);
  reading_ = false;
  if (completion == Completion::kAfterCommit) {
    HoldUntilCommitted(std::move(lock), std::move(response), rpc, start);
    return;
  }
  executor_->metrics()->ObserveLatency(rpc, SecondsSince(start));
  queue_.push_back(std::move(response));
  Pump(std::move(lock));
}

void StreamReactor::HoldUntilCommitted(std::unique_lock<std::mutex> lock,
                                       v1::StreamResponse response, Rpc rpc,
                                       Clock::time_point start) {
  // Counted under the lock that released the read: the stream cannot finish while held.
  ++awaiting_commit_;
  Pump(std::move(lock));  // keep reading while the write waits: the point of pipelining
  auto held = std::make_shared<v1::StreamResponse>(std::move(response));
  const uint64_t position = executor_->CommitPosition();
  // Last statement: `done` may run inline, release the stream, and let gRPC delete us.
  executor_->write_gate()->AwaitCommit(position, [this, held, rpc, start](Status committed) {
    if (!committed.ok()) {
      ReplaceOkStatuses(committed, MutableResultStatus(held.get()));
      executor_->metrics()->CountError(rpc, committed.code());
    }
    executor_->metrics()->ObserveLatency(rpc, SecondsSince(start));
    std::unique_lock<std::mutex> relock(mu_);
    --awaiting_commit_;
    queue_.push_back(std::move(*held));
    Pump(std::move(relock));
  });
}

void StreamReactor::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  writing_ = false;
  queue_.pop_front();
  if (!ok) cancelled_ = true;  // the client is gone: nothing more can be delivered
  Pump(std::move(lock));
}

void StreamReactor::OnCancel() {
  std::unique_lock<std::mutex> lock(mu_);
  cancelled_ = true;
  Pump(std::move(lock));
}

void StreamReactor::Pump(std::unique_lock<std::mutex> lock) {
  const v1::StreamResponse* to_write = nullptr;
  bool start_read = false;
  bool finish = false;
  if (!finished_) {
    if (stopping() && !writing_) queue_.clear();
    if (!writing_ && !queue_.empty()) {
      writing_ = true;
      to_write = &queue_.front();
    }
    const size_t backlog = queue_.size() + awaiting_commit_;
    if (backlog >= kMaxStreamBacklog) paused_ = true;
    if (backlog <= kMaxStreamBacklog / 2) paused_ = false;
    if (!reading_ && !reads_done_ && !paused_ && !stopping()) {
      reading_ = true;
      start_read = true;
    }
    // Every read and write must have completed (and no response be held) before Finish: after
    // it gRPC may delete this reactor at any moment.
    finish = !reading_ && !writing_ && awaiting_commit_ == 0 &&
             (stopping() || (reads_done_ && queue_.empty()));
    finished_ = finish;
  }
  grpc::Status final_status;
  if (finish) final_status = error_;
  lock.unlock();
  if (start_read) StartRead(&request_);
  if (to_write != nullptr) StartWrite(to_write);
  if (finish) Finish(final_status);
}

}  // namespace

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* NewStreamReactor(
    RequestExecutor* executor) {
  return new StreamReactor(executor);
}

}  // namespace tandem::server
