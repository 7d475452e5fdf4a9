#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <thread>

#include "support/alertmanager_server.h"
#include "support/metrics_target.h"
#include "support/prometheus_server.h"

namespace backout::testing {
namespace {

double FirstValue(const nlohmann::json& result) {
  return std::stod(result.at(0).at("value").at(1).get<std::string>());
}

TEST(MetricsTargetTest, CountersGrowAtSetRate) {
  auto target = MetricsTarget::Start();
  ASSERT_TRUE(target) << target.error();
  (*target)->SetTraffic("web", "v2", 1000, 0.25);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string text = (*target)->RenderMetrics();

  EXPECT_NE(text.find("requests_total{service=\"web\",version=\"v2\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("errors_total{service=\"web\",version=\"v2\"}"), std::string::npos) << text;
  EXPECT_EQ(text.find("requests_total{service=\"web\",version=\"v2\"} 0\n"), std::string::npos)
      << text;
}

TEST(MetricsTargetTest, HealthAndRoutesAnswerAsSet) {
  auto target = MetricsTarget::Start();
  ASSERT_TRUE(target) << target.error();
  (*target)->SetHealth(503, "down");
  (*target)->SetRoute("POST", "/login",
                      TargetResponse{201, R"({"token":"abc"})", "application/json"});
  httplib::Client client("127.0.0.1", (*target)->port());

  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->body, "down");
  auto login = client.Post("/login", "{}", "application/json");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 201);
  EXPECT_EQ(login->body, R"({"token":"abc"})");
  auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ((*target)->Requests().size(), 3u);
}

TEST(PrometheusServerTest, ScrapesTargetErrorRatio) {
  auto target = MetricsTarget::Start();
  ASSERT_TRUE(target) << target.error();
  (*target)->SetTraffic("web", "v2", 200, 0.5);
  PrometheusOptions options;
  options.scrape_targets["app"] = {(*target)->Address()};
  auto prometheus = PrometheusServer::Start(options);
  ASSERT_TRUE(prometheus) << prometheus.error();

  auto up = (*prometheus)->WaitForTargetsUp();
  ASSERT_TRUE(up) << up.error();
  const std::string ratio =
      "sum(rate(errors_total{service=\"web\"}[5s])) / "
      "sum(rate(requests_total{service=\"web\"}[5s]))";
  auto result = (*prometheus)->WaitForQuery(ratio, [](const nlohmann::json& r) {
    return !r.empty() && r.at(0).at("value").at(1) != "NaN";
  });
  ASSERT_TRUE(result) << result.error();
  EXPECT_NEAR(FirstValue(*result), 0.5, 0.05);
}

TEST(PrometheusServerTest, StopMakesQueriesFail) {
  auto prometheus = PrometheusServer::Start({});
  ASSERT_TRUE(prometheus) << prometheus.error();
  ASSERT_TRUE((*prometheus)->Query("vector(1)"));

  (*prometheus)->Stop();

  EXPECT_FALSE((*prometheus)->Running());
  EXPECT_FALSE((*prometheus)->Query("vector(1)"));
}

TEST(PrometheusServerTest, InvalidRuleFileFailsStart) {
  PrometheusOptions options;
  options.rule_files["rules.yml"] = "groups: [ {name: x, rules: [ {alert: A, expr: '(('} ] } ]\n";
  auto prometheus = PrometheusServer::Start(options);
  ASSERT_FALSE(prometheus);
  EXPECT_NE(prometheus.error().find("exited during start-up"), std::string::npos)
      << prometheus.error();
}

// A rule fires in Prometheus, Alertmanager sends it to a webhook served by the test.
TEST(AlertmanagerServerTest, RuleReachesWebhook) {
  std::mutex mutex;
  std::vector<std::string> bodies;
  std::vector<std::string> authorizations;
  httplib::Server receiver;
  receiver.Post("/hook", [&](const httplib::Request& request, httplib::Response& response) {
    std::lock_guard lock(mutex);
    bodies.push_back(request.body);
    authorizations.push_back(request.get_header_value("Authorization"));
    response.status = 200;
  });
  const int receiver_port = receiver.bind_to_any_port("127.0.0.1");
  ASSERT_GT(receiver_port, 0);
  std::thread serving([&] { receiver.listen_after_bind(); });

  AlertmanagerOptions am_options;
  am_options.webhook_url = "http://127.0.0.1:" + std::to_string(receiver_port) + "/hook";
  am_options.bearer_token = "test-token";
  auto alertmanager = AlertmanagerServer::Start(am_options);
  ASSERT_TRUE(alertmanager) << alertmanager.error();
  PrometheusOptions options;
  options.alertmanagers = {(*alertmanager)->Address()};
  options.rule_files["rules.yml"] =
      AlertingRuleFile("test", "AlwaysFiring", "vector(1)", "0s", {{"service", "web"}});
  auto prometheus = PrometheusServer::Start(options);
  ASSERT_TRUE(prometheus) << prometheus.error();

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  size_t received = 0;
  while (std::chrono::steady_clock::now() < deadline && received == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard lock(mutex);
    received = bodies.size();
  }
  receiver.stop();
  serving.join();

  auto held = (*alertmanager)->GetAlerts();
  auto rules = (*prometheus)->Get("/api/v1/rules");
  auto managers = (*prometheus)->Get("/api/v1/alertmanagers");
  ASSERT_GT(received, 0u) << "Alertmanager holds: " << (held ? held->dump() : held.error())
                          << "\nrules: " << (rules ? rules->body : rules.error())
                          << "\nalertmanagers: " << (managers ? managers->body : managers.error())
                          << "\n"
                          << (*prometheus)->LogTail() << (*alertmanager)->LogTail();
  const nlohmann::json payload = nlohmann::json::parse(bodies.front());
  EXPECT_EQ(payload.value("version", ""), "4");
  EXPECT_EQ(payload["alerts"][0]["labels"]["alertname"], "AlwaysFiring");
  EXPECT_EQ(payload["alerts"][0]["labels"]["service"], "web");
  EXPECT_EQ(authorizations.front(), "Bearer test-token");
}

}  // namespace
}  // namespace backout::testing
