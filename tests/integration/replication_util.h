// Helpers for replication integration tests: tandem-master nodes with explicit roles whose ports
// are chosen once and kept across restarts (a restarted standby comes back at the same address),
// each start on a fresh data dir unless Start(error, keep_data=true) restarts on the previous one.
//
// - ReplNode: Start (bounded wait for /healthz + the gRPC port), Kill9, Stop, /status as JSON,
//   GetStatus over gRPC. Stopped by PID only (Process).
// - ClientOf: a tandem::Client of one node.
// - ProcessWriter: a thread that keeps writing unique keys (PutStart + PutEnd, some Removes)
//   until stopped, and counts what was acknowledged.
// Every wait is bounded.
#pragma once

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client/client.h"
#include "test_cluster.h"

namespace tandem::testing {

inline std::unique_ptr<Client> ClientOf(const std::string& address,
                                        const std::string& client_id = "", bool streams = false,
                                        uint32_t timeout_ms = 3000) {
  ClientOptions options;
  options.address = address;
  options.client_id = client_id;
  options.use_streams = streams;
  options.timeout_ms = timeout_ms;
  return std::make_unique<Client>(options);
}

// A client that reports the first answer as is (no retry, no NOT_LEADER redirect): for tests of
// what one node answers.
inline std::unique_ptr<Client> NoRetryClientOf(const std::string& address,
                                               const std::string& client_id = "") {
  ClientOptions options;
  options.address = address;
  options.client_id = client_id;
  options.use_streams = false;
  options.timeout_ms = 3000;
  options.max_retry_ms = 0;
  return std::make_unique<Client>(options);
}

class ReplNode {
 public:
  // `args`: role flags and tuning (everything except --listen/--http/--data-dir/--node-id).
  // Ports: 0 picks a free one.
  ReplNode(std::string binary, std::string work_dir, std::string node_id,
           std::vector<std::string> args, int grpc_port = 0, int http_port = 0)
      : binary_(std::move(binary)),
        work_dir_(std::move(work_dir)),
        node_id_(std::move(node_id)),
        args_(std::move(args)),
        grpc_port_(grpc_port != 0 ? grpc_port : PickFreePort()),
        http_port_(http_port != 0 ? http_port : PickFreePort()) {
    log_path_ = work_dir_ + "/" + node_id_ + ".log";
  }
  ~ReplNode() { Stop(); }
  ReplNode(const ReplNode&) = delete;
  ReplNode& operator=(const ReplNode&) = delete;

  // Spawns on a fresh data dir (or, with keep_data, on the previous one: a restart that recovers
  // its state) and waits (<= 5 s) until /healthz answers and the gRPC port accepts connections.
  // Call from the test's main thread (children die with their spawner).
  bool Start(std::string* error = nullptr, bool keep_data = false) {
    Stop();
    if (!keep_data || data_dir_.empty()) {
      ++generation_;
      data_dir_ = work_dir_ + "/" + node_id_ + "-data-" + std::to_string(generation_);
    }
    std::error_code ec;
    std::filesystem::create_directories(data_dir_, ec);
    {
      std::ofstream log(log_path_, std::ios::app);
      log << "==== test: start #" << generation_ << " of " << node_id_ << " ====\n";
    }
    std::vector<std::string> args = {"--listen",   address(), "--http",    http_address(),
                                     "--data-dir", data_dir_, "--node-id", node_id_};
    args.insert(args.end(), args_.begin(), args_.end());
    std::string spawn_error;
    process_ = Process::Start(ProcessSpec{binary_, args, {}, log_path_}, &spawn_error);
    if (!process_) {
      if (error != nullptr) *error = spawn_error;
      return false;
    }
    const bool ready = WaitUntil([&] {
      if (!process_->Running()) return true;
      auto health = HttpGet(http_port_, "/healthz", 200);
      return health && health->status == 200 && PortAcceptsConnections(grpc_port_);
    });
    if (ready && process_->Running()) return true;
    if (error != nullptr) {
      *error = node_id_ + (ready ? ": exited during start-up" : ": not ready after 5 s") +
               "; log tail:\n" + LogTail();
    }
    return false;
  }

  // SIGKILL (no shutdown path at all) and reap.
  void Kill9() {
    if (!process_) return;
    process_->Signal(SIGKILL);
    process_->WaitExit(std::chrono::milliseconds(5000));
  }

  // Any other signal to this node only (SIGSTOP / SIGCONT to stall it).
  void Signal(int signal) {
    if (process_) process_->Signal(signal);
  }

  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) {
    return process_ ? process_->Stop(grace) : 0;
  }

  bool Running() { return process_ && process_->Running(); }

  // GET /status, parsed; nullopt when unreachable or not JSON.
  std::optional<nlohmann::json> StatusJson() const {
    auto response = HttpGet(http_port_, "/status", 1000);
    if (!response || response->status != 200) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(response->body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
  }

  // The GetStatus RPC (answered by every role).
  StatusOr<MasterStatus> RpcStatus() const {
    return ClientOf(address(), "", false, 2000)->GetStatus();
  }

  std::string LogTail(size_t max_bytes = 3000) const {
    std::ifstream in(log_path_, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
  }

  const std::string& node_id() const { return node_id_; }
  const std::string& data_dir() const { return data_dir_; }  // empty before the first Start
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::string http_address() const { return "127.0.0.1:" + std::to_string(http_port_); }
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  const std::string& binary() const { return binary_; }
  const std::vector<std::string>& args() const { return args_; }

 private:
  std::string binary_, work_dir_, node_id_;
  std::vector<std::string> args_;
  int grpc_port_, http_port_;
  std::string log_path_, data_dir_;
  int generation_ = 0;
  std::unique_ptr<Process> process_;
};

// A background writer of unique keys: PutStart + PutEnd of `prefix`-N (1 KiB), and every
// `remove_every`-th iteration a Remove of an earlier key. Counts acknowledged operations; stops
// on Stop() or after `max_ops` iterations. Transport errors are counted, not fatal.
class BackgroundWriter {
 public:
  BackgroundWriter(std::string address, std::string prefix, int remove_every = 5,
                   uint64_t max_ops = 200000)
      : client_(ClientOf(address, "writer-" + prefix, true, 2000)),
        prefix_(std::move(prefix)),
        remove_every_(remove_every),
        max_ops_(max_ops) {
    thread_ = std::thread([this] { Run(); });
  }
  ~BackgroundWriter() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t acked() const { return acked_.load(); }
  uint64_t errors() const { return errors_.load(); }

 private:
  void Run() {
    for (uint64_t i = 0; i < max_ops_ && !stop_; ++i) {
      const std::string key = prefix_ + "-" + std::to_string(i);
      if (client_->PutStart(key, 1024).ok() && client_->PutEnd(key).ok()) {
        ++acked_;
      } else {
        ++errors_;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (remove_every_ > 0 && i % static_cast<uint64_t>(remove_every_) == 0 && i >= 3) {
        if (!client_->Remove(prefix_ + "-" + std::to_string(i - 3)).ok()) ++errors_;
      }
    }
  }

  std::unique_ptr<Client> client_;
  std::string prefix_;
  int remove_every_;
  uint64_t max_ops_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_{0}, errors_{0};
  std::thread thread_;
};

}  // namespace tandem::testing
