// The chaos workload: writer threads (put = PutStart + PutEnd of a unique key, every 5th step a
// Remove of an earlier acknowledged key) and a reader (ExistKey of acknowledged, removed and
// never-written keys), each with its own leader-following tandem::Client. Every operation is
// recorded as an Op with its times, outcome and the node/epoch that acknowledged it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "history.h"

namespace tandem::chaos {

uint64_t NowMs();  // steady

class Workload {
 public:
  // `make_options(client_id)` gives each thread's client options.
  Workload(std::function<ClientOptions(const std::string&)> make_options, int writers,
           std::string key_prefix, uint64_t seed);
  ~Workload();  // Stop()
  void Stop();

  // Snapshots while running are fine; after Stop() they are complete.
  std::vector<Op> Ops() const;
  uint64_t AckedWrites() const { return acked_writes_.load(); }

 private:
  void Write(int index);
  void ReadLoop();
  void Record(Op op);

  std::function<ClientOptions(const std::string&)> make_options_;
  std::string prefix_;
  uint64_t seed_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_writes_{0};
  mutable std::mutex mu_;
  std::vector<Op> ops_;
  std::vector<std::string> acked_keys_;    // acked puts, for the reader
  std::vector<std::string> removed_keys_;  // acked removes, for the reader
  std::vector<std::thread> threads_;
};

}  // namespace tandem::chaos
