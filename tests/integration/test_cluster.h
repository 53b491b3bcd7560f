// Helpers for tests that run real processes (tandem-master, etcd, tandemctl, ...) on loopback.
//
// - TempDir: a fresh directory, removed on destruction (kept when TANDEM_KEEP_TEST_DIRS is set).
// - PickFreePort: a TCP port on 127.0.0.1 that was free a moment ago.
// - Process: one child (arbitrary argv, extra env, stdout+stderr to a log file), stopped by PID
//   only: SIGTERM, then SIGKILL after a bound. Children get SIGKILL if the spawning thread dies,
//   so a crashed test leaves nothing behind (spawn from a thread that lives as long as the test).
// - HttpGet / RunCommand / WaitUntil: small, bounded probes.
// - MasterProcess: a tandem-master on free ports with its own data dir, started and waited for.
// Every wait here is bounded; nothing blocks forever on a misbehaving child.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tandem::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "tandem-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Binds 127.0.0.1:0, reads the port back and closes. Ports handed out by this process are not
// handed out again.
int PickFreePort();

// True if a TCP connection to 127.0.0.1:port succeeds.
bool PortAcceptsConnections(int port);

struct ProcessSpec {
  std::string binary;
  std::vector<std::string> args;                         // without argv[0]
  std::vector<std::pair<std::string, std::string>> env;  // added to (or overriding) ours
  std::string log_path;  // stdout and stderr, appended; empty: /dev/null
};

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally (signal, timeout)
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs a command to completion (bounded by timeout; killed after it) and captures its output.
CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));

class Process {
 public:
  // Forks and execs; nullptr (with the reason in *error) if the spawn failed.
  static std::unique_ptr<Process> Start(const ProcessSpec& spec, std::string* error = nullptr);
  ~Process();  // Stop() if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const ProcessSpec& spec() const { return spec_; }
  // False once the child exited (reaps it; see exit_status()).
  bool Running();
  // Sends `signal` to this child only (e.g. SIGKILL, SIGSTOP, SIGCONT).
  void Signal(int signal);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the wait status (see <sys/wait.h>).
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // Waits up to `timeout` for the child to exit by itself.
  bool WaitExit(std::chrono::milliseconds timeout);
  int exit_status() const { return exit_status_; }
  // The last `max_bytes` of the log file.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  friend CommandResult RunCommand(const std::string&, const std::vector<std::string>&,
                                  std::chrono::milliseconds);
  Process(ProcessSpec spec, pid_t pid) : spec_(std::move(spec)), pid_(pid) {}
  ProcessSpec spec_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = 0;
};

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// One HTTP/1.0 request to 127.0.0.1:port; nullopt on a connect/read failure or timeout.
std::optional<HttpResponse> HttpGet(int port, const std::string& path, int timeout_ms = 1000);
// Sends raw bytes to 127.0.0.1:port and returns whatever comes back before EOF or the timeout.
std::optional<std::string> SendRaw(int port, const std::string& bytes, int timeout_ms = 1000);

// Polls `ready` up to `tries` times, `interval` apart. True as soon as it returns true.
bool WaitUntil(const std::function<bool()>& ready, int tries = 100,
               std::chrono::milliseconds interval = std::chrono::milliseconds(50));

struct MasterOptions {
  std::string node_id = "m1";
  std::vector<std::string> extra_args;  // e.g. {"--client-ttl-ms", "500"}
  std::vector<std::pair<std::string, std::string>> env;
};

class MasterProcess {
 public:
  // `binary` is tandem-master; data dir and log go under `work_dir`.
  MasterProcess(std::string binary, std::string work_dir, MasterOptions options = {});
  ~MasterProcess();

  // Spawns and waits until /healthz answers 200 and the gRPC port accepts connections (bounded:
  // 100 tries x 50 ms). On failure returns false and fills *error with the log tail.
  bool Start(std::string* error = nullptr);
  // Stops (if running) and starts again on the same ports and data dir.
  bool Restart(std::string* error = nullptr);
  // SIGTERM, then SIGKILL after `grace`. Returns the wait status.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  Process* process() { return process_.get(); }

 private:
  std::string binary_;
  MasterOptions options_;
  std::string data_dir_, log_path_;
  int grpc_port_ = 0, http_port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace tandem::testing
