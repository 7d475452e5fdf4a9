#include "http/transcript.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <sstream>

#include "http/client.h"
#include "http/test_server.h"

namespace backout::http {
namespace {

using std::chrono::milliseconds;
using testing::LocalServer;

// A time source that starts at 2026-12-04T17:00:00Z and moves one second per call.
Transcript::TimeSource SteppingClock() {
  auto calls = std::make_shared<int>(0);
  return [calls] {
    return TimePoint(std::chrono::sys_days(std::chrono::year(2026) / 12 / 4) +
                     std::chrono::hours(17) + std::chrono::seconds((*calls)++));
  };
}

ClientOptions QuietOptions() {
  ClientOptions options;
  options.sleep = [](milliseconds) {};
  options.retry.base_delay = milliseconds(1);
  return options;
}

std::unique_ptr<Client> MakeClient(ClientOptions options) {
  auto client = Client::Create(std::move(options));
  EXPECT_TRUE(client.has_value()) << client.error().message;
  return client ? std::move(*client) : nullptr;
}

TEST(TranscriptTest, RecordsEveryAttempt) {
  LocalServer server;
  std::atomic<int> hits = 0;
  server.server().Get("/flaky", [&hits](const httplib::Request&, httplib::Response& response) {
    response.status = hits++ == 0 ? 503 : 200;
    response.set_content(response.status == 200 ? "ok" : "busy", "text/plain");
  });
  ASSERT_TRUE(server.Start());
  auto client = MakeClient(QuietOptions());
  Transcript transcript(SteppingClock());

  auto response = client->Send(Request{.url = server.Url("/flaky")}, &transcript);

  ASSERT_TRUE(response.has_value()) << response.error().message;
  std::vector<TranscriptEntry> entries = transcript.Entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].method, "GET");
  EXPECT_EQ(entries[0].url, server.Url("/flaky"));
  EXPECT_EQ(entries[0].attempt, 1);
  EXPECT_EQ(entries[0].status, 503);
  EXPECT_EQ(entries[0].response_body, "busy");
  EXPECT_EQ(entries[1].attempt, 2);
  EXPECT_EQ(entries[1].status, 200);
  EXPECT_EQ(entries[1].response_body, "ok");
  EXPECT_EQ(entries[1].time - entries[0].time, std::chrono::seconds(1));
  EXPECT_GT(entries[1].timing.total.count(), 0);
}

TEST(TranscriptTest, RecordsTransportFailure) {
  int port = testing::UnusedLoopbackPort();
  ClientOptions options = QuietOptions();
  options.retry.max_attempts = 1;
  auto client = MakeClient(std::move(options));
  Transcript transcript(SteppingClock());

  auto response =
      client->Send(Request{.url = fmt::format("http://127.0.0.1:{}/x", port)}, &transcript);

  ASSERT_FALSE(response.has_value());
  std::vector<TranscriptEntry> entries = transcript.Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].status, 0);
  EXPECT_NE(entries[0].error.find("Couldn't connect to server"), std::string::npos)
      << entries[0].error;
}

TEST(TranscriptTest, ToJsonListsEntries) {
  Transcript transcript(SteppingClock());
  transcript.Record(TranscriptEntry{.time = transcript.Now(),
                                    .method = "PUT",
                                    .url = "http://h/x",
                                    .attempt = 1,
                                    .request_headers = {{"Content-Type", "application/json"}},
                                    .request_body = "{}",
                                    .status = 204,
                                    .timing = {.total = std::chrono::microseconds(1500),
                                               .connect = std::chrono::microseconds(250)}});

  nlohmann::json json = transcript.ToJson();

  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["time"], "2026-12-04T17:00:00.000000Z");
  EXPECT_EQ(json[0]["method"], "PUT");
  EXPECT_EQ(json[0]["status"], 204);
  EXPECT_EQ(json[0]["timing_ms"]["total"], 1.5);
  EXPECT_EQ(json[0]["timing_ms"]["connect"], 0.25);
  EXPECT_EQ(json[0]["request_headers"],
            nlohmann::json::parse(R"([["Content-Type", "application/json"]])"));
  EXPECT_EQ(json[0]["request_body"], "{}");
  EXPECT_FALSE(json[0].contains("error"));
}

TEST(TranscriptTest, EncodesBinaryBodyAsBase64) {
  Transcript transcript(SteppingClock());
  transcript.Record(
      TranscriptEntry{.method = "GET", .response_body = std::string("\xff\x00\x01", 3)});

  nlohmann::json json = transcript.ToJson();

  EXPECT_EQ(json[0]["response_body_base64"], "/wAB");
  EXPECT_FALSE(json[0].contains("response_body"));
}

TEST(TranscriptTest, CutsLongBodies) {
  Transcript transcript(SteppingClock(), {}, 10);
  transcript.Record(TranscriptEntry{.method = "GET", .response_body = std::string(25, 'a')});

  EXPECT_EQ(transcript.Entries()[0].response_body, "aaaaaaaaaa...[15 more bytes not recorded]");
}

TEST(TranscriptTest, CutsAtCharacterBoundary) {
  Transcript transcript(SteppingClock(), {}, 4);
  // "aaé" is 4 bytes; the cut at 4 bytes would split the following "é".
  transcript.Record(TranscriptEntry{.method = "GET", .response_body = "aa\xc3\xa9\xc3\xa9zz"});

  EXPECT_EQ(transcript.Entries()[0].response_body, "aa\xc3\xa9...[4 more bytes not recorded]");
}

TEST(TranscriptTest, RedactsRecordedEntries) {
  Transcript transcript(SteppingClock(), RedactionRules{.json_fields = {"password"},
                                                        .query_params = {"key"},
                                                        .secret_values = {"opensesame"}});
  transcript.Record(
      TranscriptEntry{.method = "POST",
                      .url = "http://u:p@h/x?key=1&opensesame=2",
                      .request_headers = {{"Authorization", "Bearer t"}, {"X-Trace", "opensesame"}},
                      .request_body = R"({"password": "p", "note": "opensesame"})",
                      .response_headers = {{"Set-Cookie", "s=1"}},
                      .response_body = "echo opensesame",
                      .error = "failed near opensesame"});

  TranscriptEntry entry = transcript.Entries()[0];
  EXPECT_EQ(entry.url, "http://[REDACTED]@h/x?key=[REDACTED]&[REDACTED]=2");
  EXPECT_EQ(entry.request_headers,
            (Headers{{"Authorization", "[REDACTED]"}, {"X-Trace", "[REDACTED]"}}));
  EXPECT_EQ(entry.request_body, R"({"password": "[REDACTED]", "note": "[REDACTED]"})");
  EXPECT_EQ(entry.response_headers, (Headers{{"Set-Cookie", "[REDACTED]"}}));
  EXPECT_EQ(entry.response_body, "echo [REDACTED]");
  EXPECT_EQ(entry.error, "failed near [REDACTED]");
}

// A secret that the client sends in every possible place, and that the server echoes back, must
// appear in neither the transcript nor the log.
TEST(TranscriptTest, CanaryNeverReachesTranscriptOrLog) {
  const std::string canary = "canary-7f3a9c";
  LocalServer server;
  server.server().Post("/login", [&](const httplib::Request& request, httplib::Response& response) {
    response.set_header("Set-Cookie", "session=" + canary);
    response.set_header("X-Echo-Token", canary);
    response.set_content(
        fmt::format(R"({{"session": {{"refresh_token": "{}", "user": "ann"}}, "echo": "{}"}})",
                    canary, request.get_param_value("sig")),
        "application/json");
  });
  ASSERT_TRUE(server.Start());

  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  RedactionRules rules{.json_fields = {"password", "refresh_token"},
                       .query_params = {"sig"},
                       .secret_values = {canary}};
  ClientOptions options = QuietOptions();
  options.logger = logger;
  options.redaction = rules;
  auto client = MakeClient(std::move(options));
  Transcript transcript(SteppingClock(), rules);

  Request request{.method = Method::kPost,
                  .url = fmt::format("http://user:{}@127.0.0.1:{}/login?sig={}&path={}", canary,
                                     server.port(), canary, canary),
                  .body = fmt::format(R"({{"login": {{"password": "{}"}}, "text": "x {} y"}})",
                                      canary, canary)};
  request.headers.Add("Authorization", "Bearer " + canary);
  request.headers.Add("Cookie", "session=" + canary);
  request.headers.Add("Proxy-Authorization", "Basic " + canary);
  request.headers.Add("X-Amz-Security-Token", canary);
  request.headers.Add("Content-Type", "application/json");
  auto response = client->Send(request, &transcript);

  ASSERT_TRUE(response.has_value()) << response.error().message;
  ASSERT_EQ(response->status, 200);
  ASSERT_NE(response->body.find(canary), std::string::npos) << "the server did not echo the canary";
  std::string recorded = transcript.ToJson().dump();
  EXPECT_EQ(recorded.find(canary), std::string::npos) << recorded;
  EXPECT_NE(recorded.find("[REDACTED]"), std::string::npos) << recorded;
  EXPECT_NE(log.str().find("/login"), std::string::npos) << "nothing was logged: " << log.str();
  EXPECT_EQ(log.str().find(canary), std::string::npos) << log.str();
}

}  // namespace
}  // namespace backout::http
