// Slow, idle and numerous connections against a real HttpServer on a loopback port, driven by
// raw sockets so a test controls every byte and pause.

#include <httplib.h>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "server/errors.h"
#include "server/http_server.h"
#include "support/temp_dir.h"

namespace backout::server {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// The bound for anything a test waits on. The deadlines under test are far shorter, so it is
// reached only when the server fails to close a connection.
constexpr auto kPatience = std::chrono::seconds(30);

constexpr char kPartialRequest[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
constexpr char kFullRequest[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

Router HealthRouter() {
  Router router;
  router.Add(Route{.method = "GET",
                   .path = "/healthz",
                   .operation_id = "health",
                   .summary = "health",
                   .access = Access::kPublic,
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return HttpResponse{.body = {{"status", "ok"}}};
                   }});
  return router;
}

// Opens a TCP connection to 127.0.0.1:`port` from `source`, another loopback address when a test
// needs a second client address.
int Connect(int port, const char* source = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &local.sin_addr);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(port));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool Send(int fd, std::string_view text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

struct Received {
  std::string data;
  bool closed = false;  // the server closed the connection (end of stream or reset)
};

// Reads until the server closes the connection or `until` passes.
Received ReadUntilClosed(int fd, SteadyClock::time_point until) {
  Received received;
  char buffer[4096];
  while (SteadyClock::now() < until) {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - SteadyClock::now());
    if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t count = ::recv(fd, buffer, sizeof(buffer), 0);
    if (count <= 0) {
      received.closed = true;
      break;
    }
    received.data.append(buffer, static_cast<size_t>(count));
  }
  return received;
}

// Reads one response whose body has a Content-Length, leaving the connection open. Bytes
// received past its end, such as a pipelined next response, stay in `pending` for the next call.
std::string ReadResponse(int fd, std::string& pending) {
  char buffer[4096];
  const auto until = SteadyClock::now() + kPatience;
  while (SteadyClock::now() < until) {
    const size_t head_end = pending.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const size_t length_at = pending.find("Content-Length: ");
      if (length_at != std::string::npos && length_at < head_end) {
        const size_t length = std::strtoul(pending.c_str() + length_at + 16, nullptr, 10);
        const size_t end = head_end + 4 + length;
        if (pending.size() >= end) {
          std::string response = pending.substr(0, end);
          pending.erase(0, end);
          return response;
        }
      }
    }
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, 100) <= 0) continue;
    const ssize_t count = ::recv(fd, buffer, sizeof(buffer), 0);
    if (count <= 0) break;
    pending.append(buffer, static_cast<size_t>(count));
  }
  return std::exchange(pending, std::string());
}

std::string ReadResponse(int fd) {
  std::string pending;
  return ReadResponse(fd, pending);
}

json BodyOf(const std::string& response) {
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) return json();
  return json::parse(response.substr(head_end + 4), nullptr, false);
}

class ConnectionsTest : public ::testing::Test {
 protected:
  void Start(ConnectionLimits limits, std::optional<TlsFiles> tls = std::nullopt) {
    DeclareServerMetrics(metrics_);
    HttpServerOptions options;
    options.port = 0;
    options.tls = std::move(tls);
    options.connections = limits;
    auto created = HttpServer::Create(
        options, router_,
        [](std::string_view) -> core::Result<app::Caller> {
          return core::MakeError(core::ErrorCode::kUnauthenticated, "no tokens in this test");
        },
        clock_, metrics_);
    ASSERT_TRUE(created.has_value()) << created.error().message;
    server_ = *std::move(created);
    auto port = server_->Bind();
    ASSERT_TRUE(port.has_value()) << port.error().message;
    port_ = *port;
    thread_ = std::thread([this] { server_->Serve(); });
  }

  void TearDown() override {
    for (int fd : sockets_) ::close(fd);
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  // Connects and keeps the socket until the test ends.
  int Open(const char* source = "127.0.0.1") {
    const int fd = Connect(port_, source);
    if (fd >= 0) sockets_.push_back(fd);
    return fd;
  }

  core::ManualClock clock_{core::Time{}};
  Metrics metrics_;
  Router router_ = HealthRouter();
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<int> sockets_;
};

// More clients than the server has request threads (64) keep sending a header line every 100 ms
// and never finish. Each is cut off at its 500 ms deadline, so a normal request gets its
// response.
TEST_F(ConnectionsTest, TricklingClientsDoNotBlockRequests) {
  Start({.request_timeout = std::chrono::milliseconds(500), .max_connections_per_client = 0});
  std::vector<int> slow;
  for (int i = 0; i < 80; ++i) {
    const int fd = Open();
    ASSERT_GE(fd, 0) << "connection " << i;
    ASSERT_TRUE(Send(fd, "GET /healthz HTTP/1.1\r\n"));
    slow.push_back(fd);
  }
  std::atomic<bool> stop_trickling{false};
  std::thread trickler([&] {
    while (!stop_trickling) {
      for (int fd : slow) Send(fd, "X-Slow: 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(kPatience);
  client.set_write_timeout(kPatience);
  auto result = client.Get("/healthz");

  const auto until = SteadyClock::now() + kPatience;
  std::vector<bool> closed;
  for (int fd : slow) closed.push_back(ReadUntilClosed(fd, until).closed);
  stop_trickling = true;
  trickler.join();

  ASSERT_TRUE(result) << "no response while 80 clients trickled: "
                      << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  for (size_t i = 0; i < closed.size(); ++i) {
    EXPECT_TRUE(closed[i]) << "trickling connection " << i << " still open after 30 s";
  }
}

// A client that keeps sending header lines gets 408 at the deadline, however often bytes arrive,
// and the connection closes.
TEST_F(ConnectionsTest, TricklingRequestGets408AtDeadline) {
  Start({.request_timeout = std::chrono::milliseconds(300)});
  const int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Send(fd, kPartialRequest));

  // One more header line every 50 ms until the server's response arrives.
  const auto until = SteadyClock::now() + kPatience;
  bool answered = false;
  while (!answered && SteadyClock::now() < until) {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    answered = ::poll(&entry, 1, 50) > 0;
    if (!answered) Send(fd, "X-Slow: 1\r\n");
  }
  ASSERT_TRUE(answered) << "no response 30 s after the 300 ms deadline";

  const Received received = ReadUntilClosed(fd, until);
  EXPECT_TRUE(received.closed);
  EXPECT_TRUE(received.data.starts_with("HTTP/1.1 408 ")) << received.data;
  const json body = BodyOf(received.data);
  EXPECT_TRUE(Validate(body, ErrorSchema()).has_value()) << received.data;
  EXPECT_EQ(body.value("/error/code"_json_pointer, std::string()), "timeout") << received.data;
  EXPECT_NE(received.data.find("within 300ms (http.request_timeout)"), std::string::npos)
      << received.data;
  EXPECT_EQ(metrics_.Value(kRequestTimeoutsTotal), 1);
  // The 400 that httplib reports for the cut-off headers is neither sent nor counted.
  EXPECT_EQ(metrics_.Value(kRequestsTotal,
                           {{"method", "GET"}, {"route", "(unrouted)"}, {"status", "400"}}),
            0);
}

// A request whose headers arrived but whose body trickles is cut off at the same deadline.
TEST_F(ConnectionsTest, TricklingBodyGets408AtDeadline) {
  Start({.request_timeout = std::chrono::milliseconds(300)});
  const int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Send(fd,
                   "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: 100000\r\n\r\n"));

  const auto until = SteadyClock::now() + kPatience;
  bool answered = false;
  while (!answered && SteadyClock::now() < until) {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    answered = ::poll(&entry, 1, 50) > 0;
    if (!answered) Send(fd, " ");
  }
  ASSERT_TRUE(answered) << "no response 30 s after the 300 ms deadline";

  const Received received = ReadUntilClosed(fd, until);
  EXPECT_TRUE(received.closed);
  EXPECT_TRUE(received.data.starts_with("HTTP/1.1 408 ")) << received.data;
  EXPECT_EQ(metrics_.Value(kRequestTimeoutsTotal), 1);
}

// A connection that sends nothing, and one idle after its response, are closed at idle_timeout.
TEST_F(ConnectionsTest, IdleConnectionsAreClosed) {
  Start({.idle_timeout = std::chrono::milliseconds(200)});
  const int silent = Open();
  ASSERT_GE(silent, 0);
  const int kept_alive = Open();
  ASSERT_GE(kept_alive, 0);
  ASSERT_TRUE(Send(kept_alive, kFullRequest));

  const auto until = SteadyClock::now() + kPatience;
  const Received after_response = ReadUntilClosed(kept_alive, until);
  EXPECT_TRUE(after_response.closed) << "the idle keep-alive connection is still open after 30 s";
  EXPECT_TRUE(after_response.data.starts_with("HTTP/1.1 200 ")) << after_response.data;

  const Received nothing_sent = ReadUntilClosed(silent, until);
  EXPECT_TRUE(nothing_sent.closed) << "the silent connection is still open after 30 s";
  EXPECT_EQ(nothing_sent.data, "");
  EXPECT_EQ(metrics_.Value(kRequestTimeoutsTotal), 0);
}

// A pipelined second request, sent with the first, gets its response from the stream's buffer.
TEST_F(ConnectionsTest, PipelinedRequestsBothGetResponses) {
  Start({});
  const int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Send(fd, std::string(kFullRequest) + kFullRequest));

  // Both responses often arrive in one read, so the second is taken from what the first left.
  std::string pending;
  const std::string first = ReadResponse(fd, pending);
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200 ")) << first;
  const std::string second = ReadResponse(fd, pending);
  EXPECT_TRUE(second.starts_with("HTTP/1.1 200 ")) << second;
}

// One client address can have at most max_connections_per_client connections open. The next
// gets 503 at once, and another address is still served.
TEST_F(ConnectionsTest, ConnectionsPerClientAreLimited) {
  Start({.request_timeout = std::chrono::seconds(30),
         .idle_timeout = std::chrono::seconds(30),
         .max_connections_per_client = 2});
  // Each of the two gets a response, so the server counts both before the third connects.
  for (int i = 0; i < 2; ++i) {
    const int fd = Open();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(Send(fd, kFullRequest));
    const std::string response = ReadResponse(fd);
    ASSERT_TRUE(response.starts_with("HTTP/1.1 200 ")) << response;
  }

  // The server responds without reading a request, so none is sent.
  const int third = Open();
  ASSERT_GE(third, 0);
  const Received rejected = ReadUntilClosed(third, SteadyClock::now() + kPatience);
  EXPECT_TRUE(rejected.closed);
  EXPECT_TRUE(rejected.data.starts_with("HTTP/1.1 503 ")) << rejected.data;
  const json body = BodyOf(rejected.data);
  EXPECT_EQ(body.value("/error/code"_json_pointer, std::string()), "unavailable") << body;
  EXPECT_NE(rejected.data.find("127.0.0.1 already has 2 connections open"), std::string::npos)
      << rejected.data;
  EXPECT_EQ(metrics_.Value(kConnectionsRejectedTotal), 1);

  const int other_address = Open("127.0.0.2");
  ASSERT_GE(other_address, 0) << "cannot bind a socket to 127.0.0.2";
  ASSERT_TRUE(Send(other_address, kFullRequest));
  const std::string response = ReadResponse(other_address);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 ")) << response;
}

// A TLS client that sends its first handshake record a byte at a time is cut off at the
// deadline too.
TEST_F(ConnectionsTest, TricklingTlsHandshakeIsClosedAtDeadline) {
  testing::TempDir temp;
  const std::string cert = (temp.path() / "cert.pem").string();
  const std::string key = (temp.path() / "key.pem").string();
  const std::string command = fmt::format(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -keyout {} -out {} 2>/dev/null",
      key, cert);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  Start({.request_timeout = std::chrono::milliseconds(300)},
        TlsFiles{.certificate_file = cert, .private_key_file = key});

  const int fd = Open();
  ASSERT_GE(fd, 0);
  // A TLS record header announcing a 255-byte handshake message, then one byte every 50 ms.
  ASSERT_TRUE(Send(fd, std::string("\x16\x03\x01\x00\xff", 5)));
  const auto until = SteadyClock::now() + kPatience;
  bool closed = false;
  while (!closed && SteadyClock::now() < until) {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    closed = ::poll(&entry, 1, 50) > 0;
    if (!closed) Send(fd, std::string(1, '\0'));
  }
  ASSERT_TRUE(closed) << "the handshake still runs 30 s after the 300 ms deadline";
  EXPECT_TRUE(ReadUntilClosed(fd, until).closed);
  EXPECT_EQ(metrics_.Value(kRequestTimeoutsTotal), 1);

  httplib::SSLClient client("127.0.0.1", port_);
  client.enable_server_certificate_verification(false);
  auto result = client.Get("/healthz");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
}

}  // namespace
}  // namespace backout::server
