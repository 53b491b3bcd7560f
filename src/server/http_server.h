// HttpServer: the node's operational HTTP endpoint (cpp-httplib, two worker threads).
//   /metrics  Prometheus text (text/plain; version=0.0.4)
//   /healthz  200 "ok" while the process serves
//   /readyz   200 "ready" when serving as leader or standalone, else 503 "not ready"
//   /status   JSON document of the node (see NodeStatusToJson)
// The handlers are plain functions so this file knows nothing of the store. httplib stays out
// of this header.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace tandem::server {

struct HttpHandlers {
  std::function<std::string()> metrics_text;
  std::function<bool()> ready;
  std::function<std::string()> status_json;
  // TEST ONLY (--enable-test-faults; unset otherwise, and then the route does not exist):
  // POST /test/fault?kind=K&key=KEY. Returns "" or an error line.
  std::function<std::string(const std::string& kind, const std::string& key)> test_fault;
};

class HttpServer {
 public:
  explicit HttpServer(HttpHandlers handlers);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `address` (host:port; port 0 picks a free one) and serves on a background thread.
  // INVALID_PARAMS for a malformed address, UNAVAILABLE when the port cannot be bound.
  Status Start(const std::string& address);
  int port() const { return port_; }
  // Stops accepting and joins the serving thread. Idempotent.
  void Stop();

 private:
  void RegisterRoutes();

  const HttpHandlers handlers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace tandem::server
