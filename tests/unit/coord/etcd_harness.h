// Test harness: real etcd processes on free 127.0.0.1 ports (data in /dev/shm, no fsync), a TCP
// proxy that can freeze or cut connections, and small waiting helpers.
//
// Every process is started by fork/exec with PR_SET_PDEATHSIG, stopped by PID (SIGTERM, then
// SIGKILL after a bound) and reaped, so no etcd survives the test process, even a crashed one.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coord/etcd_client.h"
#include "tcp_proxy.h"

namespace tandem::coord::testing {

int FreePort();
// Polls `condition` every 10 ms until it holds or timeout_ms passed; returns its last value.
bool WaitFor(const std::function<bool()>& condition, int timeout_ms);
uint64_t NowMs();  // steady

class EtcdProcess {
 public:
  struct Config {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string initial_cluster;  // "n0=http://127.0.0.1:P0,..."
    std::string token;
    std::string data_dir;
    std::string log_path;
    std::vector<std::string> extra_args;
  };
  explicit EtcdProcess(Config config) : config_(std::move(config)) {}
  ~EtcdProcess() { Stop(); }

  bool Spawn();
  // Until a linearizable read succeeds (the member has a raft leader), the process exits, or the
  // timeout passes.
  bool WaitReady(int timeout_ms);
  void Stop();  // SIGTERM, SIGKILL after 3 s; reaps
  void Kill();  // SIGKILL; reaps
  void Pause();
  void Resume();
  bool running() const { return pid_ > 0; }
  bool Exited();
  pid_t pid() const { return pid_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(config_.client_port); }
  std::string LogTail() const;

 private:
  Config config_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

class EtcdCluster {
 public:
  // Starts `members` (1 or 3) etcd processes and waits until each answers; nullptr (with the
  // reason in *error) if that fails three times. extra_args go to every member.
  static std::unique_ptr<EtcdCluster> Start(int members, std::string* error,
                                            const std::vector<std::string>& extra_args = {});
  ~EtcdCluster();

  std::vector<std::string> endpoints() const;
  std::string endpoint(int i = 0) const { return members_[i]->endpoint(); }
  EtcdProcess& member(int i) { return *members_[i]; }
  int size() const { return static_cast<int>(members_.size()); }
  // Index of the raft leader (asks `etcdctl endpoint status`), -1 if none is known.
  int LeaderIndex();

 private:
  std::string base_dir_;
  std::vector<std::unique_ptr<EtcdProcess>> members_;
};

// A client with short timeouts (500 ms calls, 500 ms connects), no probe.
std::unique_ptr<EtcdClient> Connect(const std::vector<std::string>& endpoints);

// The proxy lives in tests/common (the chaos harness uses it too).
using TcpProxy = tandem::testing::TcpProxy;

// Listens on a free 127.0.0.1 port and never accepts: connects succeed (kernel backlog), then
// silence, like a hung or partitioned server.
class SilentServer {
 public:
  SilentServer();
  ~SilentServer();
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A fixture with a fresh single-member etcd per test.
class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    etcd_ = EtcdCluster::Start(1, &error);
    ASSERT_NE(etcd_, nullptr) << error;
    client_ = Connect(etcd_->endpoints());
  }
  void TearDown() override {
    client_.reset();
    etcd_.reset();
  }

  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

}  // namespace tandem::coord::testing
