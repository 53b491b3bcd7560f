// Helpers for leadership tests: a cluster of one etcd (or three) and N tandem-master nodes that
// etcd elects among, and a writer that follows the leader through etcd and records every
// operation's outcome with its time. Every wait is bounded; every process is stopped by PID.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "etcd_cluster.h"
#include "replication_util.h"

namespace tandem::testing {

inline uint64_t SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class EtcdTandemCluster {
 public:
  EtcdTandemCluster(std::string work_dir, int nodes, std::vector<std::string> extra_args,
                    int etcd_members = 1, std::string cluster_id = "it")
      : work_dir_(std::move(work_dir)),
        cluster_id_(std::move(cluster_id)),
        etcd_(etcd_members),
        extra_args_(std::move(extra_args)) {
    for (int i = 0; i < nodes; ++i) node_ids_.push_back("n" + std::to_string(i + 1));
  }

  // Before Start: node i reaches etcd at endpoints(i) instead of etcd().Endpoints() (the chaos
  // harness puts proxies there).
  void SetNodeEtcdEndpoints(std::function<std::string(size_t)> endpoints) {
    node_etcd_endpoints_ = std::move(endpoints);
  }

  bool Start(std::string* error) {
    if (!etcd_.Start(error)) return false;
    for (size_t i = 0; i < node_ids_.size(); ++i) {
      nodes_.push_back(
          std::make_unique<ReplNode>(TANDEM_MASTER_BIN, work_dir_, node_ids_[i], NodeArgs(i)));
      if (!nodes_.back()->Start(error)) return false;
    }
    return true;
  }

  std::vector<std::string> NodeArgs(size_t i) const {
    std::vector<std::string> args = {
        "--cluster-id", cluster_id_, "--etcd-endpoints",
        node_etcd_endpoints_ ? node_etcd_endpoints_(i) : etcd_.Endpoints()};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    return args;
  }

  // Index of the node whose /status says it leads with a valid lease; -1 if none.
  int Leader() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Running()) continue;
      auto status = nodes_[i]->StatusJson();
      if (!status || !status->contains("leadership")) continue;
      if ((*status)["role"] == "leader" && (*status)["leadership"]["lease_valid"] == true) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  // Waits (bounded) for a leader other than `not_index`; returns its index or -1.
  int WaitLeader(int not_index, int timeout_ms) {
    int found = -1;
    WaitUntil(
        [&] {
          found = Leader();
          return found >= 0 && found != not_index;
        },
        timeout_ms / 20, std::chrono::milliseconds(20));
    return (found >= 0 && found != not_index) ? found : -1;
  }
  uint64_t Epoch(int i) {
    auto status = nodes_[i]->StatusJson();
    return status ? (*status)["epoch"].get<uint64_t>() : 0;
  }

  // Waits until every running node reports the same applied seq and state digest.
  bool WaitConverged(int timeout_ms, std::string* detail) {
    return WaitUntil(
        [&] {
          std::string digest;
          uint64_t seq = 0;
          bool first = true;
          detail->clear();
          for (auto& node : nodes_) {
            if (!node->Running()) continue;
            auto status = node->StatusJson();
            if (!status) return false;
            const std::string d = (*status)["state_digest"];
            const uint64_t s = (*status)["applied_seq"];
            *detail += node->node_id() + ": seq " + std::to_string(s) + " digest " + d + "; ";
            if (first) {
              digest = d;
              seq = s;
              first = false;
            } else if (d != digest || s != seq) {
              return false;
            }
          }
          return true;
        },
        timeout_ms / 50, std::chrono::milliseconds(50));
  }

  ClientOptions ClientOptionsForCluster(const std::string& client_id = "") const {
    ClientOptions options;
    options.etcd_endpoints = SplitEndpoints(etcd_.Endpoints());
    options.cluster_id = cluster_id_;
    options.client_id = client_id;
    options.use_streams = false;
    options.timeout_ms = 3000;
    options.max_retry_ms = 15000;
    return options;
  }

  static std::vector<std::string> SplitEndpoints(const std::string& csv) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= csv.size()) {
      size_t comma = csv.find(',', start);
      if (comma == std::string::npos) comma = csv.size();
      if (comma > start) out.push_back(csv.substr(start, comma - start));
      start = comma + 1;
    }
    return out;
  }

  ReplNode& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  size_t size() const { return nodes_.size(); }
  EtcdCluster& etcd() { return etcd_; }
  const std::string& cluster_id() const { return cluster_id_; }

 private:
  std::string work_dir_;
  std::string cluster_id_;
  EtcdCluster etcd_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> node_ids_;
  std::function<std::string(size_t)> node_etcd_endpoints_;
  std::vector<std::unique_ptr<ReplNode>> nodes_;
};

// Writes unique keys (PutStart + PutEnd) through a leader-following client until stopped, and
// records each key's outcome and the times of failures and successes.
class RecordingWriter {
 public:
  RecordingWriter(ClientOptions options, std::string prefix, uint64_t max_ops = 1000000)
      : client_(std::make_unique<Client>(std::move(options))),
        prefix_(std::move(prefix)),
        max_ops_(max_ops) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RecordingWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  struct Outcome {
    std::vector<std::string> acked;   // PutEnd acknowledged
    std::vector<std::string> failed;  // some step failed after the client's retries
    std::vector<std::string> errors;  // their messages
    uint64_t first_failure_ms = 0;    // steady; 0: none
    uint64_t last_failure_ms = 0;
    std::vector<uint64_t> success_ms;  // completion time of each acked op
  };
  Outcome Result() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcome_;
  }
  uint64_t acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcome_.acked.size();
  }
  Client& client() { return *client_; }

 private:
  void Run() {
    for (uint64_t i = 0; i < max_ops_ && !stop_; ++i) {
      const std::string key = prefix_ + "-" + std::to_string(i);
      auto put = client_->PutStart(key, 1024);
      Status status = put.ok() ? client_->PutEnd(key) : put.status();
      const uint64_t now = SteadyMs();
      std::lock_guard<std::mutex> lock(mu_);
      if (status.ok()) {
        outcome_.acked.push_back(key);
        outcome_.success_ms.push_back(now);
      } else {
        outcome_.failed.push_back(key);
        outcome_.errors.push_back(status.ToString());
        if (outcome_.first_failure_ms == 0) outcome_.first_failure_ms = now;
        outcome_.last_failure_ms = now;
      }
    }
  }

  std::unique_ptr<Client> client_;
  std::string prefix_;
  uint64_t max_ops_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Outcome outcome_;
  std::thread thread_;
};

}  // namespace tandem::testing
