#pragma once

#include <httplib.h>

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "core/clock.h"
#include "server/connection_limits.h"
#include "server/log_throttle.h"
#include "server/metrics.h"

namespace backout::server {

// Whether the request that this thread is reading passed ConnectionLimits::request_timeout. The
// connection loop reads each request and calls httplib's handlers on one thread, so an error
// handler can use it to tell a request cut off at its deadline from a malformed one.
bool RequestTimedOut();

// The state the connections of one server share: the limits, each client address's count of
// open connections, a stop signal that ends connections waiting for a request, and the metrics
// and throttled logs of closed connections. Thread-safe.
class ConnectionGuard {
 public:
  // Throws std::system_error when the stop signal (an eventfd) cannot be created.
  ConnectionGuard(ConnectionLimits limits, const core::Clock& clock, Metrics& metrics);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  const ConnectionLimits& limits() const { return limits_; }

  // Closes every connection that waits for a request, now and later. Requests being read or
  // handled finish first. Call it after httplib::Server::stop().
  void Stop();

  // A counted connection of one client address. The destructor releases it.
  class Admission {
   public:
    Admission(ConnectionGuard& guard, std::string address)
        : guard_(&guard), address_(std::move(address)) {}
    ~Admission();
    Admission(Admission&& other) noexcept;
    Admission(const Admission&) = delete;
    Admission& operator=(const Admission&) = delete;
    Admission& operator=(Admission&&) = delete;

   private:
    ConnectionGuard* guard_;
    std::string address_;
  };

  // Counts a new connection from `address`. Returns std::nullopt, and counts and logs the
  // rejection, when the address already has max_connections_per_client connections open.
  std::optional<Admission> Admit(const std::string& address);

  enum class Wait { kReadable, kIdle, kStopped };
  // Waits up to idle_timeout until `socket` has bytes to read or Stop() is called.
  Wait WaitForRequest(int socket) const;

  // Counts and logs a request cut off at request_timeout.
  void RecordTimeout(const std::string& address);

 private:
  void Release(const std::string& address);

  const ConnectionLimits limits_;
  Metrics& metrics_;
  LogThrottle timeout_logs_;
  LogThrottle rejection_logs_;
  int stop_event_ = -1;  // an eventfd that becomes readable at Stop()
  std::mutex mutex_;
  std::map<std::string, size_t, std::less<>> open_by_address_;
};

// Raises the backlog of a bound listening socket to SOMAXCONN. cpp-httplib 0.11.4 listens with a
// backlog of 5, so the kernel dropped the SYN of a connection that arrived while 6 waited for
// accept(), and the client retried a second later. Returns false when listen(2) fails.
bool WidenListenBacklog(int socket);

// An httplib server whose connections follow the guard's limits. It replaces httplib's own
// connection loop through process_and_close_socket, which cpp-httplib 0.11.4 declares virtual,
// and keeps httplib's parsing and routing (process_request). The guard must outlive the server.
class GuardedServer final : public httplib::Server {
 public:
  explicit GuardedServer(ConnectionGuard& guard) : guard_(guard) {}

  // See WidenListenBacklog.
  bool WidenBacklog() { return WidenListenBacklog(svr_sock_); }

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionGuard& guard_;
};

// The TLS variant of GuardedServer: httplib::SSLServer loads the certificate and key. The
// handshake gets request_timeout from the accept, and each request's TLS reads run under the
// request's deadline, as plain reads do.
class GuardedTlsServer final : public httplib::SSLServer {
 public:
  GuardedTlsServer(const std::string& certificate_file, const std::string& private_key_file,
                   ConnectionGuard& guard)
      : httplib::SSLServer(certificate_file.c_str(), private_key_file.c_str()), guard_(guard) {}

  // See WidenListenBacklog.
  bool WidenBacklog() { return WidenListenBacklog(svr_sock_); }

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionGuard& guard_;
};

}  // namespace backout::server
