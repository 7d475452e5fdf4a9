// One incident rolled back through AWS CodeDeploy end to end: the real `backout serve` with a
// `codedeploy` service whose credentials are secret references, driven by the real CLI, against
// the CodeDeploy emulator (which /usr/bin/aws proves in tests/emulators/codedeploy).
#include <csignal>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "emulators/codedeploy/emulator.h"
#include "harness.h"
#include "scenarios.h"
#include "support/temp_dir.h"

namespace backout::integration {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyId = "AKIAINTEGRATION00001";
constexpr std::string_view kSecret = "integration/codedeploy/secret";

json S3(const std::string& key) {
  return json{{"revisionType", "S3"},
              {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "zip"}}}};
}

double EpochMinutesAgo(int minutes) {
  return std::chrono::duration<double>(
             (std::chrono::system_clock::now() - std::chrono::minutes(minutes)).time_since_epoch())
      .count();
}

// shop/prod ran v1, then v2, the bad one.
json EmulatorState() {
  auto deployment = [](const char* id, const char* key, int minutes_ago) {
    return json{{"deploymentId", id},
                {"applicationName", "shop"},
                {"deploymentGroupName", "prod"},
                {"revision", S3(key)},
                {"status", "Succeeded"},
                {"createTime", EpochMinutesAgo(minutes_ago)}};
  };
  return json{{"credentials", {{{"accessKeyId", kKeyId}, {"secretAccessKey", kSecret}}}},
              {"applications", {"shop"}},
              {"deploymentGroups",
               {{{"applicationName", "shop"},
                 {"deploymentGroupName", "prod"},
                 {"instances", {"i-1", "i-2"}}}}},
              {"timing", {{"queueMs", 20}, {"lifecycleEventMs", 20}}},
              {"deployments",
               {deployment("d-INTGV1000", "v1.zip", 90), deployment("d-INTGV2000", "v2.zip", 30)}}};
}

class CodeDeployIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto emulator = emulators::codedeploy::Emulator::Create(EmulatorState());
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());

    port_ = FreeLoopbackPort();
    WriteFile(folder_.path() / "aws-secret", std::string(kSecret));
    WriteFile(folder_.path() / "backout.yaml",
              fmt::format(R"(listen: 127.0.0.1:{}
data_dir: {}
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [shop]}}
services:
  - name: shop
    provider:
      kind: codedeploy
      application: shop
      deployment_group: prod
      region: us-east-1
      endpoint: {}
      credentials: {{access_key_id: env:SHOP_AWS_KEY_ID, secret_access_key: file:aws-secret}}
      poll_interval: 20ms
      max_poll_interval: 100ms
      timeout: 60s
)",
                          port_, (folder_.path() / "data").string(), emulator_->Url()));
    server_ = std::make_unique<ServerProcess>(
        folder_.path() / "backout.yaml", folder_.path() / "server.log",
        std::map<std::string, std::string>{{"SHOP_AWS_KEY_ID", std::string(kKeyId)}});
    ASSERT_TRUE(server_->Start(port_)) << ReadFile(folder_.path() / "server.log");
    tokens_["admin"] = Trim(ReadFile(folder_.path() / "data" / "admin.token"));
  }

  void TearDown() override {
    if (server_ && server_->running()) server_->Stop(SIGTERM);
  }

  static std::string Trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  CliResult Cli(const std::string& user, std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    return RunCli(args,
                  {{"BACKOUT_URL", fmt::format("http://127.0.0.1:{}", port_)},
                   {"BACKOUT_TOKEN", tokens_[user]}},
                  folder_.path());
  }

  void Grant(const std::string& name, const std::string& role) {
    std::vector<std::string> args{"user", "create", name, "--role", role};
    if (role == "devops-engineer") {
      args.push_back("--service");
      args.push_back("shop");
    }
    CliResult result = Cli("admin", args);
    ASSERT_CLI_OK(result);
    tokens_[name] = result.Json().value("token", "");
  }

  testing::TempDir folder_;
  std::unique_ptr<emulators::codedeploy::Emulator> emulator_;
  std::unique_ptr<ServerProcess> server_;
  std::map<std::string, std::string> tokens_;
  int port_ = 0;
};

TEST_F(CodeDeployIntegrationTest, IncidentRollsBackThroughCodeDeploy) {
  Grant("lead-1", "engineering-lead");
  Grant("sre-1", "devops-engineer");

  // The service page reads the live revision from CodeDeploy with the configured credentials.
  CliResult service = Cli("lead-1", {"service", "show", "shop"});
  ASSERT_CLI_OK(service);
  EXPECT_EQ(service.Json()["live_state"]["version"], "s3://releases/v2.zip");

  CliResult opened = Cli("lead-1", {"incident", "open", "--service", "shop", "--severity", "sev2",
                                    "--title", "checkout fails after v2"});
  ASSERT_CLI_OK(opened);
  std::string incident = opened.Json().value("id", "");

  // No change is recorded, so CodeDeploy's own rule picks v1.
  CliResult assessed = Cli("lead-1", {"incident", "assess", incident});
  ASSERT_CLI_OK(assessed);
  EXPECT_EQ(assessed.Json()["assessment"]["plan"]["target_version"], "s3://releases/v1.zip");
  ASSERT_CLI_OK(Cli("lead-1", {"incident", "decide", incident, "--go", "--reason", "v2 is bad"}));

  CliResult rolled = Cli("sre-1", {"incident", "rollback", incident, "--wait"});
  ASSERT_CLI_OK(rolled);
  EXPECT_EQ(rolled.Json()["outcome"], "rolled_back");

  // CodeDeploy records the rollback deployment, described with the incident.
  json state = emulator_->Dump();
  const json& last = state["deployments"].back();
  EXPECT_EQ(last["revision"], S3("v1.zip"));
  EXPECT_EQ(last["status"], "Succeeded");
  EXPECT_NE(last["description"].get<std::string>().find(incident), std::string::npos);

  // The read-back and the ledger entries were stored, so the ledger accepted them.
  CliResult shown = Cli("lead-1", {"incident", "show", incident});
  ASSERT_CLI_OK(shown);
  json incident_json = shown.Json();
  const json& rollback = incident_json["rollbacks"].back();
  EXPECT_EQ(rollback["outcome"], "rolled_back");
  EXPECT_EQ(rollback["read_back"]["details"]["deployment_id"], last["deploymentId"]);
}

}  // namespace
}  // namespace backout::integration
