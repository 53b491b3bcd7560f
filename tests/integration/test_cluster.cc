#include "test_cluster.h"

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

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace tandem::testing {

namespace {

using Clock = std::chrono::steady_clock;

// argv/envp as exec wants them; built before fork (the child may only make async-signal-safe
// calls: this process has other threads).
struct ExecArgs {
  std::vector<std::string> storage;
  std::vector<char*> argv, envp;

  ExecArgs(const ProcessSpec& spec) {
    storage.push_back(spec.binary);
    storage.insert(storage.end(), spec.args.begin(), spec.args.end());
    const size_t argc = storage.size();
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      bool overridden = false;
      for (const auto& [k, v] : spec.env) overridden |= entry.rfind(k + "=", 0) == 0;
      if (!overridden) storage.push_back(entry);
    }
    for (const auto& [k, v] : spec.env) storage.push_back(k + "=" + v);
    for (size_t i = 0; i < storage.size(); ++i) {
      (i < argc ? argv : envp).push_back(storage[i].data());
    }
    argv.push_back(nullptr);
    envp.push_back(nullptr);
  }
};

// In the child: die with the spawning thread, wire fds, exec. Never returns.
[[noreturn]] void ExecChild(const ExecArgs& exec, pid_t parent, int out_fd, int err_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_fd >= 0 ? out_fd : null_fd, 1);
  dup2(err_fd >= 0 ? err_fd : null_fd, 2);
  execve(exec.argv[0], exec.argv.data(), exec.envp.data());
  _exit(127);
}

int ConnectLoopback(int port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty() || getenv("TANDEM_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int PickFreePort() {
  // Below the kernel's ephemeral range (32768+ here): a port the kernel hands out can be taken
  // by any outgoing connection of a test running in parallel before our process binds it.
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 random(static_cast<unsigned>(getpid()) * 2654435761u ^
                             static_cast<unsigned>(time(nullptr)));
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = 10000 + static_cast<int>(random() % 22000);  // 10000..31999
    if (handed_out.count(port) > 0) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) {
      handed_out.insert(port);
      return port;
    }
  }
  return -1;
}

bool PortAcceptsConnections(int port) {
  int fd = ConnectLoopback(port, 200);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::unique_ptr<Process> Process::Start(const ProcessSpec& spec, std::string* error) {
  ExecArgs exec(spec);
  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      if (error != nullptr) *error = "open " + spec.log_path + ": " + strerror(errno);
      return nullptr;
    }
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(exec, parent, log_fd, log_fd);
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) {
    if (error != nullptr) *error = std::string("fork: ") + strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<Process>(new Process(spec, pid));
}

Process::~Process() {
  if (Running()) Stop();
}

bool Process::Running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    exited_ = true;
    exit_status_ = status;
  }
  return !exited_;
}

void Process::Signal(int signal) {
  if (!exited_) kill(pid_, signal);
}

bool Process::WaitExit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Running()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return exit_status_;
  kill(pid_, SIGCONT);  // a stopped child cannot handle SIGTERM
  kill(pid_, SIGTERM);
  if (!WaitExit(grace)) {
    kill(pid_, SIGKILL);
    WaitExit(std::chrono::milliseconds(10000));
  }
  return exit_status_;
}

std::string Process::LogTail(size_t max_bytes) const {
  std::ifstream in(spec_.log_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
}

std::optional<std::string> SendRaw(int port, const std::string& bytes, int timeout_ms) {
  int fd = ConnectLoopback(port, timeout_ms);
  if (fd < 0) return std::nullopt;
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;  // EOF, error or SO_RCVTIMEO
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

std::optional<HttpResponse> HttpGet(int port, const std::string& path, int timeout_ms) {
  auto raw =
      SendRaw(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
              timeout_ms);
  if (!raw || raw->rfind("HTTP/", 0) != 0) return std::nullopt;
  HttpResponse response;
  const size_t space = raw->find(' ');
  if (space == std::string::npos) return std::nullopt;
  response.status = atoi(raw->c_str() + space + 1);
  const size_t split = raw->find("\r\n\r\n");
  response.headers = raw->substr(0, split);
  if (split != std::string::npos) response.body = raw->substr(split + 4);
  return response;
}

bool WaitUntil(const std::function<bool()>& ready, int tries, std::chrono::milliseconds interval) {
  for (int i = 0; i < tries; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(interval);
  }
  return false;
}

CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout) {
  CommandResult result;
  ExecArgs exec(ProcessSpec{binary, args, {}, ""});
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(exec, parent, out_pipe[1], err_pipe[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  const auto deadline = Clock::now() + timeout;
  int open_fds = pid > 0 ? 2 : 0;
  while (open_fds > 0 && Clock::now() < deadline) {
    if (poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  if (pid < 0) return result;
  Process child(ProcessSpec{binary, args, {}, ""}, pid);
  if (!child.WaitExit(std::max(
          std::chrono::milliseconds(100),
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())))) {
    child.Stop(std::chrono::milliseconds(100));
    return result;
  }
  if (WIFEXITED(child.exit_status())) result.exit_code = WEXITSTATUS(child.exit_status());
  return result;
}

MasterProcess::MasterProcess(std::string binary, std::string work_dir, MasterOptions options)
    : binary_(std::move(binary)), options_(std::move(options)) {
  data_dir_ = work_dir + "/" + options_.node_id + "-data";
  log_path_ = work_dir + "/" + options_.node_id + ".log";
}

MasterProcess::~MasterProcess() { Stop(); }

bool MasterProcess::Start(std::string* error) {
  grpc_port_ = PickFreePort();
  http_port_ = PickFreePort();
  return Restart(error);
}

bool MasterProcess::Restart(std::string* error) {
  if (process_) process_->Stop();
  std::error_code ec;
  std::filesystem::create_directories(data_dir_, ec);
  std::vector<std::string> args = {
      "--listen",   address(), "--http",    "127.0.0.1:" + std::to_string(http_port_),
      "--data-dir", data_dir_, "--node-id", options_.node_id};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::string spawn_error;
  process_ = Process::Start(ProcessSpec{binary_, args, options_.env, log_path_}, &spawn_error);
  if (!process_) {
    if (error != nullptr) *error = spawn_error;
    return false;
  }
  const bool ready = WaitUntil([&] {
    if (!process_->Running()) return true;  // exited: stop waiting, reported below
    auto health = HttpGet(http_port_, "/healthz", 200);
    return health && health->status == 200 && PortAcceptsConnections(grpc_port_);
  });
  if (ready && process_->Running()) return true;
  if (error != nullptr) {
    *error = std::string(ready ? "tandem-master exited during start-up"
                               : "tandem-master not ready after 5 s") +
             "; log tail:\n" + process_->LogTail();
  }
  return false;
}

int MasterProcess::Stop(std::chrono::milliseconds grace) {
  return process_ ? process_->Stop(grace) : 0;
}

}  // namespace tandem::testing
