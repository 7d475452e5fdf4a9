#include "http/client.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "http/test_server.h"

namespace backout::http {
namespace {

using std::chrono::milliseconds;
using testing::LocalServer;

// Records the delays the client asks for instead of sleeping.
struct RecordedSleeps {
  std::mutex mutex;
  std::vector<milliseconds> delays;

  std::function<void(milliseconds)> Sleeper() {
    return [this](milliseconds delay) {
      std::lock_guard lock(mutex);
      delays.push_back(delay);
    };
  }
  milliseconds Total() {
    std::lock_guard lock(mutex);
    milliseconds total{0};
    for (milliseconds delay : delays) total += delay;
    return total;
  }
};

// Options for tests: no real sleeping, and jitter pinned to the ceiling so delays are exact.
ClientOptions TestOptions(RecordedSleeps& sleeps) {
  ClientOptions options;
  options.retry = RetryPolicy{.max_attempts = 3,
                              .base_delay = milliseconds(100),
                              .max_delay = milliseconds(10'000),
                              .max_total = milliseconds(60'000)};
  options.sleep = sleeps.Sleeper();
  options.random_unit = [] { return 1.0; };
  options.connect_timeout = milliseconds(5'000);
  options.total_timeout = milliseconds(10'000);
  return options;
}

std::unique_ptr<Client> MakeClient(ClientOptions options) {
  auto client = Client::Create(std::move(options));
  EXPECT_TRUE(client.has_value()) << client.error().message;
  return client ? std::move(*client) : nullptr;
}

Request Get(std::string url) { return Request{.method = Method::kGet, .url = std::move(url)}; }

// Responds with the listed statuses in turn, then with 200 to every later request.
void ServeStatusSequence(LocalServer& server, const std::string& path, std::vector<int> statuses,
                         std::atomic<int>& hits, Headers extra_headers = {}) {
  auto handler = [statuses, &hits, extra_headers](const httplib::Request&,
                                                  httplib::Response& response) {
    int index = hits++;
    response.status = index < static_cast<int>(statuses.size()) ? statuses[index] : 200;
    for (const auto& [name, value] : extra_headers) {
      response.set_header(name, value);
    }
    response.set_content(fmt::format("answer {}", index + 1), "text/plain");
  };
  server.server().Get(path, handler);
  server.server().Post(path, handler);
}

TEST(ClientTest, GetReturnsStatusHeadersAndBody) {
  LocalServer server;
  server.server().Get("/hello", [](const httplib::Request&, httplib::Response& response) {
    response.set_header("X-Backout-Test", "yes");
    response.set_content("hello", "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get(server.Url("/hello")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->headers.Get("x-backout-test"), "yes");
  EXPECT_EQ(response->headers.Get("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(response->attempts, 1);
  EXPECT_GT(response->timing.total.count(), 0);
}

TEST(ClientTest, SendsMethodHeadersAndBody) {
  LocalServer server;
  auto echo = [](const httplib::Request& request, httplib::Response& response) {
    response.set_content(
        fmt::format("{} {} type={} x={} expect={}", request.method, request.body,
                    request.get_header_value("Content-Type"),
                    request.get_header_value("X-Request-Id"), request.has_header("Expect")),
        "text/plain");
  };
  server.server().Post("/echo", echo);
  server.server().Put("/echo", echo);
  server.server().Patch("/echo", echo);
  server.server().Delete("/echo", echo);
  server.server().Options("/echo", echo);
  server.server().Get("/echo", echo);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  struct Case {
    Method method;
    std::string body;
    std::string expected;
  };
  for (const Case& test : std::vector<Case>{
           {Method::kPost, "{\"a\":1}", "POST {\"a\":1} type=application/json x=42 expect=false"},
           {Method::kPut, "{\"b\":2}", "PUT {\"b\":2} type=application/json x=42 expect=false"},
           {Method::kPatch, "{}", "PATCH {} type=application/json x=42 expect=false"},
           {Method::kDelete, "", "DELETE  type= x=42 expect=false"},
           {Method::kOptions, "", "OPTIONS  type= x=42 expect=false"},
           {Method::kGet, "", "GET  type= x=42 expect=false"},
       }) {
    Request request{.method = test.method, .url = server.Url("/echo"), .body = test.body};
    request.headers.Add("X-Request-Id", "42");
    if (!test.body.empty()) {
      request.headers.Add("Content-Type", "application/json");
    }
    auto response = client->Send(request);
    ASSERT_TRUE(response.has_value())
        << MethodName(test.method) << ": " << response.error().message;
    EXPECT_EQ(response->body, test.expected) << MethodName(test.method);
  }
}

TEST(ClientTest, LargePostSkipsExpectAndFormType) {
  LocalServer server;
  server.server().Post("/upload", [](const httplib::Request& request, httplib::Response& response) {
    response.set_content(
        fmt::format("{} type=[{}] expect={}", request.body.size(),
                    request.get_header_value("Content-Type"), request.has_header("Expect")),
        "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Request{
      .method = Method::kPost, .url = server.Url("/upload"), .body = std::string(200'000, 'x')});

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "200000 type=[] expect=false");
}

TEST(ClientTest, HeadReturnsHeadersWithoutBody) {
  LocalServer server;
  server.server().Get("/thing", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("a body HEAD must not wait for", "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Request{.method = Method::kHead, .url = server.Url("/thing")});

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "");
}

TEST(ClientTest, ReusesConnectionsExceptForPost) {
  LocalServer server;
  auto port = [](const httplib::Request& request, httplib::Response& response) {
    response.set_content(std::to_string(request.remote_port), "text/plain");
  };
  server.server().Get("/port", port);
  server.server().Post("/port", port);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto first = client->Send(Get(server.Url("/port")));
  auto second = client->Send(Get(server.Url("/port")));
  auto post = client->Send(Request{.method = Method::kPost, .url = server.Url("/port")});

  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(second.has_value()) << second.error().message;
  ASSERT_TRUE(post.has_value()) << post.error().message;
  EXPECT_EQ(second->body, first->body) << "the second GET did not reuse the connection";
  EXPECT_EQ(second->timing.connect.count(), 0);
  EXPECT_NE(post->body, first->body) << "the POST reused a connection";
}

TEST(ClientTest, RetriesServiceUnavailableUntilSuccess) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/flaky", {503, 503}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get(server.Url("/flaky")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "answer 3");
  EXPECT_EQ(response->attempts, 3);
  EXPECT_EQ(hits, 3);
  ASSERT_EQ(sleeps.delays.size(), 2u);
  EXPECT_EQ(sleeps.delays[0], milliseconds(100));
  EXPECT_EQ(sleeps.delays[1], milliseconds(200));
}

TEST(ClientTest, JitterDrawsDelayBelowCeiling) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/flaky", {500, 502}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.random_unit = [] { return 0.25; };
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/flaky")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(sleeps.delays, (std::vector<milliseconds>{milliseconds(25), milliseconds(50)}));
}

TEST(ClientTest, ReturnsLastResponseWhenAttemptsRunOut) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/down", {503, 503, 503, 503}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get(server.Url("/down")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->attempts, 3);
  EXPECT_EQ(hits, 3);
}

TEST(ClientTest, HonoursRetryAfterSecondsWithoutSleeping) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/limited", {429}, hits, {{"Retry-After", "2"}});
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto started = std::chrono::steady_clock::now();
  auto response = client->Send(Get(server.Url("/limited")));
  auto elapsed = std::chrono::steady_clock::now() - started;

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  ASSERT_EQ(sleeps.delays.size(), 1u);
  EXPECT_GE(sleeps.delays[0], milliseconds(2000));
  EXPECT_LT(elapsed, std::chrono::seconds(1)) << "the client slept instead of using the sleeper";
}

TEST(ClientTest, HonoursRetryAfterDate) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/limited", {503}, hits,
                      {{"Retry-After", "Fri, 04 Dec 2026 17:00:05 GMT"}});
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.now = [] {
    return TimePoint(std::chrono::sys_days(std::chrono::year(2026) / 12 / 4) +
                     std::chrono::hours(17));
  };
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/limited")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(sleeps.delays, std::vector<milliseconds>{milliseconds(5000)});
}

TEST(ClientTest, RetryAfterBeyondBudgetIsNotWaited) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/limited", {429}, hits, {{"Retry-After", "3600"}});
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get(server.Url("/limited")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 429);
  EXPECT_EQ(response->attempts, 1);
  EXPECT_TRUE(sleeps.delays.empty());
}

TEST(ClientTest, RetryBudgetBoundsTotalTime) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/down", std::vector<int>(100, 503), hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.retry = RetryPolicy{.max_attempts = 100,
                              .base_delay = milliseconds(1000),
                              .max_delay = milliseconds(4000),
                              .max_total = milliseconds(10'000)};
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/down")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 503);
  // Delays 1 s, 2 s and 4 s fit in 10 s; the next 4 s would not.
  EXPECT_EQ(sleeps.delays, (std::vector<milliseconds>{milliseconds(1000), milliseconds(2000),
                                                      milliseconds(4000)}));
  EXPECT_EQ(response->attempts, 4);
  EXPECT_LE(sleeps.Total(), milliseconds(10'000));
}

TEST(ClientTest, NeverRetriesPost) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/create", {503, 503}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response =
      client->Send(Request{.method = Method::kPost, .url = server.Url("/create"), .body = "{}"});

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->attempts, 1);
  EXPECT_EQ(hits, 1);
  EXPECT_TRUE(sleeps.delays.empty());
}

TEST(ClientTest, RetriesPostMarkedIdempotent) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/create", {503, 503}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Request{
      .method = Method::kPost, .url = server.Url("/create"), .body = "{}", .idempotent = true});

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(hits, 3);
}

TEST(ClientTest, NeverRetriesGetMarkedNotIdempotent) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/once", {503}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  Request request = Get(server.Url("/once"));
  request.idempotent = false;
  auto response = client->Send(request);

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(hits, 1);
}

TEST(ClientTest, DoesNotRetryClientErrors) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/missing", {404, 404}, hits);
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get(server.Url("/missing")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(hits, 1);
}

TEST(ClientTest, ConnectionRefusedIsRetriedThenReported) {
  int port = testing::UnusedLoopbackPort();
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));
  std::string url = fmt::format("http://127.0.0.1:{}/api", port);

  auto response = client->Send(Get(url));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(sleeps.delays.size(), 2u);
  EXPECT_NE(response.error().message.find("GET " + url + " failed after 3 attempts"),
            std::string::npos)
      << response.error().message;
  EXPECT_NE(response.error().message.find("Couldn't connect to server"), std::string::npos)
      << response.error().message;
  EXPECT_NE(response.error().message.find("check that the server is running"), std::string::npos)
      << response.error().message;
}

TEST(ClientTest, ConnectionRefusedPostIsNotRetried) {
  int port = testing::UnusedLoopbackPort();
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(
      Request{.method = Method::kPost, .url = fmt::format("http://127.0.0.1:{}/x", port)});

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(sleeps.delays.empty());
  EXPECT_EQ(response.error().message.find("attempts"), std::string::npos)
      << response.error().message;
}

TEST(ClientTest, StallBeyondTotalTimeoutFails) {
  LocalServer server;
  server.server().Get("/stall", [&server](const httplib::Request&, httplib::Response& response) {
    for (int i = 0; i < 1000 && !server.stopping(); ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    response.set_content("too late", "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.total_timeout = milliseconds(300);
  options.retry.max_attempts = 2;
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/stall")));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kTimeout);
  EXPECT_NE(response.error().message.find("Timeout was reached"), std::string::npos)
      << response.error().message;
  EXPECT_EQ(sleeps.delays.size(), 1u);
}

TEST(ClientTest, RequestTimeoutReplacesClientTimeout) {
  LocalServer server;
  server.server().Get("/stall", [&server](const httplib::Request&, httplib::Response& response) {
    for (int i = 0; i < 1000 && !server.stopping(); ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  Request request = Get(server.Url("/stall"));
  request.total_timeout = milliseconds(200);
  request.idempotent = false;
  auto response = client->Send(request);

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kTimeout);
}

TEST(ClientTest, ResponseLargerThanLimitFails) {
  LocalServer server;
  server.server().Get("/big", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(100'000, 'b'), "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.max_response_bytes = 1024;
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/big")));

  ASSERT_FALSE(response.has_value());
  EXPECT_NE(response.error().message.find("max_response_bytes (1024 bytes)"), std::string::npos)
      << response.error().message;
  EXPECT_TRUE(sleeps.delays.empty());
}

TEST(ClientTest, RejectsUnsupportedScheme) {
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get("ftp://127.0.0.1/file"));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(response.error().message.find("unsupported scheme 'ftp'"), std::string::npos)
      << response.error().message;
}

TEST(ClientTest, RejectsRelativeUrl) {
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  auto response = client->Send(Get("/api/v1/incidents"));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ClientTest, RejectsHeaderInjection) {
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  Request request = Get("http://127.0.0.1:1/x");
  request.headers.Add("X-Name", "a\r\nX-Injected: 1");
  auto response = client->Send(request);

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(response.error().message.find("X-Name"), std::string::npos) << response.error().message;
}

TEST(ClientTest, ErrorMessageHidesCredentials) {
  int port = testing::UnusedLoopbackPort();
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.redaction.query_params = {"token"};
  auto client = MakeClient(std::move(options));

  auto response =
      client->Send(Get(fmt::format("http://deploy:hunter2@127.0.0.1:{}/x?token=s3cret&a=1", port)));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().message.find("hunter2"), std::string::npos)
      << response.error().message;
  EXPECT_EQ(response.error().message.find("s3cret"), std::string::npos) << response.error().message;
  EXPECT_NE(response.error().message.find(
                fmt::format("http://[REDACTED]@127.0.0.1:{}/x?token=[REDACTED]&a=1", port)),
            std::string::npos)
      << response.error().message;
}

TEST(ClientTest, ConcurrentSendsShareOneClient) {
  LocalServer server;
  std::atomic<int> hits = 0;
  server.server().Get("/n", [&hits](const httplib::Request& request, httplib::Response& response) {
    ++hits;
    response.set_content(request.get_param_value("i"), "text/plain");
  });
  ASSERT_TRUE(server.Start());
  RecordedSleeps sleeps;
  auto client = MakeClient(TestOptions(sleeps));

  std::atomic<int> correct = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string id = fmt::format("{}-{}", t, i);
        auto response = client->Send(Get(server.Url("/n?i=" + id)));
        if (response && response->status == 200 && response->body == id) {
          ++correct;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  EXPECT_EQ(correct, 120);
  EXPECT_EQ(hits, 120);
}

TEST(ClientTest, LogsEachAttemptAndRetry) {
  LocalServer server;
  std::atomic<int> hits = 0;
  ServeStatusSequence(server, "/flaky", {503}, hits);
  ASSERT_TRUE(server.Start());
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::debug);
  logger->set_pattern("%l %v");
  RecordedSleeps sleeps;
  ClientOptions options = TestOptions(sleeps);
  options.logger = logger;
  options.name = "probe";
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(server.Url("/flaky")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  std::string url = server.Url("/flaky");
  std::string text = log.str();
  EXPECT_NE(text.find(fmt::format("debug probe: GET {} -> 503 in ", url)), std::string::npos)
      << text;
  EXPECT_NE(text.find("(attempt 1/3)"), std::string::npos) << text;
  EXPECT_NE(text.find(fmt::format("warning probe: retrying GET {} in 100 ms (attempt 2/3) after "
                                  "status 503",
                                  url)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("debug probe: GET {} -> 200 in ", url)), std::string::npos)
      << text;
}

TEST(ClientCreateTest, RejectsBadLimits) {
  struct Case {
    std::string name;
    std::function<void(ClientOptions&)> change;
    std::string expected;
  };
  for (const Case& test : std::vector<Case>{
           {"connect", [](ClientOptions& o) { o.connect_timeout = milliseconds(0); },
            "connect_timeout must be positive"},
           {"total", [](ClientOptions& o) { o.total_timeout = milliseconds(-1); },
            "total_timeout must be positive"},
           {"attempts", [](ClientOptions& o) { o.retry.max_attempts = 0; },
            "retry.max_attempts must be at least 1"},
           {"delays", [](ClientOptions& o) { o.retry.max_delay = milliseconds(1); },
            "0 <= base_delay <= max_delay"},
           {"budget", [](ClientOptions& o) { o.retry.max_total = milliseconds(-5); },
            "retry.max_total must not be negative"},
           {"size", [](ClientOptions& o) { o.max_response_bytes = 0; },
            "max_response_bytes must be positive"},
       }) {
    ClientOptions options;
    test.change(options);
    auto client = Client::Create(std::move(options));
    ASSERT_FALSE(client.has_value()) << test.name;
    EXPECT_EQ(client.error().kind, ErrorKind::kInvalidArgument) << test.name;
    EXPECT_NE(client.error().message.find(test.expected), std::string::npos)
        << test.name << ": " << client.error().message;
  }
}

// Sets or clears environment variables for one test and restores them afterwards.
class ScopedEnvironment {
 public:
  void Set(const std::string& name, const std::optional<std::string>& value) {
    if (!saved_.contains(name)) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// A loopback stand-in for an HTTP proxy: it responds to every request itself and records the Host
// header, so no request ever leaves the machine.
class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                             "ALL_PROXY", "no_proxy", "NO_PROXY"}) {
      environment_.Set(name, std::nullopt);
    }
    proxy_.server().Get(".*", [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard lock(mutex_);
      proxied_hosts_.push_back(request.get_header_value("Host"));
      response.set_content("via proxy", "text/plain");
    });
    ASSERT_TRUE(proxy_.Start());
    target_.server().Get("/direct", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("direct", "text/plain");
    });
    ASSERT_TRUE(target_.Start());
  }

  std::vector<std::string> ProxiedHosts() {
    std::lock_guard lock(mutex_);
    return proxied_hosts_;
  }

  ScopedEnvironment environment_;
  LocalServer proxy_;
  LocalServer target_;
  std::mutex mutex_;
  std::vector<std::string> proxied_hosts_;
  RecordedSleeps sleeps_;
};

TEST_F(ProxyTest, EnvironmentProxyCarriesRequests) {
  environment_.Set("http_proxy", proxy_.Url(""));
  auto client = MakeClient(TestOptions(sleeps_));

  // The .invalid top-level domain never resolves (RFC 2606), and only the proxy receives the name.
  auto response = client->Send(Get("http://backout-proxy-test.invalid/resource"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "via proxy");
  EXPECT_EQ(ProxiedHosts(), std::vector<std::string>{"backout-proxy-test.invalid"});
}

TEST_F(ProxyTest, LoopbackBypassesEnvironmentProxy) {
  environment_.Set("http_proxy", proxy_.Url(""));
  auto client = MakeClient(TestOptions(sleeps_));

  auto by_address = client->Send(Get(target_.Url("/direct")));
  auto by_name = client->Send(Get(fmt::format("http://localhost:{}/direct", target_.port())));

  ASSERT_TRUE(by_address.has_value()) << by_address.error().message;
  EXPECT_EQ(by_address->body, "direct");
  ASSERT_TRUE(by_name.has_value()) << by_name.error().message;
  EXPECT_EQ(by_name->body, "direct");
  EXPECT_TRUE(ProxiedHosts().empty());
}

TEST_F(ProxyTest, ExplicitProxyIsUsedEvenForLoopback) {
  ClientOptions options = TestOptions(sleeps_);
  options.proxy = proxy_.Url("");
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(target_.Url("/direct")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "via proxy");
}

TEST_F(ProxyTest, EnvironmentNoProxyIsHonoured) {
  environment_.Set("NO_PROXY", "localhost,127.0.0.1");
  ClientOptions options = TestOptions(sleeps_);
  options.proxy = proxy_.Url("");
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(target_.Url("/direct")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "direct");
  EXPECT_TRUE(ProxiedHosts().empty());
}

TEST_F(ProxyTest, NoProxyOptionIsHonoured) {
  ClientOptions options = TestOptions(sleeps_);
  options.proxy = proxy_.Url("");
  options.no_proxy = "127.0.0.1";
  auto client = MakeClient(std::move(options));

  auto response = client->Send(Get(target_.Url("/direct")));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "direct");
}

}  // namespace
}  // namespace backout::http
