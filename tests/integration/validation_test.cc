// Validating recovery on real Prometheus: the validation job of `backout serve` runs
// Prometheus, HTTP and manual checks against a metrics target whose error rate the test sets.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "ledger/hash.h"
#include "scenarios.h"
#include "support/metrics_target.h"
#include "support/prometheus_server.h"

namespace backout::integration {
namespace {

using nlohmann::json;

constexpr char kErrorRatio[] =
    "sum(rate(errors_total{service=\"checkout\"}[3s])) / "
    "sum(rate(requests_total{service=\"checkout\"}[3s]))";

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto target = testing::MetricsTarget::Start();
    ASSERT_TRUE(target) << target.error();
    target_ = std::move(*target);
    // The bad change: v2 fails half of its requests.
    target_->SetTraffic("checkout", "v2", 200, 0.5);
    testing::PrometheusOptions options;
    options.scrape_targets["checkout"] = {target_->Address()};
    auto prometheus = testing::PrometheusServer::Start(options);
    ASSERT_TRUE(prometheus) << prometheus.error();
    prometheus_ = std::move(*prometheus);
    auto high = prometheus_->WaitForQuery(kErrorRatio, [](const json& result) {
      return !result.empty() && result[0]["value"][1] != "NaN" &&
             std::stod(result[0]["value"][1].get<std::string>()) > 0.3;
    });
    ASSERT_TRUE(high) << high.error();
  }

  // The checkout checks: the error ratio below 5 % for 3 s within `within`, and /health.
  std::string Checks(const std::string& within, const std::string& extra = "") const {
    return fmt::format(
               "      - name: error-ratio\n"
               "        kind: prometheus\n"
               "        url: {}\n"
               "        query: '{}'\n"
               "        below: 0.05\n"
               "        for: 3s\n"
               "        within: {}\n"
               "        step: 1s\n"
               "        interval: 1s\n"
               "        evidence_before: 1m\n"
               "      - name: health\n"
               "        kind: http\n"
               "        steps:\n"
               "          - url: {}/health\n"
               "            expect_body_contains: ok\n",
               prometheus_->Url(), kErrorRatio, within, target_->Url()) +
           extra;
  }

  // Opens an incident on checkout v2, approves and runs the rollback.
  void RollBack(Deployment& deployment, std::string& incident) {
    ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
    ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
    ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));
    ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment, incident));
    const CliResult rolled_back =
        deployment.Cli("sre-1", {"incident", "rollback", incident, "--wait"});
    ASSERT_CLI_OK(rolled_back);
    ASSERT_EQ(rolled_back.Json().value("outcome", ""), "rolled_back") << rolled_back.out;
  }

  // Runs the validation with --wait and returns the finding.
  std::string Validate(Deployment& deployment, const std::string& incident) {
    const CliResult validated =
        deployment.Cli("lead-1", {"incident", "validate", incident, "--wait"});
    EXPECT_TRUE(validated.Json().is_object()) << validated.out << validated.err;
    return validated.Json().is_object() ? validated.Json().value("outcome", "") : "";
  }

  json LatestValidation(Deployment& deployment, const std::string& incident) {
    const CliResult shown = deployment.Cli("lead-1", {"incident", "show", incident});
    const json body = shown.Json();
    if (!body.is_object() || !body.contains("validations") || body["validations"].empty()) {
      ADD_FAILURE() << "no validation in " << shown.out << shown.err;
      return json::object();
    }
    return body["validations"].back();
  }

  static json Observation(const json& validation, const std::string& check) {
    for (const json& observation : validation.value("observations", json::array())) {
      if (observation.value("check", "") == check) return observation;
    }
    ADD_FAILURE() << "no observation of " << check << " in " << validation.dump();
    return json::object();
  }

  std::unique_ptr<testing::MetricsTarget> target_;
  std::unique_ptr<testing::PrometheusServer> prometheus_;
};

TEST_F(ValidationTest, ErrorRateDropFindsRecovered) {
  Deployment deployment(DeploymentOptions{.checkout_checks = Checks("40s")});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(RollBack(deployment, incident));
  // The rolled-back version serves the traffic now and rarely fails.
  target_->SetTraffic("checkout", "v2", 0, 0.5);
  target_->SetTraffic("checkout", "v1", 200, 0.001);

  EXPECT_EQ(Validate(deployment, incident), "recovered") << ReadFile(deployment.server_log());

  const json validation = LatestValidation(deployment, incident);
  EXPECT_EQ(Observation(validation, "error-ratio").value("result", ""), "passed");
  EXPECT_EQ(Observation(validation, "health").value("result", ""), "passed");
  ASSERT_EQ(validation.value("metric_series", json::array()).size(), 1u) << validation.dump();
  const json series = validation["metric_series"][0];
  EXPECT_EQ(series.value("query", ""), kErrorRatio);
  EXPECT_EQ(series.value("prometheus_url", ""), prometheus_->Url());
  EXPECT_EQ(series.value("response_sha256", "").size(), 64u);
  EXPECT_GT(series.value("response_size", 0), 0);
  EXPECT_LT(series.value("start", ""), series.value("end", ""));
  EXPECT_EQ(series.value("condition", ""), "below 0.05");

  // The evidence bundle carries the raw series byte for byte and verifies.
  const auto bundle = deployment.folder() / "evidence.tar.gz";
  const CliResult exported =
      deployment.Cli("lead-1", {"evidence", "export", incident, "--out", bundle.string()});
  ASSERT_CLI_OK(exported);
  // The note ends its line, so a shell prompt after it starts on a line of its own.
  EXPECT_TRUE(exported.err.starts_with("wrote " + bundle.string())) << exported.err;
  EXPECT_TRUE(exported.err.ends_with(")\n")) << exported.err;
  ASSERT_CLI_OK(deployment.RawCli({"evidence", "verify", bundle.string()}));
  const auto unpacked = deployment.folder() / "unpacked";
  std::filesystem::create_directories(unpacked);
  const std::string untar =
      fmt::format("tar -xzf '{}' -C '{}'", bundle.string(), unpacked.string());
  ASSERT_EQ(std::system(untar.c_str()), 0) << untar;
  std::string response_file, listing;
  for (const auto& entry :
       std::filesystem::directory_iterator(unpacked / "validation" / "prometheus")) {
    const std::string name = entry.path().filename().string();
    listing += name + "\n";
    if (name.ends_with("-query_range.json")) response_file = entry.path().string();
  }
  ASSERT_FALSE(response_file.empty()) << listing;
  // NOTE: no chart is asserted here. The test's changes carry a time days before the run, so the
  // kept range is coarse (20 s steps) and may contain no sample of the few seconds of traffic.
  // The evidence module's own tests cover the chart.
  const std::string digest = ledger::ToHex(ledger::Sha256(ReadFile(response_file)));
  EXPECT_EQ(digest, series.value("response_sha256", ""));
}

TEST_F(ValidationTest, ErrorRateStayingHighIsNotRecovered) {
  Deployment deployment(DeploymentOptions{.checkout_checks = Checks("8s")});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(RollBack(deployment, incident));

  EXPECT_EQ(Validate(deployment, incident), "not_recovered");

  const json observation = Observation(LatestValidation(deployment, incident), "error-ratio");
  EXPECT_EQ(observation.value("result", ""), "failed") << observation.dump();
}

TEST_F(ValidationTest, StoppedPrometheusIsNeverHealthy) {
  Deployment deployment(DeploymentOptions{.checkout_checks = Checks("5s")});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(RollBack(deployment, incident));
  target_->SetTraffic("checkout", "v2", 0, 0.5);
  target_->SetTraffic("checkout", "v1", 200, 0.0);
  prometheus_->Stop();

  EXPECT_EQ(Validate(deployment, incident), "not_recovered");

  const json validation = LatestValidation(deployment, incident);
  EXPECT_EQ(Observation(validation, "error-ratio").value("result", ""), "unknown");
  EXPECT_EQ(Observation(validation, "health").value("result", ""), "passed");
  EXPECT_TRUE(validation.value("metric_series", json::array()).empty());
}

// A confirmation recorded before the rollback completed does not count.
TEST_F(ValidationTest, ConfirmationBeforeRollbackDoesNotCount) {
  const std::string manual =
      "      - name: user-test\n"
      "        kind: manual\n"
      "        instructions: Place an order with a test card\n"
      "        wait: 0s\n";
  Deployment deployment(DeploymentOptions{.checkout_checks = manual});
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));
  const CliResult early = deployment.Cli(
      "sre-1", {"incident", "confirm-check", incident, "user-test", "--note", "looked fine"});
  ASSERT_CLI_OK(early) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment, incident));
  const CliResult rolled_back =
      deployment.Cli("sre-1", {"incident", "rollback", incident, "--wait"});
  ASSERT_CLI_OK(rolled_back);

  EXPECT_EQ(Validate(deployment, incident), "not_recovered");

  const json observation = Observation(LatestValidation(deployment, incident), "user-test");
  EXPECT_EQ(observation.value("result", ""), "unknown") << observation.dump();
  EXPECT_NE(observation.value("detail", "").find("1 older confirmation(s) do not count"),
            std::string::npos)
      << observation.dump();
}

// A running validation waits for the manual confirmation and counts it.
TEST_F(ValidationTest, ConfirmationDuringValidationRecovers) {
  const std::string manual =
      "      - name: user-test\n"
      "        kind: manual\n"
      "        wait: 60s\n"
      "        interval: 1s\n";
  Deployment deployment(DeploymentOptions{.checkout_checks = manual});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(RollBack(deployment, incident));
  const CliResult started = deployment.Cli("lead-1", {"incident", "validate", incident});
  ASSERT_CLI_OK(started);

  const std::filesystem::path receipt = deployment.folder() / "order.txt";
  WriteFile(receipt, "order 1234 placed\n");
  const CliResult confirmed =
      deployment.Cli("lead-1", {"incident", "confirm-check", incident, "user-test", "--note",
                                "order placed with a test card", "--attach", receipt.string()});
  ASSERT_CLI_OK(confirmed);
  EXPECT_EQ(confirmed.Json().value("confirmed_by", ""), "lead-1") << confirmed.out;
  EXPECT_EQ(confirmed.Json()["attachment"].value("name", ""), "order.txt") << confirmed.out;

  json validation;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    validation = LatestValidation(deployment, incident);
    if (validation.contains("finding") && !validation["finding"].is_null()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(validation.value("finding", json()).dump(), "\"recovered\"") << validation.dump();
  const json observation = Observation(validation, "user-test");
  EXPECT_EQ(observation.value("result", ""), "passed") << observation.dump();
  EXPECT_NE(observation.value("detail", "").find("confirmed by lead-1"), std::string::npos)
      << observation.dump();
}

TEST_F(ValidationTest, UnknownManualCheckIsRejected) {
  Deployment deployment(DeploymentOptions{.checkout_checks = Checks("5s")});
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));

  const CliResult result = deployment.Cli(
      "lead-1", {"incident", "confirm-check", incident, "health", "--note", "it works"});

  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("has no manual check named health"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace backout::integration
