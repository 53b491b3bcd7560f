#include "server/http_server.h"

#include <httplib.h>

#include <chrono>

#include "server/config.h"

namespace tandem::server {
namespace {

constexpr int kWorkerThreads = 2;  // scrapes and probes are rare; leave the cores to gRPC

}  // namespace

HttpServer::HttpServer(HttpHandlers handlers)
    : handlers_(std::move(handlers)), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  // httplib's default sets SO_REUSEPORT, which would let a second master silently share the
  // port; SO_REUSEADDR alone still allows a quick restart.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  RegisterRoutes();
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::RegisterRoutes() {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(handlers_.metrics_text(), "text/plain; version=0.0.4");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    const bool ready = handlers_.ready();
    response.status = ready ? 200 : 503;
    response.set_content(ready ? "ready" : "not ready", "text/plain");
  });
  if (handlers_.test_fault) {  // TEST ONLY: --enable-test-faults
    server_->Post(
        "/test/fault", [this](const httplib::Request& request, httplib::Response& response) {
          std::string error =
              handlers_.test_fault(request.get_param_value("kind"), request.get_param_value("key"));
          response.status = error.empty() ? 200 : 400;
          response.set_content(error.empty() ? "ok\n" : error + "\n", "text/plain");
        });
  }
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(handlers_.status_json(), "application/json");
  });
}

Status HttpServer::Start(const std::string& address) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port)) {
    return Status(ErrorCode::kInvalidParams, "invalid HTTP address '" + address + "'");
  }
  const int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return Status(ErrorCode::kUnavailable,
                  "cannot bind HTTP address " + address + " (in use, or not a local address)");
  }
  port_ = bound;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so wait for it (bounded) to make
  // a Stop right after Start reliable.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace tandem::server
