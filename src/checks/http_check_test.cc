#include "checks/http_check.h"

#include <gtest/gtest.h>

#include <atomic>

#include "checks/test_support.h"
#include "support/child_process.h"
#include "support/metrics_target.h"

namespace backout::checks {
namespace {

using nlohmann::json;
using testing::MakeHttpClient;
using testing::ManualContext;

class HttpCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto target = backout::testing::MetricsTarget::Start();
    ASSERT_TRUE(target) << target.error();
    target_ = std::move(*target);
    client_ = MakeHttpClient();
    ASSERT_NE(client_, nullptr);
  }

  CheckResult Run(const json& settings, const SecretResolver& resolver = {}) {
    auto check = HttpCheck::Create("smoke", settings, resolver);
    EXPECT_TRUE(check) << (check ? "" : check.error().message);
    if (!check) return {};
    CheckContext context = ManualContext(clock_, client_.get());
    return (*check)->Run(context);
  }

  json HealthStep() {
    return {{"url", target_->Url() + "/health"}, {"expect_body_contains", "ok"}};
  }

  core::ManualClock clock_{core::Time(std::chrono::seconds(1'800'000'000))};
  std::unique_ptr<backout::testing::MetricsTarget> target_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(HttpCheckTest, HealthySmokeTestPasses) {
  CheckResult result = Run({{"steps", {HealthStep()}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  EXPECT_EQ(result.observation.kind, "http");
  EXPECT_EQ(result.observation.observed_at, clock_.Now());
}

TEST_F(HttpCheckTest, WrongStatusFails) {
  target_->SetHealth(503, "ok but degraded");

  CheckResult result = Run({{"steps", {HealthStep()}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("HTTP 503, expected 200"), std::string::npos)
      << result.observation.detail;
}

TEST_F(HttpCheckTest, MissingBodyTextFails) {
  target_->SetHealth(200, "starting");

  CheckResult result = Run({{"steps", {HealthStep()}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("does not contain 'ok'"), std::string::npos)
      << result.observation.detail;
}

TEST_F(HttpCheckTest, NoResponseFails) {
  auto port = backout::testing::FreeLoopbackPort();
  ASSERT_TRUE(port) << port.error();

  CheckResult result =
      Run({{"steps", {{{"url", fmt::format("http://127.0.0.1:{}/health", *port)}}}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("got no response"), std::string::npos)
      << result.observation.detail;
}

// A key transaction: log in, carry the token to the next request, and check a JSON field.
TEST_F(HttpCheckTest, TransactionCarriesCapturedValue) {
  target_->SetRoute(
      "POST", "/login",
      backout::testing::TargetResponse{200, R"({"session":{"token":"t-42"}})", "application/json"});
  target_->SetRoute("GET", "/orders", [](const backout::testing::TargetRequest& request) {
    auto auth = request.headers.find("Authorization");
    if (auth == request.headers.end() || auth->second != "Bearer t-42") {
      return backout::testing::TargetResponse{401, R"({"error":"no token"})", "application/json"};
    }
    return backout::testing::TargetResponse{200, R"({"status":"ok","count":3,"open":true})",
                                            "application/json"};
  });
  json settings = {{"steps",
                    {{{"name", "login"},
                      {"method", "POST"},
                      {"url", target_->Url() + "/login"},
                      {"body", R"({"user":"smoke"})"},
                      {"headers", {{"Content-Type", "application/json"}}},
                      {"capture", {{"token", "/session/token"}}}},
                     {{"name", "orders"},
                      {"url", target_->Url() + "/orders?incident=${incident_id}"},
                      {"headers", {{"Authorization", "Bearer ${token}"}}},
                      {"expect_json", {{"/status", "ok"}, {"/count", "3"}, {"/open", "true"}}}}}}};

  CheckResult result = Run(settings);

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  const auto requests = target_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].path, "/orders");
}

TEST_F(HttpCheckTest, JsonFieldMismatchFails) {
  target_->SetRoute(
      "GET", "/status",
      backout::testing::TargetResponse{200, R"({"status":"degraded"})", "application/json"});

  CheckResult result = Run(
      {{"steps", {{{"url", target_->Url() + "/status"}, {"expect_json", {{"/status", "ok"}}}}}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find(R"(/status is "degraded", expected "ok")"),
            std::string::npos)
      << result.observation.detail;
}

TEST_F(HttpCheckTest, UnknownVariableFails) {
  CheckResult result = Run(
      {{"steps", {{{"url", target_->Url() + "/health"}, {"headers", {{"X-Token", "${nope}"}}}}}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("unknown variable ${nope}"), std::string::npos)
      << result.observation.detail;
}

TEST_F(HttpCheckTest, SecretHeaderSentButNotShown) {
  target_->SetRoute("GET", "/private", [](const backout::testing::TargetRequest& request) {
    auto key = request.headers.find("X-Api-Key");
    const bool ok = key != request.headers.end() && key->second == "s3cret-value";
    return backout::testing::TargetResponse{ok ? 200 : 403, ok ? "ok" : "denied", "text/plain"};
  });
  SecretResolver resolver = [](std::string_view reference) -> core::Result<std::string> {
    if (reference == "env:SMOKE_KEY") return std::string("s3cret-value");
    return core::MakeError(core::ErrorCode::kNotFound, "no secret {}", reference);
  };
  json settings = {{"steps",
                    {{{"url", target_->Url() + "/private"},
                      {"secret_headers", {{"X-Api-Key", "env:SMOKE_KEY"}}}}}}};

  CheckResult result = Run(settings, resolver);

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  EXPECT_EQ(result.observation.detail.find("s3cret-value"), std::string::npos);
}

TEST_F(HttpCheckTest, RetriesWithinWindowUntilHealthy) {
  std::atomic<int> calls = 0;
  target_->SetRoute("GET", "/ready", [&calls](const backout::testing::TargetRequest&) {
    const bool ready = ++calls >= 3;
    return backout::testing::TargetResponse{ready ? 200 : 503, ready ? "ok" : "warming up",
                                            "text/plain"};
  });

  CheckResult result = Run(
      {{"steps", {{{"url", target_->Url() + "/ready"}}}}, {"within", "1m"}, {"interval", "10s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(HttpCheckTest, StillFailingAfterWindowFails) {
  target_->SetHealth(500, "broken");

  CheckResult result = Run({{"steps", {HealthStep()}}, {"within", "30s"}, {"interval", "10s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("attempt 4"), std::string::npos)
      << result.observation.detail;
}

TEST(HttpCheckSettingsTest, RejectsInvalidSettings) {
  const std::pair<json, std::string> cases[] = {
      {json::object(), "steps: missing or empty"},
      {{{"steps", json::array()}}, "steps: missing or empty"},
      {{{"steps", {{{"method", "GET"}}}}}, "steps[0].url: missing"},
      {{{"steps", {{{"url", "ftp://x"}}}}}, "steps[0].url: 'ftp://x' is not an http"},
      {{{"steps", {{{"url", "http://127.0.0.1/"}, {"method", "FETCH"}}}}}, "steps[0].method"},
      {{{"steps", {{{"url", "http://127.0.0.1/"}, {"expect_status", 42}}}}},
       "steps[0].expect_status: 42 is not an HTTP status"},
      {{{"steps", {{{"url", "http://127.0.0.1/"}, {"capture", {{"t", "token"}}}}}}},
       "steps[0].capture.t: 'token' is not a JSON pointer"},
      {{{"steps", {{{"url", "http://127.0.0.1/"}, {"expect", 200}}}}},
       "steps[0].expect: unknown key"},
      {{{"steps", {{{"url", "http://127.0.0.1/"}}}}, {"timeout", "0s"}},
       "timeout: '0s' is not a duration longer than zero"},
  };
  for (const auto& [settings, expected] : cases) {
    auto parsed = HttpCheckSettings::Parse(settings);
    ASSERT_FALSE(parsed) << settings.dump();
    EXPECT_NE(parsed.error().message.find(expected), std::string::npos)
        << settings.dump() << " → " << parsed.error().message;
  }
}

TEST(ExpandVariablesTest, ReplacesKnownAndRejectsUnknown) {
  const std::map<std::string, std::string> variables = {{"a", "1"}, {"b", "two"}};

  EXPECT_EQ(ExpandVariables("x${a}y${b}", variables).value_or("?"), "x1ytwo");
  EXPECT_EQ(ExpandVariables("plain", variables).value_or("?"), "plain");
  EXPECT_FALSE(ExpandVariables("${c}", variables));
  EXPECT_FALSE(ExpandVariables("${a", variables));
}

}  // namespace
}  // namespace backout::checks
