#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace tandem::testing {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// ---- TcpProxy ----

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(0);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(listen_fd_, 64);
  thread_ = std::thread([this] { Loop(); });
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  thread_.join();
  CloseAll();
  close(listen_fd_);
}

void TcpProxy::DropAll(bool refuse) {
  refuse_.store(refuse);
  drop_.store(true);
  for (int i = 0; i < 100 && drop_.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void TcpProxy::CloseAll() {
  for (auto& [a, b] : pairs_) {
    close(a);
    close(b);
  }
  pairs_.clear();
}

void TcpProxy::Loop() {
  while (!stop_.load()) {
    if (drop_.load()) {
      CloseAll();
      drop_.store(false);
    }
    bool frozen = frozen_.load();
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
    if (!frozen) {
      for (auto& [a, b] : pairs_) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
    }
    if (poll(fds.data(), fds.size(), 20) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int in = accept(listen_fd_, nullptr, nullptr);
      int out = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in target = Loopback(target_port_);
      if (in >= 0 && !refuse_.load() &&
          connect(out, reinterpret_cast<sockaddr*>(&target), sizeof(target)) == 0) {
        pairs_.push_back({in, out});
      } else {
        if (in >= 0) close(in);
        close(out);
      }
    }
    // Move bytes for the pairs that were polled (one accepted just now waits for the next turn);
    // a closed side closes the pair.
    size_t polled = (fds.size() - 1) / 2;
    std::vector<std::pair<int, int>> alive;
    for (size_t i = 0; i < pairs_.size(); ++i) {
      bool open = true;
      for (int side = 0; i < polled && side < 2 && open; ++side) {
        const pollfd& p = fds[1 + 2 * i + side];
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = side == 0 ? pairs_[i].first : pairs_[i].second;
        int to = side == 0 ? pairs_[i].second : pairs_[i].first;
        char buffer[65536];
        ssize_t n = read(from, buffer, sizeof(buffer));
        open = n > 0 && send(to, buffer, n, MSG_NOSIGNAL) == n;
      }
      if (open) {
        alive.push_back(pairs_[i]);
      } else {
        close(pairs_[i].first);
        close(pairs_[i].second);
      }
    }
    pairs_ = std::move(alive);
  }
}

}  // namespace tandem::testing
