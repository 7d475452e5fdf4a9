#include "http/test_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

namespace backout::http::testing {

namespace {

void Configure(httplib::Server& server) {
  server.set_tcp_nodelay(true);
  // Idle keep-alive connections hold a worker thread until this timeout, and stop() waits for
  // them, so keep it short.
  server.set_keep_alive_timeout(1);
}

}  // namespace

LocalServer::LocalServer() : server_(std::make_unique<httplib::Server>()) { Configure(*server_); }

LocalServer::LocalServer(const std::string& cert_file, const std::string& key_file,
                         const std::string& client_ca_file)
    : server_(std::make_unique<httplib::SSLServer>(
          cert_file.c_str(), key_file.c_str(),
          client_ca_file.empty() ? nullptr : client_ca_file.c_str())),
      tls_(true) {
  Configure(*server_);
}

LocalServer::~LocalServer() {
  stopping_ = true;
  server_->stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool LocalServer::Start() {
  if (!server_->is_valid()) {
    ADD_FAILURE() << "the test server is not valid (bad certificate or key?)";
    return false;
  }
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    ADD_FAILURE() << "the test server cannot bind to 127.0.0.1";
    return false;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });

  // httplib has no readiness signal; is_running turns true once the accept loop runs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the test server did not start within 5 s";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::string LocalServer::Url(const std::string& path) const {
  return fmt::format("{}://127.0.0.1:{}{}", tls_ ? "https" : "http", port_, path);
}

int UnusedLoopbackPort() {
  int socket_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(socket_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(socket_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(socket_fd);
  return port;
}

}  // namespace backout::http::testing
