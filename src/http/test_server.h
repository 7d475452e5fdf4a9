#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace backout::http::testing {

// An httplib server on 127.0.0.1 with a port the kernel picks, serving on its own thread. Register
// handlers on server() before Start(); the destructor stops the server and joins the thread.
class LocalServer {
 public:
  // A plain HTTP server.
  LocalServer();
  // An HTTPS server; when client_ca_file is not empty, it requires a client certificate signed
  // by that CA.
  LocalServer(const std::string& cert_file, const std::string& key_file,
              const std::string& client_ca_file = "");
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  httplib::Server& server() { return *server_; }

  // Binds, starts serving and waits until the server accepts connections. Fails the test (and
  // returns false) when it cannot.
  bool Start();

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" + path, or https for a TLS server.
  std::string Url(const std::string& path) const;

  // True once the destructor runs: handlers that stall on purpose poll it to end early.
  bool stopping() const { return stopping_.load(); }

 private:
  std::unique_ptr<httplib::Server> server_;
  bool tls_ = false;
  int port_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

// Returns a loopback port with nothing listening on it, for connection-refused cases. Another
// process could take the port in between; that race is accepted in tests.
int UnusedLoopbackPort();

}  // namespace backout::http::testing
