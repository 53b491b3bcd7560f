// Real etcd for integration tests: 1 or 3 members on free 127.0.0.1 ports, data on tmpfs
// (/dev/shm) without fsync, short raft timings (heartbeat 100 ms, election 500 ms: see
// docs/decisions.md), each member a Process stopped by PID.
#pragma once

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "test_cluster.h"

namespace tandem::testing {

class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 1) : dir_(SharedMemoryDir()) {
    for (int i = 0; i < members; ++i) {
      client_ports_.push_back(PickFreePort());
      peer_ports_.push_back(PickFreePort());
    }
  }
  ~EtcdCluster() { StopAll(); }

  bool Start(std::string* error) {
    for (size_t i = 0; i < client_ports_.size(); ++i) {
      if (!StartMember(i, /*fresh=*/true, error)) return false;
    }
    for (size_t i = 0; i < client_ports_.size(); ++i) {
      if (!WaitUntil([&] { return PortAcceptsConnections(client_ports_[i]); }, 200)) {
        *error = "etcd member " + std::to_string(i) + " did not listen: " + members_[i]->LogTail();
        return false;
      }
    }
    // Until a write goes through (a raft leader exists).
    return WaitUntil(
               [&] {
                 return RunCommand("/usr/bin/etcdctl",
                                   {"--endpoints=" + Endpoints(), "put", "/tandem-test/ready", "1"},
                                   std::chrono::milliseconds(3000))
                            .exit_code == 0;
               },
               50, std::chrono::milliseconds(100)) ||
           (*error = "etcd has no leader", false);
  }

  // Restart member i on its data dir (it keeps its state).
  bool Restart(size_t i, std::string* error) {
    members_[i]->Stop(std::chrono::milliseconds(3000));
    return StartMember(i, /*fresh=*/false, error) &&
           WaitUntil([&] { return PortAcceptsConnections(client_ports_[i]); }, 200);
  }
  Process* member(size_t i) { return members_[i].get(); }
  size_t size() const { return client_ports_.size(); }

  // "127.0.0.1:P1,127.0.0.1:P2,..."
  std::string Endpoints() const {
    std::string out;
    for (int port : client_ports_) {
      if (!out.empty()) out += ",";
      out += "127.0.0.1:" + std::to_string(port);
    }
    return out;
  }
  std::string Endpoint(size_t i) const { return "127.0.0.1:" + std::to_string(client_ports_[i]); }

  // Index of the member that is the raft leader, -1 if unknown.
  int LeaderIndex() const {
    for (size_t i = 0; i < client_ports_.size(); ++i) {
      CommandResult r = RunCommand(
          "/usr/bin/etcdctl", {"--endpoints=" + Endpoint(i), "endpoint", "status", "-w", "fields"},
          std::chrono::milliseconds(3000));
      if (r.exit_code != 0) continue;
      std::string member_id, leader_id;
      size_t pos = r.out.find("\"MemberID\" : ");
      size_t lpos = r.out.find("\"Leader\" : ");
      if (pos == std::string::npos || lpos == std::string::npos) continue;
      member_id = r.out.substr(pos + 13, r.out.find('\n', pos) - pos - 13);
      leader_id = r.out.substr(lpos + 11, r.out.find('\n', lpos) - lpos - 11);
      if (member_id == leader_id) return static_cast<int>(i);
    }
    return -1;
  }

  void StopAll() {
    for (auto& member : members_) {
      if (member) member->Stop(std::chrono::milliseconds(3000));
    }
    if (!dir_.empty()) {
      std::string cmd = "rm -rf '" + dir_ + "'";
      if (std::system(cmd.c_str()) != 0) {
      }
    }
  }

 private:
  static std::string SharedMemoryDir() {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/tandem-it-etcd-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* made = mkdtemp(buf.data());
    return made != nullptr ? std::string(made) : base;
  }

  bool StartMember(size_t i, bool fresh, std::string* error) {
    std::string initial;
    for (size_t j = 0; j < peer_ports_.size(); ++j) {
      if (!initial.empty()) initial += ",";
      initial += "m" + std::to_string(j) + "=http://127.0.0.1:" + std::to_string(peer_ports_[j]);
    }
    const std::string client = "http://127.0.0.1:" + std::to_string(client_ports_[i]);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_ports_[i]);
    ProcessSpec spec;
    spec.binary = "/usr/bin/etcd";
    spec.args = {"--name=m" + std::to_string(i),
                 "--data-dir=" + dir_ + "/m" + std::to_string(i),
                 "--listen-client-urls=" + client,
                 "--advertise-client-urls=" + client,
                 "--listen-peer-urls=" + peer,
                 "--initial-advertise-peer-urls=" + peer,
                 "--initial-cluster=" + initial,
                 "--initial-cluster-token=tandem-it",
                 "--initial-cluster-state=new",
                 "--heartbeat-interval=100",
                 "--election-timeout=500",
                 "--unsafe-no-fsync",
                 "--logger=zap",
                 "--log-level=warn"};
    spec.log_path = dir_ + "/m" + std::to_string(i) + ".log";
    (void)fresh;
    auto process = Process::Start(spec, error);
    if (!process) return false;
    if (members_.size() <= i) members_.resize(i + 1);
    members_[i] = std::move(process);
    return true;
  }

  std::string dir_;
  std::vector<int> client_ports_;
  std::vector<int> peer_ports_;
  std::vector<std::unique_ptr<Process>> members_;
};

}  // namespace tandem::testing
