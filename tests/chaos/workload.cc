#include "workload.h"

#include <chrono>

namespace tandem::chaos {
namespace {

// Refusals that prove the operation did not take effect; anything else (timeouts, FENCED,
// NOT_LEADER after retries, REPLICATION_TIMEOUT) may have been applied somewhere.
bool Definite(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidParams:
    case ErrorCode::kNoAvailableSpace:
    case ErrorCode::kObjectNotFound:
    case ErrorCode::kObjectAlreadyExists:
      return true;
    default:
      return false;
  }
}

}  // namespace

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Workload::Workload(std::function<ClientOptions(const std::string&)> make_options, int writers,
                   std::string key_prefix, uint64_t seed)
    : make_options_(std::move(make_options)), prefix_(std::move(key_prefix)), seed_(seed) {
  for (int i = 0; i < writers; ++i) threads_.emplace_back([this, i] { Write(i); });
  threads_.emplace_back([this] { ReadLoop(); });
}

Workload::~Workload() { Stop(); }

void Workload::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<Op> Workload::Ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

void Workload::Record(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  if (op.outcome == Outcome::kAcked && op.kind != OpKind::kRead) {
    ++acked_writes_;
    if (op.kind == OpKind::kPut) acked_keys_.push_back(op.key);
    if (op.kind == OpKind::kRemove) removed_keys_.push_back(op.key);
  }
  ops_.push_back(std::move(op));
}

void Workload::Write(int index) {
  Client client(make_options_(prefix_ + "w" + std::to_string(index)));
  std::vector<std::string> mine;  // acked, not yet removed
  // Bounded: at most 1 M steps, and stop_ ends it first in practice.
  for (uint64_t step = 0; step < 1000000 && !stop_; ++step) {
    Op op;
    const bool remove = step % 5 == 4 && !mine.empty();
    op.kind = remove ? OpKind::kRemove : OpKind::kPut;
    op.key =
        remove ? mine.front() : prefix_ + "w" + std::to_string(index) + "-" + std::to_string(step);
    op.invoke_ms = NowMs();
    Status status;
    if (remove) {
      mine.erase(mine.begin());
      status = client.Remove(op.key);
    } else {
      auto started = client.PutStart(op.key, 1024);
      status = started.ok() ? client.PutEnd(op.key) : started.status();
    }
    op.complete_ms = NowMs();
    if (status.ok()) {
      op.outcome = Outcome::kAcked;
      Client::ServedBy served = Client::LastServedBy();
      op.served_by = served.node_id;
      op.epoch = served.epoch;
      if (!remove) mine.push_back(op.key);
    } else {
      op.outcome = Definite(status.code()) ? Outcome::kFailed : Outcome::kUnknown;
    }
    Record(std::move(op));
  }
}

void Workload::ReadLoop() {
  Client client(make_options_(prefix_ + "reader"));
  std::mt19937_64 rng(seed_);
  for (uint64_t step = 0; step < 1000000 && !stop_; ++step) {
    Op op;
    op.kind = OpKind::kRead;
    const uint64_t pick = rng() % 3;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pick == 1 && !acked_keys_.empty()) {
        // Mostly recent keys: the ones a failover could lose.
        const size_t n = acked_keys_.size();
        op.key = acked_keys_[n - 1 - rng() % std::min<size_t>(n, 200)];
      } else if (pick == 2 && !removed_keys_.empty()) {
        const size_t n = removed_keys_.size();
        op.key = removed_keys_[n - 1 - rng() % std::min<size_t>(n, 200)];
      }
    }
    if (op.key.empty()) op.key = "ghost-" + std::to_string(rng() % 100000);
    op.invoke_ms = NowMs();
    StatusOr<bool> exists = client.ExistKey(op.key);
    op.complete_ms = NowMs();
    if (exists.ok()) {
      op.outcome = Outcome::kAcked;
      op.found = exists.value();
      Client::ServedBy served = Client::LastServedBy();
      op.served_by = served.node_id;
      op.epoch = served.epoch;
    }
    Record(std::move(op));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace tandem::chaos
