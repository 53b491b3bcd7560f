// TcpProxy: forwards 127.0.0.1:<port()> to 127.0.0.1:<target_port> on one thread, for fault
// injection between two real processes. Freeze() stops moving bytes while keeping connections
// open (a partition: the peer sees silence, not a reset); DropAll() closes them (a reset).
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tandem::testing {

// 127.0.0.1:port as a socket address.
sockaddr_in Loopback(int port);

class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  void Freeze(bool frozen) { frozen_.store(frozen); }
  // Closes every connection; with refuse, new ones are closed at once until Refuse(false).
  void DropAll(bool refuse);
  void Refuse(bool refuse) { refuse_.store(refuse); }

 private:
  void Loop();
  void CloseAll();

  int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> frozen_{false};
  std::atomic<bool> refuse_{false};
  std::atomic<bool> drop_{false};
  std::vector<std::pair<int, int>> pairs_;  // loop thread only
  std::thread thread_;
};

}  // namespace tandem::testing
