#include "server/http_server.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "server/errors.h"
#include "support/temp_dir.h"

namespace backout::server {
namespace {

using nlohmann::json;

constexpr char kGoodToken[] = "good-token-0123456789";

// The threads of this process, from /proc/self/task.
size_t ThreadCount() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

Router TestRouter() {
  Router router;
  router.Add(Route{.method = "GET",
                   .path = "/healthz",
                   .operation_id = "health",
                   .summary = "health",
                   .access = Access::kPublic,
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return HttpResponse{.body = {{"status", "ok"}}};
                   }});
  router.Add(Route{.method = "GET",
                   .path = "/metrics-like",
                   .operation_id = "metrics",
                   .summary = "metrics",
                   .access = Access::kMetrics,
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return HttpResponse{.text = "x 1\n", .content_type = "text/plain"};
                   }});
  router.Add(
      Route{.method = "GET",
            .path = "/api/v1/things/{id}",
            .operation_id = "getThing",
            .summary = "get",
            .query = {{"limit", IntegerSchema("page size")}},
            .handler = [](const HttpRequest& request) -> core::Result<HttpResponse> {
              if (request.path_parameters.at("id") != "T-1") {
                return core::MakeError(core::ErrorCode::kNotFound, "thing {} not found",
                                       request.path_parameters.at("id"));
              }
              return HttpResponse{.body = {{"id", "T-1"}, {"caller", request.caller->name()}}};
            }});
  router.Add(Route{.method = "POST",
                   .path = "/api/v1/things",
                   .operation_id = "createThing",
                   .summary = "create",
                   .request_body = ObjectSchema("", {Required("name", StringSchema("")),
                                                     Optional("count", IntegerSchema(""))}),
                   .success_status = 201,
                   .handler = [](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return HttpResponse{.status = 201, .body = request.body};
                   }});
  router.Add(Route{.method = "POST",
                   .path = "/hooks/thing",
                   .operation_id = "thingHook",
                   .summary = "webhook with its own key",
                   .access = Access::kPublic,
                   .query = {{"limit", IntegerSchema("page size")}},
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return HttpResponse{.body = json::object()};
                   },
                   .raw_body = true,
                   .max_body_bytes = 512,
                   .authenticate_sender = [](const HttpRequest& request) -> core::Result<void> {
                     auto key = request.headers.find("x-key");
                     if (key == request.headers.end() || key->second != "right") {
                       return core::MakeError(core::ErrorCode::kUnauthenticated, "wrong key");
                     }
                     return {};
                   }});
  router.Add(Route{.method = "GET",
                   .path = "/api/v1/proofs",
                   .operation_id = "getProof",
                   .summary = "needs a parameter",
                   .query = {{.name = "entry",
                              .schema = IntegerSchema("The entry's sequence number."),
                              .required = true},
                             {"limit", IntegerSchema("page size")}},
                   .handler = [](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return HttpResponse{.body = {{"entry", request.query.at("entry")}}};
                   }});
  router.Add(Route{.method = "POST",
                   .path = "/api/v1/things/{id}/ping",
                   .operation_id = "pingThing",
                   .summary = "ping",
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return HttpResponse{.body = json::object()};
                   }});
  return router;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    options.port = 0;
    options.max_body_bytes = 1024;
    DeclareServerMetrics(metrics_);
    auto created = HttpServer::Create(
        options, router_,
        [](std::string_view token) -> core::Result<app::Caller> {
          if (token != kGoodToken) {
            return core::MakeError(core::ErrorCode::kUnauthenticated, "token not valid");
          }
          return app::Caller{.user = core::User{.name = "lead-1"}};
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
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  httplib::Client Client(bool with_token = true) {
    httplib::Client client("127.0.0.1", port_);
    if (with_token) client.set_bearer_token_auth(kGoodToken);
    return client;
  }

  static void ExpectError(const httplib::Result& result, int status, std::string_view code) {
    ASSERT_TRUE(result) << "no response";
    EXPECT_EQ(result->status, status) << result->body;
    json body = json::parse(result->body, nullptr, false);
    EXPECT_TRUE(Validate(body, ErrorSchema()).has_value()) << result->body;
    EXPECT_EQ(body.value("/error/code"_json_pointer, std::string()), code) << result->body;
  }

  core::ManualClock clock_{core::Time{}};
  Metrics metrics_;
  Router router_ = TestRouter();
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// A second server on a port in use fails to bind instead of sharing it (SO_REUSEPORT would let
// the kernel split connections between the two).
TEST_F(HttpServerTest, SecondServerOnUsedPortFailsToBind) {
  Start({});
  // A response shows the first server accepting, so TearDown's Stop() cannot come before it.
  auto first = Client(false).Get("/healthz");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);

  HttpServerOptions options;
  options.port = port_;
  auto second = HttpServer::Create(
      options, router_,
      [](std::string_view) -> core::Result<app::Caller> {
        return core::MakeError(core::ErrorCode::kUnauthenticated, "no tokens here");
      },
      clock_, metrics_);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  auto bound = (*second)->Bind();
  ASSERT_FALSE(bound.has_value()) << "a second server bound port " << port_;
  EXPECT_NE(bound.error().message.find("no other process uses the port"), std::string::npos)
      << bound.error().message;
}

TEST_F(HttpServerTest, PublicRouteNeedsNoToken) {
  Start({});
  auto result = Client(false).Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(json::parse(result->body)["status"], "ok");
}

TEST_F(HttpServerTest, AuthenticatedRouteSeesCaller) {
  Start({});
  auto result = Client().Get("/api/v1/things/T-1");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(json::parse(result->body)["caller"], "lead-1");
}

TEST_F(HttpServerTest, UnknownRouteIs404) {
  Start({});
  ExpectError(Client().Get("/api/v1/nothing"), 404, "not_found");
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  Start({});
  auto result = Client().Delete("/api/v1/things");
  ExpectError(result, 405, "method_not_allowed");
  EXPECT_EQ(result->get_header_value("Allow"), "POST");
}

TEST_F(HttpServerTest, MissingTokenIs401AndCounted) {
  Start({});
  ExpectError(Client(false).Get("/api/v1/things/T-1"), 401, "unauthenticated");
  EXPECT_EQ(metrics_.Value(kUnauthenticatedTotal), 1);
}

TEST_F(HttpServerTest, RepeatedBadTokensAreRateLimited) {
  HttpServerOptions options;
  options.rate_limit.burst = 3;
  Start(options);
  httplib::Client client("127.0.0.1", port_);
  client.set_bearer_token_auth("wrong");
  for (int i = 0; i < 3; ++i) ExpectError(client.Get("/api/v1/things/T-1"), 401, "unauthenticated");

  auto limited = client.Get("/api/v1/things/T-1");
  ExpectError(limited, 429, "rate_limited");
  EXPECT_EQ(limited->get_header_value("Retry-After"), "3");
  EXPECT_EQ(metrics_.Value(kRateLimitedTotal), 1);

  clock_.Advance(std::chrono::seconds(3));
  ExpectError(Client().Get("/api/v1/things/T-2"), 404, "not_found");
}

// A webhook sender whose credentials keep failing is rate-limited, but a request with valid
// credentials from the same address still reaches the handler.
TEST_F(HttpServerTest, RejectedWebhookSendersAreRateLimited) {
  HttpServerOptions options;
  options.rate_limit.burst = 3;
  Start(options);
  httplib::Client client("127.0.0.1", port_);
  const httplib::Headers wrong = {{"X-Key", "wrong"}};
  for (int i = 0; i < 3; ++i) {
    ExpectError(client.Post("/hooks/thing", wrong, "{}", "application/json"), 401,
                "unauthenticated");
  }

  auto limited = client.Post("/hooks/thing", wrong, "{}", "application/json");
  ExpectError(limited, 429, "rate_limited");
  EXPECT_EQ(limited->get_header_value("Retry-After"), "3");
  EXPECT_EQ(metrics_.Value(kRateLimitedTotal), 1);

  auto accepted = client.Post("/hooks/thing", {{"X-Key", "right"}}, "{}", "application/json");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 200) << accepted->body;
}

// Rejected webhook deliveries do not count against users' API calls from the same address.
TEST_F(HttpServerTest, RejectedWebhookDoesNotBlockUsers) {
  HttpServerOptions options;
  options.rate_limit.burst = 3;
  Start(options);
  httplib::Client client("127.0.0.1", port_);
  for (int i = 0; i < 5; ++i) {
    client.Post("/hooks/thing", {{"X-Key", "wrong"}}, "{}", "application/json");
  }

  ExpectError(Client().Get("/api/v1/things/T-2"), 404, "not_found");
}

// A webhook sender without valid credentials learns nothing about what else the request got
// wrong: media type, query parameters or size.
TEST_F(HttpServerTest, WebhookAuthenticatesBeforeOtherChecks) {
  Start({});
  httplib::Client client("127.0.0.1", port_);
  const httplib::Headers wrong = {{"X-Key", "wrong"}};
  const httplib::Headers right = {{"X-Key", "right"}};
  const std::string form = "a=b";
  const std::string large(600, 'x');  // over the route's limit of 512 bytes

  ExpectError(client.Post("/hooks/thing", wrong, form, "application/x-www-form-urlencoded"), 401,
              "unauthenticated");
  ExpectError(client.Post("/hooks/thing?limit=x", wrong, "{}", "application/json"), 401,
              "unauthenticated");
  ExpectError(client.Post("/hooks/thing", wrong, large, "application/json"), 401,
              "unauthenticated");

  ExpectError(client.Post("/hooks/thing", right, form, "application/x-www-form-urlencoded"), 415,
              kUnsupportedMediaType);
  ExpectError(client.Post("/hooks/thing?limit=x", right, "{}", "application/json"), 400,
              "invalid_argument");
  ExpectError(client.Post("/hooks/thing", right, large, "application/json"), 413, kPayloadTooLarge);
}

TEST_F(HttpServerTest, MediaTypeIgnoresCase) {
  Start({});
  auto result = Client().Post("/api/v1/things", R"({"name":"a"})", "APPLICATION/JSON");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 201) << result->body;
}

TEST_F(HttpServerTest, MissingRequiredQueryParameterIs400) {
  Start({});
  auto missing = Client().Get("/api/v1/proofs?limit=5");
  ExpectError(missing, 400, "invalid_argument");
  EXPECT_NE(missing->body.find("missing required query parameter `entry` for GET /api/v1/proofs"),
            std::string::npos)
      << missing->body;

  auto present = Client().Get("/api/v1/proofs?entry=3");
  ASSERT_TRUE(present);
  EXPECT_EQ(present->status, 200) << present->body;
}

// A repeated parameter is rejected whether or not the values differ.
TEST_F(HttpServerTest, RepeatedQueryParameterIs400) {
  Start({});
  for (const std::string target :
       {"/api/v1/proofs?entry=3&entry=3", "/api/v1/proofs?entry=3&entry=4"}) {
    auto result = Client().Get(target);
    ExpectError(result, 400, "invalid_argument");
    EXPECT_EQ(json::parse(result->body)["error"]["message"],
              "query parameter `entry` is given more than once")
        << target;
  }
}

// A number past what the parameter can hold is named as too large, with the maximum.
TEST_F(HttpServerTest, OversizedIntegerParameterNamesMaximum) {
  Start({});
  auto result = Client().Get("/api/v1/proofs?entry=99999999999999999999");
  ExpectError(result, 400, "invalid_argument");
  EXPECT_EQ(json::parse(result->body)["error"]["message"],
            "query parameter `entry` is too large: the maximum is 9223372036854775807, got "
            "\"99999999999999999999\"");
}

TEST_F(HttpServerTest, HandlerErrorMapsToStatus) {
  Start({});
  auto result = Client().Get("/api/v1/things/T-9");
  ExpectError(result, 404, "not_found");
  EXPECT_EQ(json::parse(result->body)["error"]["message"], "thing T-9 not found");
}

TEST_F(HttpServerTest, MalformedJsonIs400) {
  Start({});
  ExpectError(Client().Post("/api/v1/things", "{\"name\": ", "application/json"), 400,
              "invalid_argument");
}

TEST_F(HttpServerTest, UnknownFieldIs400NamingIt) {
  Start({});
  auto result =
      Client().Post("/api/v1/things", R"({"name":"a","colour":"red"})", "application/json");
  ExpectError(result, 400, "invalid_argument");
  EXPECT_NE(result->body.find("colour"), std::string::npos);
}

TEST_F(HttpServerTest, WrongTypeIs400NamingField) {
  Start({});
  auto result = Client().Post("/api/v1/things", R"({"name":"a","count":"3"})", "application/json");
  ExpectError(result, 400, "invalid_argument");
  EXPECT_NE(result->body.find("`count`"), std::string::npos);
}

TEST_F(HttpServerTest, FormBodyIs415) {
  Start({});
  ExpectError(Client().Post("/api/v1/things", "name=a", "application/x-www-form-urlencoded"), 415,
              "unsupported_media_type");
}

TEST_F(HttpServerTest, UnknownQueryParameterIs400) {
  Start({});
  ExpectError(Client().Get("/api/v1/things/T-1?colour=red"), 400, "invalid_argument");
}

TEST_F(HttpServerTest, NonIntegerQueryParameterIs400) {
  Start({});
  ExpectError(Client().Get("/api/v1/things/T-1?limit=ten"), 400, "invalid_argument");
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  Start({});
  std::string body = R"({"name":")" + std::string(4096, 'x') + R"("})";
  ExpectError(Client().Post("/api/v1/things", body, "application/json"), 413, "payload_too_large");
}

TEST_F(HttpServerTest, BodyOnRouteWithoutBodyIs400) {
  Start({});
  ExpectError(Client().Post("/api/v1/things/T-1/ping", "{}", "application/json"), 400,
              "invalid_argument");
}

TEST_F(HttpServerTest, MetricsTokenGuardsMetrics) {
  HttpServerOptions options;
  options.metrics_token = "metrics-secret";
  Start(options);
  ExpectError(Client(false).Get("/metrics-like"), 401, "unauthenticated");

  httplib::Client client("127.0.0.1", port_);
  client.set_bearer_token_auth("metrics-secret");
  auto result = client.Get("/metrics-like");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST_F(HttpServerTest, ServesTlsWithConfiguredCertificate) {
  testing::TempDir temp;
  const std::string cert = (temp.path() / "cert.pem").string();
  const std::string key = (temp.path() / "key.pem").string();
  const std::string command = fmt::format(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -keyout {} -out {} 2>/dev/null",
      key, cert);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  HttpServerOptions options;
  options.tls = TlsFiles{.certificate_file = cert, .private_key_file = key};
  Start(options);
  httplib::SSLClient client("127.0.0.1", port_);
  client.enable_server_certificate_verification(false);
  auto result = client.Get("/healthz");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);

  httplib::Client plain("127.0.0.1", port_);
  EXPECT_FALSE(plain.Get("/healthz"));
}

TEST_F(HttpServerTest, MissingCertificateFailsCreate) {
  HttpServerOptions options;
  options.tls = TlsFiles{.certificate_file = "/nonexistent/cert.pem",
                         .private_key_file = "/nonexistent/key.pem"};
  auto created = HttpServer::Create(
      options, router_, [](std::string_view) -> core::Result<app::Caller> { return app::Caller{}; },
      clock_, metrics_);
  ASSERT_FALSE(created.has_value());
  EXPECT_NE(created.error().message.find("/nonexistent/cert.pem"), std::string::npos);
}

TEST_F(HttpServerTest, RequestsAreCountedByRoute) {
  Start({});
  ASSERT_TRUE(Client().Get("/api/v1/things/T-1"));
  EXPECT_EQ(
      metrics_.Value(kRequestsTotal,
                     {{"method", "GET"}, {"route", "/api/v1/things/{id}"}, {"status", "200"}}),
      1);
}

// The server starts its request threads as connections arrive, not all 64 at start, and still
// grows past the first few when clients stall.
TEST_F(HttpServerTest, WorkerThreadsStartOnDemand) {
  const size_t before = ThreadCount();
  Start({});
  ASSERT_TRUE(Client(false).Get("/healthz"));
  // The Serve() thread, the pool's 2 resident threads, and at most one started for the request.
  EXPECT_LE(ThreadCount(), before + 4);

  std::vector<int> stalled;
  for (int i = 0; i < 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    stalled.push_back(fd);
  }
  httplib::Client client = Client(false);
  client.set_read_timeout(std::chrono::seconds(5));
  auto result = client.Get("/healthz");
  const size_t busy = ThreadCount();
  for (int fd : stalled) ::close(fd);
  ASSERT_TRUE(result) << "no answer within 5 s while 20 clients stalled";
  EXPECT_EQ(result->status, 200);
  // Each stalled client occupies a thread, and the request that got its response needed one more.
  EXPECT_GE(busy, before + 1 + 21);
}

TEST_F(HttpServerTest, ConcurrentRequestsAreAllAnswered) {
  Start({});
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto result = Client().Get("/api/v1/things/T-1");
        if (result && result->status == 200) answered++;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(answered.load(), 80);
}

}  // namespace
}  // namespace backout::server
