#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "ledger/entry.h"
#include "server/control_plane_server.h"
#include "server/errors.h"
#include "server/rate_limiter.h"
#include "server/signal_routes.h"
#include "store/system_clock.h"
#include "support/temp_dir.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Sends `request` as-is to 127.0.0.1:port and returns the status line of the response, or "" when
// no server responds. httplib's client always adds Content-Length, and this sends what curl -X POST
// sends without -d: a POST with no Content-Length header and no body.
std::string RawStatusLine(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t received = 0;
    while ((received = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      response.append(buffer, static_cast<size_t>(received));
    }
  }
  ::close(fd);
  return response.substr(0, response.find("\r\n"));
}

// The whole server in this process on a free port, with a SQLite store in a temporary folder.
class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& dir = temp_.path();
    {
      std::ofstream(dir / "rollback.sh") << "#!/bin/sh\nexit 0\n";
      ::chmod((dir / "rollback.sh").c_str(), 0755);
      std::ofstream(dir / "backout.yaml") << fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: ci-bot, roles: [ci]}}
services:
  - name: checkout
    provider: {{kind: command, run: [{0}/rollback.sh]}}
)",
                                                         dir.string());
    }
    ServeOptions options{.config_path = dir / "backout.yaml", .workers = 1};
    options.rate_limit.burst = rate_limit_burst_;
    auto server = ControlPlaneServer::Start(options, clock_);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = *std::move(server);
    admin_token_ = ReadFile(dir / "data" / "admin.token");
    lead_token_ = CreateUser("lead-1", "engineering-lead");
    ci_token_ = CreateUser("ci-bot", "ci");
  }

  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop());
    }
  }

  httplib::Client Client(const std::string& token) {
    httplib::Client client("127.0.0.1", server_->port());
    if (!token.empty()) client.set_bearer_token_auth(token.c_str());
    return client;
  }

  std::string CreateUser(const std::string& name, const std::string& role) {
    auto result = Client(admin_token_)
                      .Post("/api/v1/users", json{{"name", name}, {"roles", {role}}}.dump(),
                            "application/json");
    EXPECT_TRUE(result);
    if (!result) return "";
    EXPECT_EQ(result->status, 201) << result->body;
    return json::parse(result->body).value("token", "");
  }

  void RecordChange(const std::string& version) {
    auto recorded = Client(ci_token_).Post(
        "/api/v1/changes", json{{"service", "checkout"}, {"version", version}}.dump(),
        "application/json");
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->status, 201) << recorded->body;
  }

  uint64_t LedgerSize() {
    auto count = server_->store().EntryCount();
    EXPECT_TRUE(count.has_value());
    return count.value_or(0);
  }

  std::string LastLedgerAction() {
    const uint64_t size = LedgerSize();
    auto entries = server_->store().ReadEntries(size - 1, 1);
    EXPECT_TRUE(entries.has_value());
    if (!entries || entries->size() != 1) return "";
    auto entry = ledger::DecodeEntry(entries->front().encoded);
    EXPECT_TRUE(entry.has_value());
    return entry ? entry->action + " by " + entry->actor : "";
  }

  // Checks that `result` is an error with `status` whose body follows the error schema.
  static void ExpectError(const httplib::Result& result, int status,
                          std::string_view message_part = "") {
    ASSERT_TRUE(result) << "no response";
    EXPECT_EQ(result->status, status) << result->body;
    const json body = json::parse(result->body, nullptr, false);
    auto valid = Validate(body, ErrorSchema());
    EXPECT_TRUE(valid.has_value()) << result->body;
    if (!message_part.empty()) {
      EXPECT_NE(result->body.find(message_part), std::string::npos) << result->body;
    }
  }

  // High by default, so that tests with many rejected requests are not rate-limited.
  int rate_limit_burst_ = 1000;
  testing::TempDir temp_;
  store::SystemClock clock_;
  std::unique_ptr<ControlPlaneServer> server_;
  std::string admin_token_, lead_token_, ci_token_;
};

TEST_F(ApiServerTest, OpenApiListsExactlyTheRoutes) {
  auto result = Client("").Get("/api/v1/openapi.json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  const json document = json::parse(result->body);

  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, operations] : document["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.emplace(upper, path);
    }
  }
  std::set<std::pair<std::string, std::string>> routed;
  for (const Route& route : server_->router().routes()) routed.emplace(route.method, route.path);
  EXPECT_EQ(documented, routed);
  EXPECT_EQ(document["components"]["schemas"]["Error"], ToJsonSchema(ErrorSchema()));
}

TEST_F(ApiServerTest, EveryDocumentedRouteIsServed) {
  auto result = Client("").Get("/api/v1/openapi.json");
  ASSERT_TRUE(result);
  const json document = json::parse(result->body);
  for (const auto& [path, operations] : document["paths"].items()) {
    std::string concrete = path;
    for (size_t open; (open = concrete.find('{')) != std::string::npos;) {
      concrete.replace(open, concrete.find('}') - open + 1, "X-1");
    }
    for (const auto& [method, operation] : operations.items()) {
      httplib::Client client = Client(admin_token_);
      httplib::Result answer = method == "get"    ? client.Get(concrete)
                               : method == "post" ? client.Post(concrete, "{}", "application/json")
                               : method == "put"  ? client.Put(concrete, "{}", "application/json")
                                                  : client.Delete(concrete);
      ASSERT_TRUE(answer) << method << " " << concrete;
      EXPECT_NE(answer->status, 405) << method << " " << concrete;
      EXPECT_EQ(answer->body.find("no route"), std::string::npos) << method << " " << concrete;
    }
  }
}

TEST_F(ApiServerTest, HealthAndReadinessArePublic) {
  auto health = Client("").Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = Client("").Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body)["status"], "ready");
}

TEST_F(ApiServerTest, BadInputChangesNothing) {
  auto before = server_->store().TableDigests();
  ASSERT_TRUE(before.has_value()) << before.error().message;

  httplib::Client lead = Client(lead_token_);
  httplib::Client ci = Client(ci_token_);
  ExpectError(lead.Post("/api/v1/incidents", "{\"service\": ", "application/json"), 400,
              "not valid JSON");
  ExpectError(lead.Post("/api/v1/incidents", "[1, 2]", "application/json"), 400,
              "must be an object");
  ExpectError(lead.Post("/api/v1/incidents",
                        R"({"service":"checkout","severity":"sev2","title":"t","colour":"red"})",
                        "application/json"),
              400, "unknown field `colour`");
  ExpectError(lead.Post("/api/v1/incidents", R"({"service":"checkout","severity":2,"title":"t"})",
                        "application/json"),
              400, "field `severity` must be a string, got an integer");
  ExpectError(
      lead.Post("/api/v1/incidents", R"({"service":"checkout","title":"t"})", "application/json"),
      400, "missing required field `severity`");
  ExpectError(ci.Post("/api/v1/changes",
                      R"({"service":"checkout","version":"v1","migrations":[{"id":"m"}]})",
                      "application/json"),
              400, "missing required field `migrations[0].reversible`");
  ExpectError(ci.Post("/api/v1/changes", R"({"service":"checkout","version":"v1","time":"soon"})",
                      "application/json"),
              400, "RFC 3339");
  const std::string oversized =
      R"({"service":"checkout","severity":"sev2","title":")" + std::string(2 << 20, 'x') + "\"}";
  ExpectError(lead.Post("/api/v1/incidents", oversized, "application/json"), 413, "limit");
  ExpectError(lead.Get("/api/v1/incidents/INC-404"), 404, "incident INC-404 not found");
  ExpectError(lead.Post("/api/v1/incidents/INC-404/assess", "{}", "application/json"), 404,
              "INC-404");
  ExpectError(lead.Get("/api/v1/changes/CHG-404"), 404, "CHG-404");
  ExpectError(lead.Get("/api/v1/jobs/77"), 404, "job 77 not found");
  ExpectError(lead.Get("/api/v1/services/nope/freeze"), 404, "service nope");
  ExpectError(lead.Get("/api/v1/incidents?colour=red"), 400, "unknown query parameter");
  ExpectError(lead.Get("/api/v1/incidents?limit=0"), 400, "from 1 to 1000");
  // Every list route checks `limit` the same way; none clamps it silently.
  ExpectError(lead.Get("/api/v1/signals?limit=5000"), 400, "5000");
  ExpectError(lead.Get("/api/v1/signals?limit=0"), 400, "from 1 to 1000");
  ExpectError(lead.Get("/api/v1/discovered-rollbacks?limit=1001"), 400, "from 1 to 1000");
  // A negative limit names the real range, and a leading zero is not a second spelling of 1.
  for (const std::string limit : {"-1", "01", "007", "1e2"}) {
    SCOPED_TRACE(limit);
    ExpectError(lead.Get("/api/v1/incidents?limit=" + limit), 400,
                "query parameter `limit` must be a whole number from 1 to 1000 without leading "
                "zeros");
  }
  ExpectError(lead.Get("/api/v1/incidents?state=done"), 400, "must be one of");
  ExpectError(lead.Get("/api/v1/nothing-here"), 404, "no route");
  ExpectError(lead.Delete("/api/v1/incidents"), 405, "does not accept DELETE");
  ExpectError(Client("").Get("/api/v1/incidents"), 401, "missing bearer token");
  ExpectError(Client("bkt_1_forged").Get("/api/v1/incidents"), 401);

  auto after = server_->store().TableDigests();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*before, *after);
}

TEST_F(ApiServerTest, UnauthenticatedIsCountedNotLedgered) {
  const uint64_t ledger_before = LedgerSize();
  ExpectError(Client("bkt_9_guess").Get("/api/v1/whoami"), 401);
  ExpectError(Client("").Post("/api/v1/incidents", "{}", "application/json"), 401);
  EXPECT_EQ(LedgerSize(), ledger_before);

  auto metrics = Client("").Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("backout_http_unauthenticated_total 2"), std::string::npos)
      << metrics->body;
}

TEST_F(ApiServerTest, ForbiddenIsLedgered) {
  const uint64_t ledger_before = LedgerSize();
  ExpectError(Client(ci_token_).Post("/api/v1/incidents",
                                     R"({"service":"checkout","severity":"sev2","title":"t"})",
                                     "application/json"),
              403, "open_incident needs the role");
  EXPECT_EQ(LedgerSize(), ledger_before + 1);
  EXPECT_EQ(LastLedgerAction(), "access.refused by ci-bot");
  EXPECT_EQ(server_->metrics().Value(kRefusedTotal), 1);
}

TEST_F(ApiServerTest, UserTokenIsShownOnceAndWorks) {
  auto whoami = Client(lead_token_).Get("/api/v1/whoami");
  ASSERT_TRUE(whoami);
  ASSERT_EQ(whoami->status, 200);
  const json body = json::parse(whoami->body);
  EXPECT_EQ(body["name"], "lead-1");
  EXPECT_EQ(body["roles"], json::array({"engineering-lead"}));

  auto users = Client(admin_token_).Get("/api/v1/users");
  ASSERT_TRUE(users);
  ASSERT_EQ(users->status, 200);
  EXPECT_EQ(users->body.find(lead_token_), std::string::npos);
}

TEST_F(ApiServerTest, RevokedTokenGets401) {
  auto whoami = Client(lead_token_).Get("/api/v1/whoami");
  ASSERT_TRUE(whoami);
  const std::string token_id = json::parse(whoami->body)["token_id"];
  auto revoked = Client(admin_token_).Delete("/api/v1/tokens/" + token_id);
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->status, 200) << revoked->body;
  ExpectError(Client(lead_token_).Get("/api/v1/whoami"), 401, "revoked");
}

TEST_F(ApiServerTest, ReloadRecordsPolicyByCaller) {
  ExpectError(Client(lead_token_).Post("/api/v1/config/reload", "{}", "application/json"), 403);
  EXPECT_EQ(LastLedgerAction(), "access.refused by lead-1");

  auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  ASSERT_TRUE(reloaded);
  ASSERT_EQ(reloaded->status, 200) << reloaded->body;
  EXPECT_EQ(json::parse(reloaded->body)["loaded_by"], "admin");
  EXPECT_EQ(LastLedgerAction(), "policy.loaded by admin");
}

TEST_F(ApiServerTest, ReloadAcceptsEmptyBody) {
  auto empty = Client(admin_token_).Post("/api/v1/config/reload", "", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200) << empty->body;

  auto no_type = Client(admin_token_).Post("/api/v1/config/reload");
  ASSERT_TRUE(no_type);
  EXPECT_EQ(no_type->status, 200) << no_type->body;

  const std::string status = RawStatusLine(
      server_->port(), fmt::format("POST /api/v1/config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
                                   admin_token_));
  EXPECT_EQ(status, "HTTP/1.1 200 OK");
}

// A secret reference that cannot be resolved is a config mistake: the reload fails with 400
// naming the key and the reference, and the running config stays in force.
TEST_F(ApiServerTest, ReloadRejectsUnresolvedSecret) {
  const std::string original = ReadFile(temp_.path() / "backout.yaml") + "\n";
  for (const std::string reference : {"env:BACKOUT_TEST_UNSET_VARIABLE", "file:/nonexistent"}) {
    std::ofstream(temp_.path() / "backout.yaml") << original
                                                 << fmt::format(
                                                        "  - name: payments\n"
                                                        "    provider:\n"
                                                        "      kind: command\n"
                                                        "      run: [{}/rollback.sh]\n"
                                                        "      env: {{DEPLOY_TOKEN: \"{}\"}}\n",
                                                        temp_.path().string(), reference);
    auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
    ExpectError(reloaded, 400, "provider.env.DEPLOY_TOKEN");
    ASSERT_TRUE(reloaded);
    EXPECT_NE(reloaded->body.find(reference), std::string::npos) << reloaded->body;

    auto services = Client(lead_token_).Get("/api/v1/services");
    ASSERT_TRUE(services);
    EXPECT_EQ(services->body.find("payments"), std::string::npos) << services->body;
  }
}

// The fixture's service has neither checks nor a readiness command, so no validation can find it
// recovered, and every reload logs both warnings with the service's name.
TEST_F(ApiServerTest, ReloadLogsConfigWarnings) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  spdlog::set_default_logger(previous);
  const std::string logs = captured.str();

  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->status, 200) << reloaded->body;
  EXPECT_NE(logs.find("event=config_warning"), std::string::npos) << logs;
  EXPECT_NE(logs.find("service checkout has no `checks`"), std::string::npos) << logs;
  EXPECT_NE(logs.find("service checkout: the command provider has none of `readiness`, `status`"),
            std::string::npos)
      << logs;
}

// A chunked body over the limit has no Content-Length, so the log line names the encoding instead
// of an empty content_length.
TEST_F(ApiServerTest, ChunkedBodyTooLargeLogsEncoding) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  const std::string piece(64 * 1024, ' ');
  size_t sent = 0;
  auto answer = Client(lead_token_)
                    .Post(
                        "/api/v1/incidents",
                        [&](size_t, httplib::DataSink& sink) {
                          if (sent > (size_t{2} << 20)) {
                            sink.done();
                            return true;
                          }
                          sent += piece.size();
                          return sink.write(piece.data(), piece.size());
                        },
                        "application/json");
  spdlog::set_default_logger(previous);
  const std::string logs = captured.str();

  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 413) << answer->body;
  EXPECT_NE(logs.find("event=payload_too_large"), std::string::npos) << logs;
  EXPECT_NE(logs.find("transfer_encoding=chunked"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("content_length="), std::string::npos) << logs;
}

// ledger.checkpoint_interval is read at start only, so a reload that changes it warns instead of
// changing the interval silently.
TEST_F(ApiServerTest, ReloadWarnsCheckpointIntervalKept) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  auto unchanged = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  const std::string unchanged_logs = captured.str();
  std::ofstream(temp_.path() / "backout.yaml", std::ios::app)
      << "ledger:\n  checkpoint_interval: 5s\n";
  auto changed = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  spdlog::set_default_logger(previous);
  const std::string changed_logs = captured.str().substr(unchanged_logs.size());

  ASSERT_TRUE(unchanged);
  EXPECT_EQ(unchanged->status, 200) << unchanged->body;
  EXPECT_EQ(unchanged_logs.find("checkpoint_interval"), std::string::npos) << unchanged_logs;
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 200) << changed->body;
  EXPECT_NE(changed_logs.find("[warning]"), std::string::npos) << changed_logs;
  EXPECT_NE(changed_logs.find("key=ledger.checkpoint_interval running=1s loaded=5s"),
            std::string::npos)
      << changed_logs;
  EXPECT_NE(changed_logs.find("a restart applies the loaded value"), std::string::npos)
      << changed_logs;
}

// Clients that send headers announcing a body and then stall each hold a worker thread; a dozen
// of them must not keep the server from serving others.
TEST_F(ApiServerTest, StalledClientsDoNotBlockOthers) {
  std::vector<int> stalled;
  for (int i = 0; i < 12; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server_->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string head =
        "POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n";
    ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    stalled.push_back(fd);
  }
  httplib::Client client = Client("");
  client.set_read_timeout(std::chrono::seconds(5));
  auto ready = client.Get("/readyz");
  for (int fd : stalled) ::close(fd);
  ASSERT_TRUE(ready) << "no answer within 5 s while 12 clients stalled";
  EXPECT_EQ(ready->status, 200) << ready->body;
}

// Percent-encoded bytes that do not decode to UTF-8 get a 400 naming the part, not a 500.
TEST_F(ApiServerTest, PathOrQueryNotUtf8IsRejected) {
  auto path = Client(lead_token_).Get("/api/v1/incidents/INC-%FF");
  ASSERT_TRUE(path);
  EXPECT_EQ(path->status, 400) << path->body;
  EXPECT_NE(path->body.find("the request path is not UTF-8"), std::string::npos) << path->body;

  auto query = Client(lead_token_).Get("/api/v1/changes?service=%C3");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, 400) << query->body;
  EXPECT_NE(query->body.find("query parameter service is not UTF-8"), std::string::npos)
      << query->body;

  auto fine = Client(lead_token_).Get("/api/v1/changes?service=%C3%A9");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->body.find("not UTF-8"), std::string::npos) << fine->body;
}

TEST_F(ApiServerTest, EmptyFilterParameterIsRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/v1/changes?service=", "service"},
      {"/api/v1/incidents?service=", "service"},
      {"/api/v1/incidents?state=", "state"},
      {"/api/v1/discovered-rollbacks?service=", "service"},
      {"/api/v1/action-items?owner=", "owner"},
      {"/api/v1/action-items?service=checkout&overdue=", "overdue"},
      {"/api/v1/notifications?failed=", "failed"},
      {"/api/v1/signals?service=", "service"},
      {"/api/v1/audit/findings?from=", "from"},
      {"/api/v1/evidence/population?to=", "to"},
  };
  for (const auto& [path, name] : cases) {
    SCOPED_TRACE(path);
    ExpectError(Client(lead_token_).Get(path), 400,
                fmt::format("query parameter `{}` is empty", name));
  }

  // The page cursor may be empty: it means the first page.
  auto first_page = Client(lead_token_).Get("/api/v1/changes?after=");
  ASSERT_TRUE(first_page);
  EXPECT_EQ(first_page->status, 200) << first_page->body;
}

TEST_F(ApiServerTest, EmptyPeriodIsRejected) {
  for (const std::string path :
       {"/api/v1/audit/findings", "/api/v1/evidence", "/api/v1/evidence/population"}) {
    SCOPED_TRACE(path);
    ExpectError(
        Client(lead_token_).Get(path + "?from=2026-12-05T00:00:00Z&to=2026-12-01T00:00:00Z"), 400,
        "from 2026-12-05T00:00:00.000000Z is not before to 2026-12-01T00:00:00.000000Z");
  }
}

// A confirmation may carry an attachment up to the 10 MiB limit, so its body limit is larger
// than the server's default of 1 MiB.
TEST_F(ApiServerTest, ConfirmationBodyFitsLargestAttachment) {
  const std::string path = "/api/v1/incidents/INC-404/checks/smoke/confirm";
  const std::string base64_of_two_mib((size_t{2} << 20) / 3 * 4, 'A');
  const json body = {{"note", "saw the page"},
                     {"attachment", {{"name", "shot.png"}, {"content_base64", base64_of_two_mib}}}};
  auto fits = Client(lead_token_).Post(path, body.dump(), "application/json");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 404) << fits->body.substr(0, 400);

  const std::string base64_of_eleven_mib((size_t{11} << 20) / 3 * 4, 'A');
  const json too_large = {
      {"note", "saw the page"},
      {"attachment", {{"name", "shot.png"}, {"content_base64", base64_of_eleven_mib}}}};
  auto rejected = Client(lead_token_).Post(path, too_large.dump(), "application/json");
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 413) << rejected->body.substr(0, 400);
}

TEST_F(ApiServerTest, DocumentBodyFitsAttachmentLimit) {
  // INC-404 does not exist, so a body within the limit reaches the handler and gets 404.
  const std::string path = "/api/v1/incidents/INC-404/document";
  const std::string base64_of_ten_mib = std::string((size_t{10} << 20) / 3 * 4, 'A') + "AA==";
  const json body = {
      {"root_cause", "v2 dropped the retry"},
      {"attachments", {{{"name", "app.log"}, {"content_base64", base64_of_ten_mib}}}}};
  auto fits = Client(lead_token_).Post(path, body.dump(), "application/json");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 404) << fits->body.substr(0, 400);

  const std::string base64_of_eleven_mib((size_t{11} << 20) / 3 * 4, 'A');
  const json too_large = {
      {"root_cause", "v2 dropped the retry"},
      {"attachments", {{{"name", "app.log"}, {"content_base64", base64_of_eleven_mib}}}}};
  auto rejected = Client(lead_token_).Post(path, too_large.dump(), "application/json");
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 413) << rejected->body.substr(0, 400);
}

TEST_F(ApiServerTest, CheckpointCoversAllEntries) {
  // The config keeps the default checkpoint_interval of 1 s, so these writes, made well within
  // a second of the first, are not all signed as they commit.
  RecordChange("v2");
  RecordChange("v3");
  const uint64_t written = LedgerSize();

  auto result = Client(admin_token_).Get("/api/v1/ledger/checkpoint");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_GE(json::parse(result->body).value("tree_size", uint64_t{0}), written);

  RecordChange("v4");
  ASSERT_TRUE(server_->Stop());
  auto latest = server_->store().LatestCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, LedgerSize());
}

// With the default checkpoint_interval of 1 s, the checkpoint thread signs every entry within
// about a second even when no later write or request signs it.
TEST_F(ApiServerTest, CheckpointThreadSignsAppends) {
  RecordChange("v2");
  RecordChange("v3");
  const uint64_t written = LedgerSize();

  // The deadline is three intervals, so a slow shared machine does not fail the test. One interval
  // is the bound the checkpoint thread keeps.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  uint64_t signed_size = 0;
  while (signed_size < written && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto latest = server_->store().LatestCheckpoint();
    ASSERT_TRUE(latest.has_value()) << latest.error().message;
    if (latest->has_value()) signed_size = (*latest)->tree_size;
  }
  EXPECT_GE(signed_size, written);
}

TEST_F(ApiServerTest, ChangeRecordedByCiIsListed) {
  auto recorded = Client(ci_token_).Post(
      "/api/v1/changes",
      R"({"service":"checkout","version":"v2","previous_version":"v1","migrations":[{"id":"m1","reversible":false}]})",
      "application/json");
  ASSERT_TRUE(recorded);
  ASSERT_EQ(recorded->status, 201) << recorded->body;
  auto listed = Client(lead_token_).Get("/api/v1/changes?service=checkout");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200);
  const json body = json::parse(listed->body);
  ASSERT_EQ(body["items"].size(), 1u);
  EXPECT_EQ(body["items"][0]["version"], "v2");
  EXPECT_EQ(body["next_after"], "");
}

// A page cursor that is not an id of the list's form is rejected, naming `after`, the value and
// the form: CHG-03 would otherwise sort after CHG-9 and skip CHG-4 to CHG-9.
TEST_F(ApiServerTest, RejectsMalformedPageCursor) {
  RecordChange("v1");
  const std::vector<std::pair<std::string, std::string>> rejected = {
      {"/api/v1/changes", "CHG-03"},
      {"/api/v1/changes", "garbage"},
      {"/api/v1/changes", "chg-3"},
      {"/api/v1/changes", "CHG-3x"},
      {"/api/v1/changes", "INC-3"},
      {"/api/v1/changes", "A"},
      {"/api/v1/changes", "CHG-"},
      {"/api/v1/incidents", "CHG-1"},
      {"/api/v1/discovered-rollbacks", "DRB-0"},
      {"/api/v1/notifications", "NTF-1a"},
      {"/api/v1/users", "-admin"},
      {"/api/v1/signals", "garbage"},
  };
  for (const auto& [path, after] : rejected) {
    SCOPED_TRACE(path + "?after=" + after);
    auto result = Client(admin_token_).Get(path + "?after=" + after);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << result->body;
    EXPECT_NE(result->body.find("`after`"), std::string::npos) << result->body;
    EXPECT_NE(result->body.find("'" + after + "'"), std::string::npos) << result->body;
    EXPECT_NE(result->body.find("expected"), std::string::npos) << result->body;
  }
  auto changes = Client(admin_token_).Get("/api/v1/changes?after=CHG-03");
  ASSERT_TRUE(changes);
  EXPECT_NE(changes->body.find("CHG-<number>"), std::string::npos) << changes->body;

  const std::vector<std::pair<std::string, std::string>> accepted = {
      {"/api/v1/changes", "CHG-1"},       {"/api/v1/changes", ""},
      {"/api/v1/incidents", "INC-10"},    {"/api/v1/discovered-rollbacks", "DRB-2"},
      {"/api/v1/notifications", "NTF-1"}, {"/api/v1/users", "admin"},
      {"/api/v1/signals", "am:abc@2026"},
  };
  for (const auto& [path, after] : accepted) {
    SCOPED_TRACE(path + "?after=" + after);
    auto result = Client(admin_token_).Get(path + "?after=" + after);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200) << result->body;
  }
}

// Numbered ids list by number, not as text (CHG-2 before CHG-10), and paging with next_after
// keeps that order.
TEST_F(ApiServerTest, ListsNumberedIdsByNumber) {
  std::vector<std::string> expected;
  for (int i = 1; i <= 11; ++i) {
    RecordChange(fmt::format("v{}", i));
    expected.push_back(fmt::format("CHG-{}", i));
  }
  auto whole = Client(lead_token_).Get("/api/v1/changes");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  std::vector<std::string> listed;
  const json whole_body = json::parse(whole->body);
  for (const json& item : whole_body["items"]) listed.push_back(item["id"]);
  EXPECT_EQ(listed, expected);

  std::vector<std::string> paged;
  std::string after;
  for (int page = 0; page < 5; ++page) {
    auto result = Client(lead_token_).Get("/api/v1/changes?limit=4&after=" + after);
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << result->body;
    const json body = json::parse(result->body);
    for (const json& item : body["items"]) paged.push_back(item["id"]);
    after = body["next_after"];
    if (after.empty()) break;
  }
  EXPECT_EQ(paged, expected);

  std::vector<std::string> incidents_expected;
  for (int i = 1; i <= 11; ++i) {
    auto opened = Client(lead_token_)
                      .Post("/api/v1/incidents",
                            json{{"service", "checkout"},
                                 {"severity", "sev3"},
                                 {"title", fmt::format("t{}", i)}}
                                .dump(),
                            "application/json");
    ASSERT_TRUE(opened);
    ASSERT_EQ(opened->status, 201) << opened->body;
    incidents_expected.push_back(json::parse(opened->body)["id"]);
  }
  auto incidents = Client(lead_token_).Get("/api/v1/incidents");
  ASSERT_TRUE(incidents);
  ASSERT_EQ(incidents->status, 200) << incidents->body;
  std::vector<std::string> incidents_listed;
  const json incidents_body = json::parse(incidents->body);
  for (const json& item : incidents_body["items"]) incidents_listed.push_back(item["id"]);
  EXPECT_EQ(incidents_listed, incidents_expected);
}

TEST_F(ApiServerTest, MissingRequiredQueryParameterIsRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/v1/ledger/proof", "entry"},
      {"/api/v1/ledger/consistency?from=1", "to"},
      {"/api/v1/ledger/consistency?to=2", "from"},
      {"/api/v1/evidence?from=2026-12-01T00:00:00Z", "to"},
      {"/api/v1/evidence?to=2026-12-01T00:00:00Z", "from"},
  };
  for (const auto& [path, name] : cases) {
    SCOPED_TRACE(path);
    ExpectError(Client(admin_token_).Get(path), 400,
                fmt::format("missing required query parameter `{}`", name));
  }
}

// The document's `required` on each query parameter is the route's, and the parameters the
// handlers cannot do without are marked.
TEST_F(ApiServerTest, OpenApiMarksRequiredQueryParameters) {
  auto result = Client("").Get("/api/v1/openapi.json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  const json document = json::parse(result->body);

  std::set<std::string> required;
  for (const Route& route : server_->router().routes()) {
    std::string method = route.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const json& operation = document["paths"][route.path][method];
    for (const QueryParameter& parameter : route.query) {
      SCOPED_TRACE(route.path + " " + parameter.name);
      const auto documented = std::find_if(
          operation["parameters"].begin(), operation["parameters"].end(),
          [&](const json& p) { return p["in"] == "query" && p["name"] == parameter.name; });
      ASSERT_NE(documented, operation["parameters"].end());
      EXPECT_EQ((*documented)["required"], parameter.required);
      if (parameter.required) required.insert(route.operation_id + "." + parameter.name);
    }
  }
  EXPECT_EQ(required, (std::set<std::string>{"getInclusionProof.entry", "getConsistencyProof.from",
                                             "getConsistencyProof.to", "getPeriodEvidence.from",
                                             "getPeriodEvidence.to"}));
}

// Each JSON success response follows the schema the OpenAPI document gives for its route.
TEST_F(ApiServerTest, ResponsesMatchDocumentedSchemas) {
  RecordChange("v2");
  // A service whose provider reads history, so that reconcile returns 200.
  const std::filesystem::path root = temp_.path() / "storefront";
  for (const std::string release : {"v1", "v2"}) {
    std::filesystem::create_directories(root / "releases" / release);
    std::ofstream(root / "releases" / release / ".backout-release-complete");
  }
  std::filesystem::create_symlink(root / "releases" / "v2", root / "current");
  std::ofstream(temp_.path() / "backout.yaml", std::ios::app) << fmt::format(
      "  - name: storefront\n    provider: {{kind: releases, root: {}}}\n", root.string());
  auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  ASSERT_TRUE(reloaded);
  ASSERT_EQ(reloaded->status, 200) << reloaded->body;

  struct Call {
    std::string method;
    std::string path;
    std::string token;
  };
  const std::vector<Call> calls = {
      {"GET", "/healthz", ""},
      {"GET", "/readyz", ""},
      {"GET", "/api/v1/users", admin_token_},
      {"GET", "/api/v1/services", lead_token_},
      {"GET", "/api/v1/changes", lead_token_},
      {"GET", "/api/v1/incidents", lead_token_},
      {"GET", "/api/v1/discovered-rollbacks", lead_token_},
      {"GET", "/api/v1/notifications", admin_token_},
      {"GET", "/api/v1/action-items", lead_token_},
      {"GET", "/api/v1/services/checkout/timeline", lead_token_},
      {"POST", "/api/v1/services/storefront/reconcile", lead_token_},
  };
  for (const Call& call : calls) {
    SCOPED_TRACE(call.method + " " + call.path);
    httplib::Client client = Client(call.token);
    auto result = call.method == "GET" ? client.Get(call.path)
                                       : client.Post(call.path, "{}", "application/json");
    ASSERT_TRUE(result);
    const Router::Match match = server_->router().Find(call.method, call.path);
    ASSERT_EQ(match.status, Router::MatchStatus::kFound);
    ASSERT_EQ(result->status, match.route->success_status) << result->body;
    auto valid = Validate(json::parse(result->body), match.route->response);
    EXPECT_TRUE(valid.has_value()) << valid.error().message << "\n" << result->body;
  }

  // The reconcile route documents its report field by field, not as a free-form object.
  auto document = Client("").Get("/api/v1/openapi.json");
  ASSERT_TRUE(document);
  const json schema =
      json::parse(document->body)["paths"]["/api/v1/services/{name}/reconcile"]["post"]["responses"]
                                 ["200"]["content"]["application/json"]["schema"];
  EXPECT_EQ(schema.value("additionalProperties", json(true)), false) << schema.dump();
  EXPECT_TRUE(schema["properties"].contains("discovered_rollbacks")) << schema.dump();
  EXPECT_TRUE(schema["required"].is_array()) << schema.dump();
}

// Every rejected webhook delivery is counted, but the log names a rejected address once per
// minute, so a sender with a wrong token cannot fill the log.
TEST_F(ApiServerTest, RejectedWebhookLoggedOncePerInterval) {
  ::setenv("BACKOUT_TEST_ALERTMANAGER_TOKEN", "right-token", /*overwrite=*/1);
  std::ofstream(temp_.path() / "backout.yaml", std::ios::app)
      << "signals:\n  alertmanager:\n    bearer_token: env:BACKOUT_TEST_ALERTMANAGER_TOKEN\n";
  auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  ASSERT_TRUE(reloaded);
  ASSERT_EQ(reloaded->status, 200) << reloaded->body;

  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  for (int i = 0; i < 4; ++i) {
    ExpectError(
        Client("wrong-token").Post("/api/v1/signals/alertmanager", "{}", "application/json"), 401,
        "bearer token is not the receiver's");
  }
  spdlog::set_default_logger(previous);

  const std::string logs = captured.str();
  size_t lines = 0;
  for (size_t at = 0; (at = logs.find("event=webhook_rejected", at)) != std::string::npos; ++at) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << logs;
  EXPECT_NE(logs.find("not_logged_since_last=0"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("wrong-token"), std::string::npos) << logs;
  EXPECT_EQ(server_->metrics().Value(kSignalWebhooksRejectedTotal, {{"reason", "unauthenticated"}}),
            4);
}

// The fixture with the server's default rate limit of 20 failed attempts per address.
class ApiServerDefaultLimitTest : public ApiServerTest {
 protected:
  ApiServerDefaultLimitTest() { rate_limit_burst_ = RateLimiter::Options{}.burst; }

  void ConfigureWebhookToken() {
    ::setenv("BACKOUT_TEST_ALERTMANAGER_TOKEN", "right-token", /*overwrite=*/1);
    std::ofstream(temp_.path() / "backout.yaml", std::ios::app)
        << "signals:\n  alertmanager:\n    bearer_token: env:BACKOUT_TEST_ALERTMANAGER_TOKEN\n";
    auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
    ASSERT_TRUE(reloaded);
    ASSERT_EQ(reloaded->status, 200) << reloaded->body;
  }
};

// Wrong webhook tokens from one address neither block the right token nor users' API calls.
TEST_F(ApiServerDefaultLimitTest, WrongWebhookTokensBlockOnlyThemselves) {
  ASSERT_NO_FATAL_FAILURE(ConfigureWebhookToken());
  const std::string body = R"({"version":"4","alerts":[]})";
  for (int i = 0; i < rate_limit_burst_; ++i) {
    ExpectError(
        Client("wrong-token").Post("/api/v1/signals/alertmanager", body, "application/json"), 401,
        "bearer token is not the receiver's");
  }
  ExpectError(Client("wrong-token").Post("/api/v1/signals/alertmanager", body, "application/json"),
              429, "rate_limited");

  auto accepted =
      Client("right-token").Post("/api/v1/signals/alertmanager", body, "application/json");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 200) << accepted->body;
  auto listed = Client(lead_token_).Get("/api/v1/changes");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
}

// The receiver checks the sender's token before the media type, so a wrong token gets 401
// whatever the body is, and only a sender with the right token learns that it must send JSON.
TEST_F(ApiServerDefaultLimitTest, WebhookTokenCheckedBeforeMediaType) {
  ASSERT_NO_FATAL_FAILURE(ConfigureWebhookToken());
  ExpectError(Client("wrong-token").Post("/api/v1/signals/alertmanager", "alerts", "text/plain"),
              401, "bearer token is not the receiver's");
  ExpectError(Client("right-token").Post("/api/v1/signals/alertmanager", "alerts", "text/plain"),
              415, "the request body must be JSON");
}

// A missing secret file gets 503 without its path, so Alertmanager retries. The log names the key
// once per interval, and the attempts are still rate-limited.
TEST_F(ApiServerDefaultLimitTest, UnreadableWebhookSecretAnswers503) {
  const std::string missing = (temp_.path() / "secrets" / "missing-token").string();
  std::ofstream(temp_.path() / "backout.yaml", std::ios::app)
      << "signals:\n  alertmanager:\n    bearer_token: file:" << missing << "\n";
  auto reloaded = Client(admin_token_).Post("/api/v1/config/reload", "{}", "application/json");
  ASSERT_TRUE(reloaded);
  ASSERT_EQ(reloaded->status, 200) << reloaded->body;

  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  const std::string body = R"({"version":"4","alerts":[]})";
  for (int i = 0; i < rate_limit_burst_; ++i) {
    auto answer =
        Client("any-token").Post("/api/v1/signals/alertmanager", body, "application/json");
    ExpectError(answer, 503, "secret cannot be read");
    if (answer) {
      EXPECT_EQ(answer->body.find("missing-token"), std::string::npos) << answer->body;
    }
  }
  ExpectError(Client("any-token").Post("/api/v1/signals/alertmanager", body, "application/json"),
              429, "rate_limited");
  spdlog::set_default_logger(previous);

  const std::string logs = captured.str();
  size_t lines = 0;
  for (size_t at = 0; (at = logs.find("event=webhook_secret_unreadable", at)) != std::string::npos;
       ++at) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << logs;
  EXPECT_NE(logs.find("signals.alertmanager.bearer_token"), std::string::npos) << logs;
  // The rate-limited attempt counts too, because the receiver reads the secret before the limiter.
  EXPECT_EQ(server_->metrics().Value(kSignalWebhooksRejectedTotal, {{"reason", "unavailable"}}),
            rate_limit_burst_ + 1);
}

// The quotes inside a rejected delivery's error are escaped, so the logfmt value stays one value.
TEST_F(ApiServerDefaultLimitTest, InvalidWebhookLogEscapesQuotes) {
  ASSERT_NO_FATAL_FAILURE(ConfigureWebhookToken());
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  auto answer = Client("right-token")
                    .Post("/api/v1/signals/alertmanager", R"({"alerts":[]})", "application/json");
  spdlog::set_default_logger(previous);
  const std::string logs = captured.str();

  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 400) << answer->body;
  EXPECT_NE(logs.find("reason=invalid"), std::string::npos) << logs;
  EXPECT_NE(logs.find(R"(expected the string \"4\")"), std::string::npos) << logs;
}

// The scheme name of the Authorization header is case-insensitive.
TEST_F(ApiServerDefaultLimitTest, WebhookBearerSchemeIgnoresCase) {
  ASSERT_NO_FATAL_FAILURE(ConfigureWebhookToken());
  httplib::Client client("127.0.0.1", server_->port());
  auto accepted =
      client.Post("/api/v1/signals/alertmanager", {{"Authorization", "bearer right-token"}},
                  R"({"version":"4","alerts":[]})", "application/json");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 200) << accepted->body;
}

}  // namespace
}  // namespace backout::server
