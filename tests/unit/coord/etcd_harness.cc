#include "etcd_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tandem::coord::testing {

namespace {

using tandem::testing::Loopback;  // tests/common/tcp_proxy.h

// waitpid with a bound; true if the child was reaped.
bool ReapWithin(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(0);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool WaitFor(const std::function<bool()>& condition, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

uint64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- EtcdProcess ----

bool EtcdProcess::Spawn() {
  std::string client = "http://127.0.0.1:" + std::to_string(config_.client_port);
  std::string peer = "http://127.0.0.1:" + std::to_string(config_.peer_port);
  std::vector<std::string> args = {"/usr/bin/etcd",
                                   "--name=" + config_.name,
                                   "--data-dir=" + config_.data_dir,
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=" + config_.initial_cluster,
                                   "--initial-cluster-token=" + config_.token,
                                   "--initial-cluster-state=new",
                                   "--unsafe-no-fsync",
                                   "--logger=zap",
                                   "--log-level=error"};
  args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Only async-signal-safe calls here: the parent has threads.
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    if (getppid() != parent) _exit(1);
    int fd = open(config_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  return true;
}

bool EtcdProcess::Exited() {
  if (pid_ <= 0) return true;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return true;
  }
  return false;
}

bool EtcdProcess::WaitReady(int timeout_ms) {
  auto client = Connect({endpoint()});
  return WaitFor([&] { return !Exited() && client->Range("/ready", false).ok(); }, timeout_ms);
}

void EtcdProcess::Stop() {
  if (pid_ <= 0) return;
  if (paused_) Resume();
  kill(pid_, SIGTERM);
  if (!ReapWithin(pid_, 3000)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

void EtcdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void EtcdProcess::Pause() {
  if (pid_ > 0 && kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void EtcdProcess::Resume() {
  if (pid_ > 0 && kill(pid_, SIGCONT) == 0) paused_ = false;
}

std::string EtcdProcess::LogTail() const {
  std::ifstream in(config_.log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

// ---- EtcdCluster ----

std::unique_ptr<EtcdCluster> EtcdCluster::Start(int members, std::string* error,
                                                const std::vector<std::string>& extra_args) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cluster = std::unique_ptr<EtcdCluster>(new EtcdCluster());
    char tmpl[] = "/dev/shm/tandem-coord-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      *error = "mkdtemp failed";
      return nullptr;
    }
    cluster->base_dir_ = tmpl;
    std::vector<EtcdProcess::Config> configs;
    std::string initial;
    for (int i = 0; i < members; ++i) {
      EtcdProcess::Config c;
      c.name = "e" + std::to_string(i);
      c.client_port = FreePort();
      c.peer_port = FreePort();
      c.data_dir = cluster->base_dir_ + "/" + c.name;
      c.log_path = cluster->base_dir_ + "/" + c.name + ".log";
      c.token = std::filesystem::path(cluster->base_dir_).filename();
      c.extra_args = extra_args;
      initial += (i ? "," : "") + c.name + "=http://127.0.0.1:" + std::to_string(c.peer_port);
      configs.push_back(c);
    }
    bool ok = true;
    for (auto& c : configs) {
      c.initial_cluster = initial;
      cluster->members_.push_back(std::make_unique<EtcdProcess>(c));
      ok = ok && cluster->members_.back()->Spawn();
    }
    for (auto& m : cluster->members_) ok = ok && m->WaitReady(15000);
    if (ok) return cluster;
    *error = "etcd did not become ready (attempt " + std::to_string(attempt + 1) +
             "): " + cluster->members_.front()->LogTail();
  }
  return nullptr;
}

EtcdCluster::~EtcdCluster() {
  for (auto& m : members_) m->Stop();
  std::error_code ec;
  if (!base_dir_.empty()) std::filesystem::remove_all(base_dir_, ec);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m->endpoint());
  return out;
}

int EtcdCluster::LeaderIndex() {
  std::string list;
  for (const auto& m : members_) {
    if (m->running()) list += (list.empty() ? "" : ",") + m->endpoint();
  }
  std::string command = "ETCDCTL_API=3 etcdctl --command-timeout=2s --endpoints=" + list +
                        " endpoint status -w json 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  auto json = nlohmann::json::parse(out, nullptr, false);
  if (!json.is_array()) return -1;
  for (const auto& entry : json) {
    const auto& status = entry["Status"];
    if (status["header"]["member_id"] != status["leader"]) continue;
    std::string address = entry["Endpoint"].get<std::string>();
    for (int i = 0; i < size(); ++i) {
      if (members_[i]->endpoint() == address) return i;
    }
  }
  return -1;
}

std::unique_ptr<EtcdClient> Connect(const std::vector<std::string>& endpoints) {
  EtcdOptions options;
  options.endpoints = endpoints;
  options.call_timeout_ms = 500;
  options.connect_timeout_ms = 500;
  options.probe = false;
  return std::move(EtcdClient::Create(options).value());
}

// ---- SilentServer ----

SilentServer::SilentServer() {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(0);
  bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(fd_, 16);
}

SilentServer::~SilentServer() { close(fd_); }

}  // namespace tandem::coord::testing
