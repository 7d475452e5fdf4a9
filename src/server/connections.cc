#include "server/connections.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "server/errors.h"

namespace backout::server {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadBufferBytes = 4096;

// Set by the stream when a read passes the request deadline, for RequestTimedOut().
thread_local bool request_timed_out = false;

std::string FormatMilliseconds(milliseconds duration) {
  if (duration.count() % 1000 == 0) return fmt::format("{}s", duration.count() / 1000);
  return fmt::format("{}ms", duration.count());
}

milliseconds Remaining(SteadyClock::time_point deadline) {
  const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
  return std::max(left, milliseconds::zero());
}

// A poll(2) timeout, capped at INT_MAX milliseconds (24 days).
int PollTimeout(milliseconds timeout) {
  return static_cast<int>(std::min<milliseconds::rep>(timeout.count(), INT_MAX));
}

// Waits up to `timeout` for `events` on `socket`. Returns true when the socket is ready, also
// for a hang-up or an error, which the next read or write then reports.
bool PollSocket(int socket, short events, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    pollfd entry{.fd = socket, .events = events, .revents = 0};
    const int ready = ::poll(&entry, 1, PollTimeout(Remaining(deadline)));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return true;
  }
}

// The numeric host and the port of a socket's peer (`peer`) or its own address.
void SocketAddress(int socket, bool peer, std::string& host, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  const int status =
      peer ? ::getpeername(socket, generic, &length) : ::getsockname(socket, generic, &length);
  if (status != 0) return;
  char text[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (::getnameinfo(generic, length, text, sizeof(text), service, sizeof(service),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  host = text;
  port = std::atoi(service);
}

// One accepted connection's bytes, plain or TLS.
class Transport {
 public:
  virtual ~Transport() = default;
  // Reads up to `size` bytes, waiting until `deadline`. Returns the count read, 0 when the peer
  // closed the connection, or -1 on an error or at the deadline, which sets `timed_out`.
  virtual ssize_t Read(char* data, size_t size, SteadyClock::time_point deadline,
                       bool& timed_out) = 0;
  // Writes up to `size` bytes, waiting up to `timeout` each time the socket is full. Returns the
  // count written or -1.
  virtual ssize_t Write(const char* data, size_t size, milliseconds timeout) = 0;
  // Whether input is waiting above the socket, such as a decrypted TLS record.
  virtual bool HasPendingInput() const = 0;
};

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int socket) : socket_(socket) {}

  ssize_t Read(char* data, size_t size, SteadyClock::time_point deadline,
               bool& timed_out) override {
    while (true) {
      const milliseconds left = Remaining(deadline);
      if (left == milliseconds::zero() || !PollSocket(socket_, POLLIN, left)) {
        timed_out = true;
        return -1;
      }
      const ssize_t count = ::recv(socket_, data, size, 0);
      if (count >= 0) return count;
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    }
  }

  ssize_t Write(const char* data, size_t size, milliseconds timeout) override {
    if (!PollSocket(socket_, POLLOUT, timeout)) return -1;
    ssize_t count;
    do {
      count = ::send(socket_, data, size, MSG_NOSIGNAL);
    } while (count < 0 && errno == EINTR);
    return count;
  }

  bool HasPendingInput() const override { return false; }

 private:
  int socket_;
};

// TLS over a non-blocking socket, so that a TLS record sent a byte at a time cannot block a read
// past its deadline.
class TlsTransport final : public Transport {
 public:
  TlsTransport(int socket, SSL* ssl) : socket_(socket), ssl_(ssl) {}

  // Runs the server side of the handshake until `deadline`. Returns false when it fails.
  bool Accept(SteadyClock::time_point deadline, bool& timed_out) {
    while (true) {
      const int result = SSL_accept(ssl_);
      if (result == 1) return true;
      if (!WaitFor(SSL_get_error(ssl_, result), Remaining(deadline), timed_out)) return false;
    }
  }

  ssize_t Read(char* data, size_t size, SteadyClock::time_point deadline,
               bool& timed_out) override {
    const int length = static_cast<int>(std::min<size_t>(size, INT_MAX));
    while (true) {
      const int count = SSL_read(ssl_, data, length);
      if (count > 0) return count;
      const int error = SSL_get_error(ssl_, count);
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      if (!WaitFor(error, Remaining(deadline), timed_out)) return -1;
    }
  }

  ssize_t Write(const char* data, size_t size, milliseconds timeout) override {
    if (size == 0) return 0;
    const int length = static_cast<int>(std::min<size_t>(size, INT_MAX));
    bool timed_out = false;
    while (true) {
      const int count = SSL_write(ssl_, data, length);
      if (count > 0) return count;
      if (!WaitFor(SSL_get_error(ssl_, count), timeout, timed_out)) return -1;
    }
  }

  bool HasPendingInput() const override { return SSL_pending(ssl_) > 0; }

  // Whether an SSL call failed with a fatal error, after which OpenSSL forbids SSL_shutdown.
  bool failed() const { return failed_; }

 private:
  // Waits for the socket state that an SSL call asked for with `error`. Returns false when the
  // error is not a request to wait, or when `timeout` passes, which sets `timed_out`.
  bool WaitFor(int error, milliseconds timeout, bool& timed_out) {
    short events;
    if (error == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (error == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      failed_ = true;
      ERR_clear_error();
      return false;
    }
    if (timeout == milliseconds::zero() || !PollSocket(socket_, events, timeout)) {
      timed_out = true;
      return false;
    }
    return true;
  }

  int socket_;
  SSL* ssl_;
  bool failed_ = false;
};

// The httplib::Stream of one connection. It lives as long as the connection, so bytes a client
// sent ahead (a pipelined request) stay in its buffer for the next request. Once a read passes
// the request's deadline, every further read and write fails, so httplib neither reads on nor
// sends its own error response.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int socket, Transport& transport, milliseconds write_timeout)
      : socket_(socket), transport_(transport), write_timeout_(write_timeout) {}

  void StartRequest(SteadyClock::time_point deadline) {
    deadline_ = deadline;
    timed_out_ = false;
    request_timed_out = false;
  }

  bool timed_out() const { return timed_out_; }

  bool HasBufferedInput() const {
    return buffer_begin_ < buffer_end_ || transport_.HasPendingInput();
  }

  bool is_readable() const override {
    if (timed_out_) return false;
    return HasBufferedInput() || PollSocket(socket_, POLLIN, Remaining(deadline_));
  }

  bool is_writable() const override {
    return !timed_out_ && PollSocket(socket_, POLLOUT, write_timeout_);
  }

  ssize_t read(char* data, size_t size) override {
    if (timed_out_) return -1;
    if (buffer_begin_ == buffer_end_) {
      // A large read skips the buffer.
      if (size >= buffer_.size()) return ReadTransport(data, size);
      const ssize_t count = ReadTransport(buffer_.data(), buffer_.size());
      if (count <= 0) return count;
      buffer_begin_ = 0;
      buffer_end_ = static_cast<size_t>(count);
    }
    const size_t count = std::min(size, buffer_end_ - buffer_begin_);
    std::memcpy(data, buffer_.data() + buffer_begin_, count);
    buffer_begin_ += count;
    return static_cast<ssize_t>(count);
  }

  ssize_t write(const char* data, size_t size) override {
    if (timed_out_) return -1;
    return transport_.Write(data, size, write_timeout_);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(socket_, true, ip, port);
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(socket_, false, ip, port);
  }

  socket_t socket() const override { return socket_; }

 private:
  ssize_t ReadTransport(char* data, size_t size) {
    bool timed_out = false;
    const ssize_t count = transport_.Read(data, size, deadline_, timed_out);
    if (timed_out) {
      timed_out_ = true;
      request_timed_out = true;
    }
    return count;
  }

  int socket_;
  Transport& transport_;
  const milliseconds write_timeout_;
  SteadyClock::time_point deadline_;  // set by StartRequest before the request's first read
  bool timed_out_ = false;
  std::array<char, kReadBufferBytes> buffer_{};
  size_t buffer_begin_ = 0;
  size_t buffer_end_ = 0;
};

// Writes all of `text`, giving up at the first failed write.
void WriteAll(Transport& transport, std::string_view text, milliseconds timeout) {
  while (!text.empty()) {
    const ssize_t count = transport.Write(text.data(), text.size(), timeout);
    if (count <= 0) return;
    text.remove_prefix(static_cast<size_t>(count));
  }
}

// Reads and drops the input that already arrived, without waiting, before a socket is closed
// after an error response. Closing a socket with unread input sends a reset, after which some
// clients drop the response unread.
void DiscardInput(int socket) {
  std::array<char, kReadBufferBytes> discarded;
  for (int i = 0; i < 16; ++i) {
    if (::recv(socket, discarded.data(), discarded.size(), MSG_DONTWAIT) <= 0) return;
  }
}

// A complete response that closes the connection, with a JSON error body.
std::string ClosingResponse(int status, std::string_view reason, std::string_view code,
                            std::string_view message) {
  const std::string body = ErrorBody(code, message).dump();
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, reason, body.size(), body);
}

// Serves the requests of one admitted connection until the client closes it, a request fails or
// passes its deadline, the connection waits longer than idle_timeout, the server stops, or
// `max_requests` got a response. `process` calls httplib::Server::process_request.
template <typename ProcessRequest>
void ServeRequests(ConnectionGuard& guard, int socket, Transport& transport,
                   const std::atomic<socket_t>& listening, size_t max_requests,
                   ProcessRequest process) {
  const ConnectionLimits& limits = guard.limits();
  DeadlineStream stream(socket, transport, limits.write_timeout);
  for (size_t served = 0; served < max_requests && listening != INVALID_SOCKET; ++served) {
    if (!stream.HasBufferedInput() &&
        guard.WaitForRequest(socket) != ConnectionGuard::Wait::kReadable) {
      return;
    }
    stream.StartRequest(SteadyClock::now() + limits.request_timeout);
    bool connection_closed = false;
    const bool answered = process(stream, served + 1 == max_requests, connection_closed);
    if (stream.timed_out()) {
      std::string address;
      int port = 0;
      stream.get_remote_ip_and_port(address, port);
      guard.RecordTimeout(address);
      const std::string message = fmt::format(
          "the request was not received within {} (http.request_timeout); send the request "
          "line, headers and body without pauses",
          FormatMilliseconds(limits.request_timeout));
      WriteAll(transport,
               ClosingResponse(408, "Request Timeout",
                               core::ErrorCodeName(core::ErrorCode::kTimeout), message),
               limits.write_timeout);
      DiscardInput(socket);
      return;
    }
    if (!answered || connection_closed) return;
  }
}

// Closes `socket` after sending what was written: a shutdown first, as httplib does.
void CloseSocket(int socket) {
  ::shutdown(socket, SHUT_RDWR);
  ::close(socket);
}

// Sends 503 to a connection over the per-client limit without reading its request. Neither the
// write nor the reads wait, so a client that stalls cannot hold the thread.
void RejectOverLimit(const ConnectionGuard& guard, int socket, const std::string& address) {
  const std::string response = ClosingResponse(
      503, "Service Unavailable", core::ErrorCodeName(core::ErrorCode::kUnavailable),
      fmt::format("{} already has {} connections open, the limit for one client address "
                  "(http.max_connections_per_client); close idle connections, or raise the limit",
                  address, guard.limits().max_connections_per_client));
  (void)::send(socket, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  DiscardInput(socket);
}

std::string PeerAddress(int socket) {
  std::string address;
  int port = 0;
  SocketAddress(socket, true, address, port);
  return address;
}

}  // namespace

bool RequestTimedOut() { return request_timed_out; }

bool WidenListenBacklog(int socket) { return ::listen(socket, SOMAXCONN) == 0; }

ConnectionGuard::ConnectionGuard(ConnectionLimits limits, const core::Clock& clock,
                                 Metrics& metrics)
    : limits_(limits),
      metrics_(metrics),
      timeout_logs_(clock, LogThrottle::Options{}),
      rejection_logs_(clock, LogThrottle::Options{}) {
  stop_event_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_event_ < 0) {
    throw std::system_error(errno, std::generic_category(), "could not create an eventfd");
  }
}

ConnectionGuard::~ConnectionGuard() { ::close(stop_event_); }

void ConnectionGuard::Stop() {
  const uint64_t one = 1;
  if (::write(stop_event_, &one, sizeof(one)) < 0) {
    // NOTE: connections waiting for a request then close at their idle_timeout instead.
    spdlog::error("component=http event=stop_signal_failed error=\"{}\"", std::strerror(errno));
  }
}

ConnectionGuard::Admission::~Admission() {
  if (guard_ != nullptr) guard_->Release(address_);
}

ConnectionGuard::Admission::Admission(Admission&& other) noexcept
    : guard_(std::exchange(other.guard_, nullptr)), address_(std::move(other.address_)) {}

std::optional<ConnectionGuard::Admission> ConnectionGuard::Admit(const std::string& address) {
  {
    std::lock_guard lock(mutex_);
    size_t& open = open_by_address_[address];
    if (limits_.max_connections_per_client == 0 || open < limits_.max_connections_per_client) {
      ++open;
      return Admission(*this, address);
    }
  }
  metrics_.Increment(kConnectionsRejectedTotal);
  if (auto held_back = rejection_logs_.Admit(address)) {
    spdlog::warn(
        "component=http event=connection_rejected remote={} limit={} held_back={} "
        "reason=\"the client address has max_connections_per_client connections open\"",
        address, limits_.max_connections_per_client, *held_back);
  }
  return std::nullopt;
}

void ConnectionGuard::Release(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = open_by_address_.find(address);
  if (it == open_by_address_.end()) return;
  if (--it->second == 0) open_by_address_.erase(it);
}

ConnectionGuard::Wait ConnectionGuard::WaitForRequest(int socket) const {
  const auto deadline = SteadyClock::now() + limits_.idle_timeout;
  while (true) {
    pollfd entries[2] = {{.fd = socket, .events = POLLIN, .revents = 0},
                         {.fd = stop_event_, .events = POLLIN, .revents = 0}};
    const int ready = ::poll(entries, 2, PollTimeout(Remaining(deadline)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Wait::kStopped;
    if (entries[1].revents != 0) return Wait::kStopped;
    if (entries[0].revents != 0) return Wait::kReadable;
    return Wait::kIdle;
  }
}

void ConnectionGuard::RecordTimeout(const std::string& address) {
  metrics_.Increment(kRequestTimeoutsTotal);
  if (auto held_back = timeout_logs_.Admit(address)) {
    spdlog::warn("component=http event=request_timeout remote={} timeout={} held_back={}", address,
                 FormatMilliseconds(limits_.request_timeout), *held_back);
  }
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const std::string address = PeerAddress(sock);
  if (auto admission = guard_.Admit(address)) {
    PlainTransport transport(sock);
    ServeRequests(guard_, sock, transport, svr_sock_, keep_alive_max_count_,
                  [this](httplib::Stream& stream, bool close_connection, bool& connection_closed) {
                    return process_request(stream, close_connection, connection_closed, nullptr);
                  });
  } else {
    RejectOverLimit(guard_, sock, address);
  }
  CloseSocket(sock);
  return true;
}

bool GuardedTlsServer::process_and_close_socket(socket_t sock) {
  const std::string address = PeerAddress(sock);
  auto admission = guard_.Admit(address);
  SSL* ssl = admission ? SSL_new(ssl_context()) : nullptr;
  if (ssl != nullptr) {
    const int flags = ::fcntl(sock, F_GETFL);
    bool timed_out = false;
    TlsTransport transport(sock, ssl);
    if (flags >= 0 && ::fcntl(sock, F_SETFL, flags | O_NONBLOCK) == 0 &&
        SSL_set_fd(ssl, sock) == 1 &&
        transport.Accept(SteadyClock::now() + guard_.limits().request_timeout, timed_out)) {
      ServeRequests(
          guard_, sock, transport, svr_sock_, keep_alive_max_count_,
          [this, ssl](httplib::Stream& stream, bool close_connection, bool& connection_closed) {
            return process_request(stream, close_connection, connection_closed,
                                   [ssl](httplib::Request& request) { request.ssl = ssl; });
          });
      // One attempt at close_notify; the socket does not block, and the peer need not reply.
      if (!transport.failed()) SSL_shutdown(ssl);
    } else if (timed_out) {
      guard_.RecordTimeout(address);
    }
    ERR_clear_error();
    SSL_free(ssl);
  }
  CloseSocket(sock);
  return true;
}

}  // namespace backout::server
