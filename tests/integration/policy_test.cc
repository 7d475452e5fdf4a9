// Refusals as the CLI shows them: separation of duties, service grants, missing tokens, an
// unreachable server and usage errors.
#include <gtest/gtest.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(deployment_.Start()) << ReadFile(deployment_.server_log());
    ASSERT_FALSE(deployment_.AdminToken().empty());
    ASSERT_TRUE(deployment_.Grant("lead-1", {"engineering-lead"}, {}));
    ASSERT_TRUE(deployment_.Grant("sre-1", {"devops-engineer"}, {"checkout"}));
  }

  Deployment deployment_;
};

TEST_F(PolicyTest, ApproverCannotExecute) {
  ASSERT_TRUE(deployment_.Grant("lead-2", {"engineering-lead", "devops-engineer"}, {"checkout"}));
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment_, incident));
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment_, incident, "lead-2"));

  const CliResult refused = deployment_.Cli("lead-2", {"incident", "rollback", incident});
  ASSERT_CLI_EXIT(refused, 1);
  EXPECT_NE(refused.err.find("HTTP 403"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("separation of duties"), std::string::npos) << refused.err;
  EXPECT_EQ(CountLines(deployment_.runbook_log()), 0);

  // Another engineer granted checkout may execute the same approval.
  const CliResult executed = deployment_.Cli("sre-1", {"incident", "rollback", incident, "--wait"});
  ASSERT_CLI_OK(executed);
  EXPECT_EQ(CountLines(deployment_.runbook_log()), 1);
}

TEST_F(PolicyTest, EngineerWithoutGrantRefused) {
  // Roster allows sre-2 checkout and payments, but the grant made here covers payments only.
  ASSERT_TRUE(deployment_.Grant("sre-2", {"devops-engineer"}, {"payments"}));
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment_, incident));
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment_, incident));

  const CliResult refused = deployment_.Cli("sre-2", {"incident", "rollback", incident});
  ASSERT_CLI_EXIT(refused, 1);
  EXPECT_NE(refused.err.find("HTTP 403"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("no grant for service checkout"), std::string::npos) << refused.err;
  EXPECT_EQ(CountLines(deployment_.runbook_log()), 0);

  const CliResult shown = deployment_.Cli("lead-1", {"incident", "show", incident});
  ASSERT_CLI_OK(shown);
  EXPECT_EQ(shown.Json().value("state", ""), "decided") << shown.out;
}

TEST_F(PolicyTest, MissingTokenIsUnauthenticated) {
  const CliResult refused = deployment_.RawCli({"incident", "list"});
  ASSERT_CLI_EXIT(refused, 1);
  EXPECT_NE(refused.err.find("HTTP 401"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("BACKOUT_TOKEN"), std::string::npos) << refused.err;
}

TEST_F(PolicyTest, RevokedTokenIsRefused) {
  const CliResult created = deployment_.Cli("admin", {"user", "create", "ci-1", "--role", "ci"});
  ASSERT_CLI_OK(created);
  const std::string token = created.Json().value("token", "");
  const std::string token_id = JsonId(created.Json(), "token_id");
  ASSERT_FALSE(token_id.empty()) << created.out;

  ASSERT_CLI_OK(deployment_.Cli("admin", {"token", "revoke", token_id}));
  const CliResult refused = deployment_.RawCli({"change", "list"}, {{"BACKOUT_TOKEN", token}});
  ASSERT_CLI_EXIT(refused, 1);
  EXPECT_NE(refused.err.find("HTTP 401"), std::string::npos) << refused.err;
}

TEST_F(PolicyTest, UnknownIncidentIsNotFound) {
  const CliResult missing = deployment_.Cli("lead-1", {"incident", "show", "INC-999"});
  ASSERT_CLI_EXIT(missing, 1);
  EXPECT_NE(missing.err.find("HTTP 404"), std::string::npos) << missing.err;
}

TEST(CliErrorTest, UnreachableServerSaysHowToStartIt) {
  testing::TempDir folder;
  const std::string url = "http://127.0.0.1:" + std::to_string(FreeLoopbackPort());
  const CliResult result =
      RunCli({"incident", "list"}, {{"BACKOUT_URL", url}, {"BACKOUT_TOKEN", "x"}}, folder.path());
  ASSERT_CLI_EXIT(result, 1);
  EXPECT_NE(result.err.find("cannot reach Backout at " + url), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("backout serve --config FILE"), std::string::npos) << result.err;
}

TEST(CliErrorTest, MissingRequiredOptionIsUsageError) {
  testing::TempDir folder;
  const CliResult result = RunCli({"incident", "open", "--service", "checkout"}, {}, folder.path());
  ASSERT_CLI_EXIT(result, 2);
  EXPECT_NE(result.err.find("--severity"), std::string::npos) << result.err;
}

TEST(CliErrorTest, DecideNeedsGoOrNoGo) {
  testing::TempDir folder;
  const CliResult result =
      RunCli({"incident", "decide", "INC-1", "--reason", "because"}, {}, folder.path());
  ASSERT_CLI_EXIT(result, 2);
}

TEST(CliErrorTest, EveryCommandHasHelp) {
  testing::TempDir folder;
  const std::vector<std::vector<std::string>> commands = {
      {"user", "create"},      {"user", "list"},         {"token", "revoke"},
      {"change", "record"},    {"change", "verify"},     {"change", "list"},
      {"service", "list"},     {"service", "show"},      {"service", "unfreeze"},
      {"incident", "open"},    {"incident", "list"},     {"incident", "show"},
      {"incident", "assess"},  {"incident", "decide"},   {"incident", "rollback"},
      {"incident", "confirm"}, {"incident", "validate"}, {"incident", "document"},
      {"incident", "close"},   {"review", "write"},      {"review", "show"},
      {"action", "add"},       {"action", "list"},       {"action", "done"},
      {"review", "status"},    {"action", "overdue"},    {"access", "review"},
  };
  for (std::vector<std::string> command : commands) {
    const std::string name = command[0] + " " + command[1];
    command.push_back("--help");
    const CliResult result = RunCli(command, {}, folder.path());
    EXPECT_EQ(result.exit_code, 0) << name;
    EXPECT_NE(result.out.find("--url"), std::string::npos) << name;
    EXPECT_NE(result.out.find("--output"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace backout::integration
