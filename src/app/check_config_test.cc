// Loading the `http`, `prometheus` and `manual` check kinds from the config file, and the
// warnings for services that no validation can find recovered.
#include <gtest/gtest.h>

#include <string>

#include "app/config.h"

namespace backout::app {
namespace {

using nlohmann::json;

// A service `checkout` whose `checks` list is `checks` (items indented by 6 spaces).
std::string ConfigWithChecks(const std::string& checks) {
  return "database: sqlite:/var/lib/backout/backout.db\n"
         "data_dir: /var/lib/backout\n"
         "services:\n"
         "  - name: checkout\n"
         "    provider: {kind: command, run: [/opt/runbooks/rollback]}\n"
         "    checks:\n" +
         checks;
}

core::Result<Config> Parse(const std::string& checks) {
  return Config::Parse(ConfigWithChecks(checks), "backout.yaml", "/etc/backout");
}

TEST(CheckConfigTest, AllKindsLoad) {
  auto config = Parse(
      "      - name: smoke\n"
      "        kind: command\n"
      "        run: [/opt/checks/smoke]\n"
      "      - name: checkout-flow\n"
      "        kind: http\n"
      "        within: 1m\n"
      "        steps:\n"
      "          - name: login\n"
      "            method: POST\n"
      "            url: https://shop.example.com/login\n"
      "            secret_headers: {X-Api-Key: env:SMOKE_KEY}\n"
      "            capture: {token: /token}\n"
      "          - url: https://shop.example.com/cart\n"
      "            headers: {Authorization: 'Bearer ${token}'}\n"
      "            expect_status: 200\n"
      "            expect_json: {/status: ok}\n"
      "      - name: error-ratio\n"
      "        kind: prometheus\n"
      "        url: http://prometheus.internal:9090\n"
      "        query: sum(rate(errors_total[2m]))\n"
      "        below: 0.01\n"
      "        for: 5m\n"
      "        within: 15m\n"
      "        bearer_token: env:PROMETHEUS_TOKEN\n"
      "      - name: user-test\n"
      "        kind: manual\n"
      "        instructions: Place an order\n"
      "        confirmers: [lead-1]\n"
      "        wait: 0s\n");
  ASSERT_TRUE(config) << config.error().message;

  const auto& checks = config->services[0].checks;
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[1].kind, "http");
  EXPECT_EQ(checks[1].settings["steps"][1]["expect_json"]["/status"], "ok");
  EXPECT_EQ(checks[1].settings["steps"][0]["secret_headers"]["X-Api-Key"], "env:SMOKE_KEY");
  EXPECT_EQ(checks[2].kind, "prometheus");
  EXPECT_EQ(checks[2].settings["below"], "0.01");
  EXPECT_EQ(checks[2].settings["bearer_token"], "env:PROMETHEUS_TOKEN");
  EXPECT_EQ(checks[3].kind, "manual");
  EXPECT_EQ(checks[3].settings["confirmers"], json({"lead-1"}));
}

TEST(CheckConfigTest, InvalidSettingsNameLineAndKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"      - name: ratio\n"
       "        kind: prometheus\n"
       "        url: http://127.0.0.1:9090\n"
       "        query: up\n",
       "backout.yaml:7: services[0].checks[0]: below: give exactly one of `below` and `above`"},
      {"      - name: ratio\n"
       "        kind: prometheus\n"
       "        url: http://127.0.0.1:9090\n"
       "        query: up\n"
       "        below: low\n",
       "backout.yaml:11: services[0].checks[0].below: 'low' is not a number"},
      {"      - name: ratio\n"
       "        kind: prometheus\n"
       "        url: http://127.0.0.1:9090\n"
       "        query: up\n"
       "        above: 1\n"
       "        bearer_token: plain-text-token\n",
       "services[0].checks[0].bearer_token"},
      {"      - name: flow\n"
       "        kind: http\n"
       "        steps:\n"
       "          - url: ftp://shop.example.com/\n",
       "backout.yaml:10: services[0].checks[0].steps: steps[0].url: 'ftp://shop.example.com/' is "
       "not an http:// or https:// URL"},
      {"      - name: flow\n"
       "        kind: http\n"
       "        steps: []\n",
       "steps: missing or empty"},
      {"      - name: user-test\n"
       "        kind: manual\n"
       "        confirmers: lead-1\n",
       "services[0].checks[0].confirmers"},
      {"      - name: probe\n"
       "        kind: grpc\n",
       "unknown check kind 'grpc', expected one of: command, http, manual, prometheus"},
  };
  for (const auto& [checks, expected] : cases) {
    auto config = Parse(checks);
    ASSERT_FALSE(config) << checks;
    EXPECT_NE(config.error().message.find(expected), std::string::npos)
        << checks << "→ " << config.error().message;
  }
}

TEST(CheckConfigTest, RelativeSecretHeaderFileResolvesAgainstConfigFolder) {
  auto config = Parse(
      "      - name: flow\n"
      "        kind: http\n"
      "        steps:\n"
      "          - url: https://shop.example.com/\n"
      "            secret_headers: {X-Api-Key: 'file:keys/smoke', X-Other: 'file:/abs/key'}\n");
  ASSERT_TRUE(config) << config.error().message;

  const json& headers = config->services[0].checks[0].settings["steps"][0]["secret_headers"];
  EXPECT_EQ(headers["X-Api-Key"], "file:/etc/backout/keys/smoke");
  EXPECT_EQ(headers["X-Other"], "file:/abs/key");
}

TEST(RecoveryWarningTest, ServiceWithoutChecksIsNamed) {
  auto config = Config::Parse(
      "services:\n"
      "  - name: checkout\n"
      "    provider: {kind: command, run: [/opt/rollback], status: [/opt/version]}\n",
      "backout.yaml", "/etc/backout");
  ASSERT_TRUE(config) << config.error().message;

  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_EQ(config->warnings[0],
            "backout.yaml:2: services[0]: service checkout has no `checks`, so no validation can "
            "find it recovered, because the provider's readiness alone never does; add a check "
            "of kind command, http, prometheus or manual under `checks`");
}

TEST(RecoveryWarningTest, GitWithoutHealthNamesKeys) {
  auto config = Config::Parse(
      "services:\n"
      "  - name: search\n"
      "    provider:\n"
      "      kind: git\n"
      "      repository: /srv/git/deploy.git\n"
      "      path: apps/search/values.yaml\n"
      "      version_key: image.tag\n"
      "      work_dir: /var/lib/backout/git/search\n"
      "    checks:\n"
      "      - {name: smoke, kind: command, run: [/opt/checks/smoke]}\n",
      "backout.yaml", "/etc/backout");
  ASSERT_TRUE(config) << config.error().message;

  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_EQ(config->warnings[0],
            "backout.yaml:4: services[0].provider: service search: the git provider has none of "
            "`health`, `health_url`, `controller_url`, so it cannot evaluate readiness and no "
            "validation can find the service recovered; add one of them");
}

TEST(RecoveryWarningTest, ReadinessAndChecksGiveNoWarning) {
  const char* const providers[] = {
      "{kind: command, run: [/opt/rollback], readiness: [/opt/ready]}",
      "{kind: releases, root: /srv/shop, health_url: 'http://127.0.0.1:8080/healthz'}",
      "{kind: git, repository: /srv/git/deploy.git, path: a.yaml, version_key: tag, "
      "work_dir: /var/lib/backout/git, controller_url: 'http://127.0.0.1:9000/app'}",
  };
  for (const char* provider : providers) {
    auto config = Config::Parse(std::string("services:\n"
                                            "  - name: shop\n"
                                            "    provider: ") +
                                    provider +
                                    "\n"
                                    "    checks:\n"
                                    "      - {name: smoke, kind: command, run: [/opt/smoke]}\n",
                                "backout.yaml", "/etc/backout");
    ASSERT_TRUE(config) << provider << ": " << config.error().message;
    EXPECT_TRUE(config->warnings.empty()) << provider << ": " << config->warnings[0];
  }
}

}  // namespace
}  // namespace backout::app
