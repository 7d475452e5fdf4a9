// Step 1 of the procedure against real monitoring: Prometheus 2.42 and Alertmanager 0.25 from
// Debian, started on free loopback ports, scraping a test service whose error rate the test sets,
// and a real `backout serve` receiving Alertmanager's webhook.
#include <httplib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "harness.h"
#include "support/alertmanager_server.h"
#include "support/metrics_target.h"
#include "support/prometheus_server.h"
#include "support/temp_dir.h"

namespace backout::integration {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kToken[] = "canary-alertmanager-token-4f1d";
constexpr char kErrorRatio[] =
    "sum by (service) (rate(errors_total{service=\"checkout\"}[5s])) / sum by (service) "
    "(rate(requests_total{service=\"checkout\"}[5s])) > 0.2";

std::string Iso(std::chrono::system_clock::time_point time) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z",
                     std::chrono::time_point_cast<std::chrono::seconds>(time));
}

struct DetectionOptions {
  std::string prometheus_url;  // enables a Backout PromQL rule on checkout
  int64_t max_body_bytes = 10 * 1024 * 1024;
};

// A Backout server whose `checkout` service rolls back through a `command` runbook and rolls
// back automatically at severity critical.
class DetectionServer {
 public:
  explicit DetectionServer(const DetectionOptions& options) {
    port_ = FreeLoopbackPort();
    const std::string dir = folder_.path().string();
    WriteFile(folder_.path() / "version", "v2\n");
    WriteFile(folder_.path() / "rollback.sh",
              fmt::format("#!/bin/sh\nset -eu\n"
                          "echo \"rollback to $BACKOUT_TARGET_VERSION\" >> '{0}/runbook.log'\n"
                          "printf '%s\\n' \"$BACKOUT_TARGET_VERSION\" > '{0}/version'\n",
                          dir),
              std::filesystem::perms::owner_all);
    WriteFile(folder_.path() / "status.sh", fmt::format("#!/bin/sh\ncat '{}/version'\n", dir),
              std::filesystem::perms::owner_all);
    std::string rules;
    std::string prometheus;
    if (!options.prometheus_url.empty()) {
      prometheus = fmt::format("  prometheus: {{url: '{}'}}\n", options.prometheus_url);
      rules = fmt::format(
          "      rules:\n"
          "        - {{name: error-ratio, severity: critical, query: '{}'}}\n",
          kErrorRatio);
    }
    const std::string config = fmt::format(
        "listen: 127.0.0.1:{port}\n"
        "data_dir: {dir}/data\n"
        "users:\n"
        "  - {{name: lead-1, roles: [engineering-lead]}}\n"
        "  - {{name: ci-1, roles: [ci]}}\n"
        "signals:\n"
        "  alertmanager:\n"
        "    bearer_token: env:BACKOUT_TEST_AM_TOKEN\n"
        "    max_body_bytes: {max_body}\n"
        "{prometheus}"
        "  evaluation_interval: 1s\n"
        "services:\n"
        "  - name: checkout\n"
        "    depends_on: [payments]\n"
        "    provider:\n"
        "      kind: command\n"
        "      run: ['{dir}/rollback.sh']\n"
        "      status: ['{dir}/status.sh']\n"
        "      timeout: 60s\n"
        "    detection:\n"
        "      watch_window: 10m\n"
        "      automatic_rollback: {{enabled: true, severities: [critical]}}\n"
        "{rules}"
        "  - name: payments\n"
        "    provider:\n"
        "      kind: command\n"
        "      run: ['{dir}/rollback.sh']\n",
        fmt::arg("port", port_), fmt::arg("dir", dir), fmt::arg("max_body", options.max_body_bytes),
        fmt::arg("prometheus", prometheus), fmt::arg("rules", rules));
    WriteFile(folder_.path() / "backout.yaml", config);
    server_ = std::make_unique<ServerProcess>(
        folder_.path() / "backout.yaml", folder_.path() / "server.log",
        std::map<std::string, std::string>{{"BACKOUT_TEST_AM_TOKEN", kToken}});
  }

  bool Start() { return server_->Start(port_); }
  std::string Log() const { return ReadFile(folder_.path() / "server.log"); }
  std::string Url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  std::string WebhookUrl() const { return Url() + "/api/v1/signals/alertmanager"; }
  int port() const { return port_; }
  std::string RunbookLog() const { return ReadFile(folder_.path() / "runbook.log"); }

  CliResult Cli(const std::string& user, std::vector<std::string> args) {
    args.insert(args.end(), {"-o", "json"});
    std::string token;
    if (user == "admin") {
      token = ReadFile(folder_.path() / "data" / "admin.token");
      while (!token.empty() && token.back() == '\n') token.pop_back();
    } else {
      token = tokens_.at(user);
    }
    return RunCli(args, {{"BACKOUT_URL", Url()}, {"BACKOUT_TOKEN", token}}, folder_.path());
  }

  bool Grant(const std::string& name, const std::string& role) {
    const CliResult result = Cli("admin", {"user", "create", name, "--role", role});
    const json answer = result.Json();
    if (result.exit_code != 0 || !answer.is_object()) return false;
    tokens_[name] = answer.value("token", "");
    return !tokens_[name].empty();
  }

  // Records a change of checkout as CI does and returns its id.
  std::string RecordChange(const std::string& version, const std::string& previous,
                           std::chrono::system_clock::time_point time) {
    const CliResult result =
        Cli("ci-1", {"change", "record", "--service", "checkout", "--version", version,
                     "--previous-version", previous, "--time", Iso(time)});
    return result.Json().is_object() ? result.Json().value("id", "") : "";
  }

  json Incidents() {
    const CliResult result = Cli("lead-1", {"incident", "list"});
    json answer = result.Json();
    if (answer.is_object() && answer.contains("items")) return answer["items"];
    return answer.is_array() ? answer : json::array();
  }

  // Posts `body` to the webhook with `token`; returns the status, or 0 without a response.
  int PostWebhook(const std::string& body, const std::string& token) {
    httplib::Client client("127.0.0.1", port_);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto response = client.Post("/api/v1/signals/alertmanager", headers, body, "application/json");
    return response ? response->status : 0;
  }

  // GET /api/v1/signals as lead-1: the signals with their correlation.
  json Signals() {
    httplib::Client client("127.0.0.1", port_);
    auto response = client.Get("/api/v1/signals?limit=1000",
                               {{"Authorization", "Bearer " + tokens_.at("lead-1")}});
    if (!response || response->status != 200) return json::array();
    return json::parse(response->body).value("items", json::array());
  }

  std::string Metrics() {
    httplib::Client client("127.0.0.1", port_);
    auto response = client.Get("/metrics");
    return response ? response->body : "";
  }

 private:
  testing::TempDir folder_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  std::map<std::string, std::string> tokens_;
};

// Polls `probe` every 200 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (probe()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return probe();
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// One Alertmanager webhook body (version 4) with one alert.
std::string WebhookBody(const std::string& fingerprint, const std::string& starts_at,
                        const std::string& severity) {
  json body = {
      {"version", "4"},
      {"groupKey", "{}:{alertname=\"CheckoutErrors\"}"},
      {"truncatedAlerts", 0},
      {"status", "firing"},
      {"receiver", "backout"},
      {"groupLabels", {{"alertname", "CheckoutErrors"}}},
      {"commonLabels", {{"alertname", "CheckoutErrors"}}},
      {"commonAnnotations", json::object()},
      {"externalURL", "http://127.0.0.1:9093"},
      {"alerts",
       {{{"status", "firing"},
         {"labels",
          {{"alertname", "CheckoutErrors"}, {"service", "checkout"}, {"severity", severity}}},
         {"annotations", {{"summary", "error ratio above 20%"}}},
         {"startsAt", starts_at},
         {"endsAt", "0001-01-01T00:00:00Z"},
         {"generatorURL", "http://127.0.0.1:9090/graph"},
         {"fingerprint", fingerprint}}}}};
  return body.dump();
}

class DetectionTest : public ::testing::Test {
 protected:
  void StartBackout(const DetectionOptions& options) {
    backout_ = std::make_unique<DetectionServer>(options);
    ASSERT_TRUE(backout_->Start()) << backout_->Log();
    ASSERT_TRUE(backout_->Grant("lead-1", "engineering-lead")) << backout_->Log();
    ASSERT_TRUE(backout_->Grant("ci-1", "ci")) << backout_->Log();
  }

  // Records the good change v1 twenty minutes ago, verified, and the bad change v2 now.
  void RecordChanges() {
    const auto now = std::chrono::system_clock::now();
    good_ = backout_->RecordChange("v1", "v0", now - 20min);
    ASSERT_FALSE(good_.empty());
    ASSERT_EQ(backout_->Cli("ci-1", {"change", "verify", good_, "--passed"}).exit_code, 0);
    bad_ = backout_->RecordChange("v2", "v1", now - 2s);
    ASSERT_FALSE(bad_.empty());
  }

  json IncidentFor(const std::string& change) {
    for (const json& incident : backout_->Incidents()) {
      if (incident.value("suspected_change", json(nullptr)) == json(change)) return incident;
    }
    return json(nullptr);
  }

  // The state of the incident suspecting `change`, or "" when there is none.
  std::string StateOf(const std::string& change) {
    const json incident = IncidentFor(change);
    return incident.is_object() ? incident.value("state", "") : "";
  }

  std::unique_ptr<DetectionServer> backout_;
  std::string good_;
  std::string bad_;
};

TEST_F(DetectionTest, RealAlertRollsBackBadChange) {
  ASSERT_NO_FATAL_FAILURE(StartBackout({}));
  auto target = testing::MetricsTarget::Start();
  ASSERT_TRUE(target.has_value()) << target.error();
  (*target)->SetTraffic("checkout", "v1", 50, 0.0);
  ASSERT_NO_FATAL_FAILURE(RecordChanges());

  // The bad change: half the requests fail from now on.
  (*target)->SetTraffic("checkout", "v2", 50, 0.5);
  auto alertmanager = testing::AlertmanagerServer::Start(
      {.webhook_url = backout_->WebhookUrl(), .bearer_token = kToken});
  ASSERT_TRUE(alertmanager.has_value()) << alertmanager.error();
  auto prometheus = testing::PrometheusServer::Start(
      {.scrape_targets = {{"checkout", {(*target)->Address()}}},
       .rule_files = {{"rules.yml",
                       testing::AlertingRuleFile("checkout", "CheckoutErrors", kErrorRatio, "0s",
                                                 {{"severity", "critical"}})}},
       .alertmanagers = {(*alertmanager)->Address()}});
  ASSERT_TRUE(prometheus.has_value()) << prometheus.error();

  // Rule → Alertmanager → webhook → incident on the bad change → automatic rollback to v1.
  ASSERT_TRUE(WaitFor([&] { return !IncidentFor(bad_).is_null(); }, 60s))
      << backout_->Log() << (*prometheus)->LogTail() << (*alertmanager)->LogTail();
  ASSERT_TRUE(WaitFor(
      [&] { return backout_->RunbookLog().find("rollback to v1") != std::string::npos; }, 30s))
      << backout_->Log();
  ASSERT_TRUE(WaitFor([&] { return StateOf(bad_) == "validating"; }, 30s))
      << IncidentFor(bad_).dump(2);

  const json incident = IncidentFor(bad_);
  EXPECT_EQ(incident.value("opened_by", ""), "system");
  ASSERT_EQ(incident["decisions"].size(), 1u) << incident.dump(2);
  EXPECT_TRUE(incident["decisions"][0].value("decider", "").starts_with("policy@"));
  EXPECT_NE(incident["decisions"][0].value("reason", "").find("loaded by system"),
            std::string::npos);
  ASSERT_EQ(incident["rollbacks"].size(), 1u);
  EXPECT_EQ(incident["rollbacks"][0].value("outcome", ""), "rolled_back");
  EXPECT_EQ(incident["rollbacks"][0].value("target_version", ""), "v1");
  EXPECT_NE(incident.value("suspected_change_reason", "").find(bad_), std::string::npos);
  EXPECT_EQ(CountLines(backout_->RunbookLog()), 1);
}

TEST_F(DetectionTest, AlertOlderThanChangeStaysUnattributed) {
  ASSERT_NO_FATAL_FAILURE(StartBackout({}));
  ASSERT_NO_FATAL_FAILURE(RecordChanges());
  auto alertmanager = testing::AlertmanagerServer::Start(
      {.webhook_url = backout_->WebhookUrl(), .bearer_token = kToken});
  ASSERT_TRUE(alertmanager.has_value()) << alertmanager.error();

  // The alert fired five minutes before the bad change was deployed.
  const auto starts = std::chrono::system_clock::now() - 5min;
  auto posted = (*alertmanager)
                    ->PostAlerts(json::array({{{"labels",
                                                {{"alertname", "CheckoutErrors"},
                                                 {"service", "checkout"},
                                                 {"severity", "critical"}}},
                                               {"startsAt", Iso(starts)}}}));
  ASSERT_TRUE(posted.has_value()) << posted.error();
  ASSERT_EQ(*posted, 200);

  json incident;
  ASSERT_TRUE(WaitFor(
      [&] {
        json incidents = backout_->Incidents();
        if (incidents.empty()) return false;
        incident = incidents[0];
        return true;
      },
      30s))
      << backout_->Log();
  EXPECT_TRUE(incident["suspected_change"].is_null()) << incident.dump(2);
  EXPECT_EQ(incident.value("state", ""), "open");
  EXPECT_TRUE(incident["rollbacks"].empty());
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(backout_->RunbookLog(), "");
}

TEST_F(DetectionTest, ReplicasAndRuleMakeOneRollback) {
  auto target = testing::MetricsTarget::Start();
  ASSERT_TRUE(target.has_value()) << target.error();
  (*target)->SetTraffic("checkout", "v2", 50, 0.5);
  auto prometheus =
      testing::PrometheusServer::Start({.scrape_targets = {{"checkout", {(*target)->Address()}}}});
  ASSERT_TRUE(prometheus.has_value()) << prometheus.error();
  ASSERT_TRUE((*prometheus)->WaitForSeries(kErrorRatio, 30s).has_value())
      << (*prometheus)->LogTail();

  ASSERT_NO_FATAL_FAILURE(StartBackout({.prometheus_url = (*prometheus)->Url()}));
  ASSERT_NO_FATAL_FAILURE(RecordChanges());

  // Two Alertmanager replicas deliver the same alert at once, while Backout's own rule fires.
  const std::string body =
      WebhookBody("a1b2c3d4e5f60718", Iso(std::chrono::system_clock::now()), "critical");
  int first = 0;
  int second = 0;
  std::thread replica([&] { second = backout_->PostWebhook(body, kToken); });
  first = backout_->PostWebhook(body, kToken);
  replica.join();
  EXPECT_EQ(first, 200);
  EXPECT_EQ(second, 200);

  ASSERT_TRUE(WaitFor([&] { return StateOf(bad_) == "validating"; }, 60s)) << backout_->Log();
  // Backout's own rule fires on the same change and joins the same incident.
  const std::string incident_id = IncidentFor(bad_).value("id", "");
  const std::string rule_signal = fmt::format("rule:checkout/error-ratio/{}", bad_);
  json signal;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const json& item : backout_->Signals()) {
          if (item.value("id", "") == rule_signal && item.value("correlated", false)) {
            signal = item;
            return true;
          }
        }
        return false;
      },
      30s))
      << backout_->Signals().dump(2) << backout_->Log();
  EXPECT_EQ(signal.value("incident_id", ""), incident_id) << signal.dump(2);
  EXPECT_EQ(signal.value("suspected_change_id", ""), bad_);
  int alert_signals = 0;
  for (const json& item : backout_->Signals()) {
    if (item.value("source", "") == "alertmanager") ++alert_signals;
  }
  EXPECT_EQ(alert_signals, 1);
  std::this_thread::sleep_for(2s);

  const json incidents = backout_->Incidents();
  int on_bad_change = 0;
  for (const json& incident : incidents) {
    if (incident.value("suspected_change", json(nullptr)) == json(bad_)) ++on_bad_change;
  }
  EXPECT_EQ(on_bad_change, 1) << incidents.dump(2);
  EXPECT_EQ(CountLines(backout_->RunbookLog()), 1) << backout_->RunbookLog();

  // CI records the rollback's deploy as a change; a new alert on it must not roll it back.
  const std::string rollback_change =
      backout_->RecordChange("v1", "v2", std::chrono::system_clock::now());
  ASSERT_FALSE(rollback_change.empty());
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(
      backout_->PostWebhook(
          WebhookBody("0f0f0f0f0f0f0f0f", Iso(std::chrono::system_clock::now() + 1s), "critical"),
          kToken),
      200);
  ASSERT_TRUE(WaitFor([&] { return !IncidentFor(rollback_change).is_null(); }, 30s))
      << backout_->Log();
  std::this_thread::sleep_for(2s);
  const json rollback_incident = IncidentFor(rollback_change);
  EXPECT_TRUE(rollback_incident["rollbacks"].empty()) << rollback_incident.dump(2);
  EXPECT_EQ(CountLines(backout_->RunbookLog()), 1) << backout_->RunbookLog();
}

TEST_F(DetectionTest, OversizedBodyIsRejected) {
  ASSERT_NO_FATAL_FAILURE(StartBackout({.max_body_bytes = 4096}));
  const std::string body(8192, ' ');
  EXPECT_EQ(backout_->PostWebhook(body, kToken), 413);
  EXPECT_NE(backout_->Metrics().find(
                "backout_http_payload_too_large_total{route=\"/api/v1/signals/alertmanager\"} 1"),
            std::string::npos)
      << backout_->Metrics();
  EXPECT_NE(backout_->Log().find("event=payload_too_large"), std::string::npos);
}

TEST_F(DetectionTest, WrongBearerTokenIsRejected) {
  ASSERT_NO_FATAL_FAILURE(StartBackout({}));
  const std::string body =
      WebhookBody("1111111111111111", Iso(std::chrono::system_clock::now()), "critical");
  EXPECT_EQ(backout_->PostWebhook(body, "not-the-token"), 401);
  EXPECT_EQ(backout_->PostWebhook(body, ""), 401);
  EXPECT_TRUE(backout_->Incidents().empty());
  EXPECT_EQ(backout_->Log().find("not-the-token"), std::string::npos);
}

}  // namespace
}  // namespace backout::integration
