// tandem-master: one Tandem metadata master (standalone, primary/standby by flag, or elected
// through etcd). Parses flags and the optional YAML file, starts the node, and runs until SIGINT
// or SIGTERM, then shuts down gracefully (a leader hands over first).
// Exit codes: 0 after a clean stop (or --help), 1 when the node cannot start, 2 for bad config.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <iostream>

#include "server/config.h"
#include "server/master_server.h"

int main(int argc, char** argv) {
  // No glibc fastbins. The state's small blocks are allocated by gRPC threads and freed in bulk
  // by others (a snapshot's image, a truncated OpLog window: millions at once); as fastbin
  // chunks they wait in their arena until its next large malloc consolidates them all, and a
  // gRPC thread that drew that malloc spun for seconds while new connections timed out. The
  // per-thread cache still serves small blocks fast (docs/decisions.md).
  mallopt(M_MXFAST, 0);
  using tandem::server::ConfigParseResult;
  const ConfigParseResult parsed = tandem::server::ParseMasterConfig(argc, argv);
  if (!parsed.config.has_value()) {
    if (parsed.exit_code == 0) {
      std::cout << parsed.message;
    } else {
      std::cerr << "tandem-master: " << parsed.message << "\n";
    }
    return parsed.exit_code;
  }
  const tandem::server::MasterConfig& config = *parsed.config;
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Block the stop signals before any thread exists, so every thread inherits the mask and
  // main receives them synchronously with sigwait (no async-signal-safety concerns).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tandem::server::MasterServer server(config);
  const tandem::Status started = server.Start();
  if (!started.ok()) {
    spdlog::error("tandem-master {} cannot start: {}", config.node_id, started.ToString());
    return 1;
  }
  spdlog::info("tandem-master {} serving as {}: listen={} http={} data_dir={}", config.node_id,
               config.etcd_leadership() ? "etcd-elected node" : config.role,
               server.listen_address(), server.http_address(), config.data_dir);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, shutting down gracefully", strsignal(signal_number));
  // In-flight calls get a short grace: a leader has already handed over (writes drained), and
  // idle client streams would otherwise hold the process for the whole default grace.
  server.Shutdown(std::chrono::milliseconds(1500));
  spdlog::info("tandem-master {} stopped", config.node_id);
  return 0;
}
