#include "checks/prometheus_check.h"

#include <gtest/gtest.h>

#include <thread>

#include "checks/test_support.h"
#include "store/system_clock.h"
#include "support/child_process.h"
#include "support/metrics_target.h"
#include "support/prometheus_server.h"

namespace backout::checks {
namespace {

using nlohmann::json;

constexpr int64_t kBase = 1'800'000'000;  // unix seconds of the synthetic samples

core::Time At(int64_t seconds) { return core::Time(std::chrono::seconds(seconds)); }

PrometheusCheckSettings BelowSettings(double threshold, std::chrono::seconds for_duration) {
  PrometheusCheckSettings settings;
  settings.url = "http://127.0.0.1:9";
  settings.query = "error_ratio";
  settings.below = threshold;
  settings.for_duration = for_duration;
  settings.step = std::chrono::seconds(1);
  return settings;
}

// A query_range matrix with one series sampled every second from `first`.
json Series(int64_t first, const std::vector<std::string>& values) {
  json samples = json::array();
  for (size_t i = 0; i < values.size(); ++i) {
    samples.push_back({kBase + first + static_cast<int64_t>(i), values[i]});
  }
  return {{"metric", {{"service", "web"}}}, {"values", samples}};
}

TEST(EvaluateConditionTest, HeldLongEnoughIsMet) {
  const json result = {Series(1, {"0.5", "0.01", "0.01", "0.01", "0.01"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(3)),
                                      At(kBase), At(kBase + 5));

  EXPECT_TRUE(evaluation.met) << evaluation.detail;
  ASSERT_TRUE(evaluation.run_start);
  EXPECT_EQ(*evaluation.run_start, At(kBase + 2));
  ASSERT_TRUE(evaluation.last_sample);
  EXPECT_EQ(*evaluation.last_sample, At(kBase + 5));
}

TEST(EvaluateConditionTest, TooShortIsNotMet) {
  const json result = {Series(1, {"0.5", "0.5", "0.01", "0.01"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(3)),
                                      At(kBase), At(kBase + 4));

  EXPECT_FALSE(evaluation.met) << evaluation.detail;
}

TEST(EvaluateConditionTest, SamplesBeforeRollbackDoNotCount) {
  // Good values from before the rollback completed at kBase + 4, bad ones after it.
  const json result = {Series(1, {"0.01", "0.01", "0.01", "0.01", "0.5", "0.5"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(2)),
                                      At(kBase + 4), At(kBase + 6));

  EXPECT_FALSE(evaluation.met) << evaluation.detail;
}

TEST(EvaluateConditionTest, GapBreaksRun) {
  json result = {Series(1, {"0.01", "0.01"}), Series(6, {"0.01", "0.01"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(4)),
                                      At(kBase), At(kBase + 7));

  EXPECT_FALSE(evaluation.met) << evaluation.detail;
  ASSERT_TRUE(evaluation.run_start);
  EXPECT_EQ(*evaluation.run_start, At(kBase + 6));
}

TEST(EvaluateConditionTest, StaleDataIsNotMet) {
  const json result = {Series(1, {"0.01", "0.01", "0.01", "0.01"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(2)),
                                      At(kBase), At(kBase + 30));

  EXPECT_FALSE(evaluation.met);
  EXPECT_NE(evaluation.detail.find("older than two steps"), std::string::npos) << evaluation.detail;
}

TEST(EvaluateConditionTest, NanNeverMeets) {
  const json result = {Series(1, {"NaN", "NaN", "NaN", "NaN"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(1)),
                                      At(kBase), At(kBase + 4));

  EXPECT_FALSE(evaluation.met) << evaluation.detail;
}

TEST(EvaluateConditionTest, EverySeriesMustMeet) {
  const json result = {Series(1, {"0.01", "0.01", "0.01"}), Series(1, {"0.01", "0.9", "0.01"})};

  auto evaluation = EvaluateCondition(result, BelowSettings(0.05, std::chrono::seconds(2)),
                                      At(kBase), At(kBase + 3));

  EXPECT_FALSE(evaluation.met) << evaluation.detail;
}

TEST(EvaluateConditionTest, AboveThreshold) {
  PrometheusCheckSettings settings = BelowSettings(0, std::chrono::seconds(2));
  settings.below.reset();
  settings.above = 100;
  const json result = {Series(1, {"150", "150", "150"})};

  auto evaluation = EvaluateCondition(result, settings, At(kBase), At(kBase + 3));

  EXPECT_TRUE(evaluation.met) << evaluation.detail;
}

TEST(EvaluateConditionTest, NoSeriesIsNotMet) {
  auto evaluation = EvaluateCondition(json::array(), BelowSettings(0.05, std::chrono::seconds(1)),
                                      At(kBase), At(kBase + 3));

  EXPECT_FALSE(evaluation.met);
  EXPECT_EQ(evaluation.detail, "the query returned no series");
}

TEST(PrometheusCheckSettingsTest, RejectsInvalidSettings) {
  const json base = {{"url", "http://127.0.0.1:9090"}, {"query", "up"}, {"below", 1}};
  const std::pair<json, std::string> cases[] = {
      {{{"query", "up"}, {"below", 1}}, "url: missing"},
      {{{"url", "http://127.0.0.1:9090"}, {"below", 1}}, "query: missing"},
      {{{"url", "http://127.0.0.1:9090"}, {"query", "up"}}, "exactly one of `below` and `above`"},
      {{{"url", "http://127.0.0.1:9090"}, {"query", "up"}, {"below", 1}, {"above", 0}},
       "exactly one of"},
      {{{"url", "http://127.0.0.1:9090"}, {"query", "up"}, {"below", "low"}},
       "below: 'low' is not a number"},
      {{{"url", "http://127.0.0.1:9090"}, {"query", "up"}, {"below", 1}, {"step", "1500ms"}},
       "step: give a whole number of seconds"},
      {{{"url", "http://127.0.0.1:9090"},
        {"query", "up"},
        {"below", 1},
        {"for", "5m"},
        {"within", "1m"}},
       "within: must be at least `for`"},
      {{{"url", "http://127.0.0.1:9090"}, {"query", "up"}, {"below", 1}, {"threshold", 1}},
       "threshold: unknown key"},
  };
  for (const auto& [settings, expected] : cases) {
    auto parsed = PrometheusCheckSettings::Parse(settings);
    ASSERT_FALSE(parsed) << settings.dump();
    EXPECT_NE(parsed.error().message.find(expected), std::string::npos)
        << settings.dump() << " → " << parsed.error().message;
  }
  auto parsed = PrometheusCheckSettings::Parse(base);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->for_duration, std::chrono::minutes(1));
  EXPECT_EQ(parsed->step, std::chrono::seconds(15));
}

TEST(FormEncodeTest, EncodesReservedCharacters) {
  EXPECT_EQ(FormEncode(R"(rate(x{a="b"}[5m]) > 0.5)"),
            "rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%20%3E%200.5");
}

TEST(PrometheusCheckTest, UnreachablePrometheusIsUnknown) {
  auto port = backout::testing::FreeLoopbackPort();
  ASSERT_TRUE(port) << port.error();
  auto client = testing::MakeHttpClient();
  ASSERT_NE(client, nullptr);
  auto check = PrometheusCheck::Create("errors",
                                       {{"url", fmt::format("http://127.0.0.1:{}", *port)},
                                        {"query", "up"},
                                        {"below", 1},
                                        {"for", "10s"},
                                        {"within", "30s"},
                                        {"step", "1s"},
                                        {"interval", "10s"}},
                                       {});
  ASSERT_TRUE(check) << check.error().message;
  core::ManualClock clock{core::Time(std::chrono::seconds(kBase))};
  CheckContext context = testing::ManualContext(clock, client.get());

  CheckResult result = (*check)->Run(context);

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
  EXPECT_NE(result.observation.detail.find("cannot be read"), std::string::npos)
      << result.observation.detail;
  EXPECT_FALSE(result.evidence);
}

// Real Prometheus scraping the metrics target: the ratio drops after the "rollback" and the check
// passes on samples newer than it; a rejected query is unknown.
class PrometheusCheckLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto target = backout::testing::MetricsTarget::Start();
    ASSERT_TRUE(target) << target.error();
    target_ = std::move(*target);
    backout::testing::PrometheusOptions options;
    options.scrape_targets["web"] = {target_->Address()};
    auto prometheus = backout::testing::PrometheusServer::Start(options);
    ASSERT_TRUE(prometheus) << prometheus.error();
    prometheus_ = std::move(*prometheus);
    client_ = testing::MakeHttpClient();
    ASSERT_NE(client_, nullptr);
  }

  json Settings(const std::string& query) {
    return {{"url", prometheus_->Url()}, {"query", query}, {"below", 0.05},   {"for", "3s"},
            {"within", "40s"},           {"step", "1s"},   {"interval", "1s"}};
  }

  CheckContext LiveContext(core::Time change_at, core::Time rollback_at) {
    CheckContext context;
    context.incident_id = "INC-1";
    context.service = "web";
    context.change_at = change_at;
    context.rollback_finished_at = rollback_at;
    context.clock = &clock_;
    context.http = client_.get();
    return context;
  }

  store::SystemClock clock_;
  std::unique_ptr<backout::testing::MetricsTarget> target_;
  std::unique_ptr<backout::testing::PrometheusServer> prometheus_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(PrometheusCheckLiveTest, RecoveryAfterRollbackPasses) {
  const std::string ratio =
      "sum(rate(errors_total{service=\"web\"}[3s])) / "
      "sum(rate(requests_total{service=\"web\"}[3s]))";
  const core::Time change_at = clock_.Now();
  target_->SetTraffic("web", "v2", 200, 0.5);
  auto high = prometheus_->WaitForQuery(ratio, [](const json& r) {
    return !r.empty() && r[0]["value"][1] != "NaN" &&
           std::stod(r[0]["value"][1].get<std::string>()) > 0.3;
  });
  ASSERT_TRUE(high) << high.error();

  // The rollback: v2's traffic moves to v1, which fails rarely.
  target_->SetTraffic("web", "v2", 0, 0.5);
  target_->SetTraffic("web", "v1", 200, 0.001);
  const core::Time rollback_at = clock_.Now();
  auto check = PrometheusCheck::Create("error-ratio", Settings(ratio), {});
  ASSERT_TRUE(check) << check.error().message;

  CheckResult result = (*check)->Run(LiveContext(change_at, rollback_at));

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  EXPECT_GT(result.observation.observed_at, rollback_at);
  ASSERT_TRUE(result.evidence);
  EXPECT_EQ(result.evidence->series.query, ratio);
  EXPECT_EQ(result.evidence->series.prometheus_url, prometheus_->Url());
  EXPECT_LT(result.evidence->series.start, change_at);
  EXPECT_GE(result.evidence->series.end, result.observation.observed_at);
  const json body = json::parse(result.evidence->response_body);
  EXPECT_EQ(body["status"], "success");
  EXPECT_EQ(body["data"]["resultType"], "matrix");
}

TEST_F(PrometheusCheckLiveTest, ErrorRateStayingHighFails) {
  const std::string ratio =
      "sum(rate(errors_total{service=\"web\"}[3s])) / "
      "sum(rate(requests_total{service=\"web\"}[3s]))";
  target_->SetTraffic("web", "v2", 200, 0.5);
  ASSERT_TRUE(prometheus_->WaitForSeries(ratio));
  json settings = Settings(ratio);
  settings["within"] = "8s";
  auto check = PrometheusCheck::Create("error-ratio", settings, {});
  ASSERT_TRUE(check) << check.error().message;
  const core::Time now = clock_.Now();

  CheckResult result = (*check)->Run(LiveContext(now - std::chrono::seconds(10), now));

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed)
      << result.observation.detail;
  EXPECT_NE(result.observation.detail.find("is not below 0.05"), std::string::npos)
      << result.observation.detail;
  EXPECT_TRUE(result.evidence);
}

TEST_F(PrometheusCheckLiveTest, RejectedQueryIsUnknown) {
  json settings = Settings("rate(errors_total[");
  settings["within"] = "3s";
  auto check = PrometheusCheck::Create("broken", settings, {});
  ASSERT_TRUE(check) << check.error().message;
  const core::Time now = clock_.Now();

  CheckResult result = (*check)->Run(LiveContext(now, now));

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
  EXPECT_NE(result.observation.detail.find("bad_data"), std::string::npos)
      << result.observation.detail;
}

TEST_F(PrometheusCheckLiveTest, StoppedPrometheusIsUnknown) {
  target_->SetTraffic("web", "v1", 200, 0.0);
  ASSERT_TRUE(prometheus_->WaitForSeries("requests_total"));
  prometheus_->Stop();
  json settings = Settings("sum(rate(errors_total[3s]))");
  settings["within"] = "3s";
  auto check = PrometheusCheck::Create("errors", settings, {});
  ASSERT_TRUE(check) << check.error().message;
  const core::Time now = clock_.Now();

  CheckResult result = (*check)->Run(LiveContext(now, now));

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
  EXPECT_FALSE(result.evidence);
}

}  // namespace
}  // namespace backout::checks
