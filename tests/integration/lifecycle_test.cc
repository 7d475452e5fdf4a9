// One incident's whole life through the CLI against a real server, on SQLite and on PostgreSQL.
#include <gtest/gtest.h>

#include "scenarios.h"
#include "support/postgres_server.h"

namespace backout::integration {
namespace {

TEST(LifecycleTest, WholeIncidentOnSqlite) {
  Deployment deployment;
  RunWholeLifecycle(deployment);
}

TEST(LifecycleTest, WholeIncidentOnPostgres) {
  auto server = testing::PostgresServer::Shared();
  ASSERT_TRUE(server.has_value()) << server.error();
  auto database = (*server)->CreateDatabase();
  ASSERT_TRUE(database.has_value()) << database.error();

  Deployment deployment({.database = *database, .with_status = true, .runbook_sleep_seconds = 0});
  RunWholeLifecycle(deployment);
}

TEST(LifecycleTest, WaitExitsOneOnFailedRollback) {
  Deployment deployment;
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));

  // The runbook rejects the target "broken", so the rollback job ends `failed`.
  ASSERT_CLI_OK(deployment.Cli("lead-1", {"incident", "assess", incident, "--target", "broken"}));
  ASSERT_CLI_OK(deployment.Cli(
      "lead-1", {"incident", "decide", incident, "--go", "--reason", "try the broken target"}));
  const CliResult failed = deployment.Cli("sre-1", {"incident", "rollback", incident, "--wait"});
  ASSERT_CLI_EXIT(failed, 1);
  EXPECT_EQ(failed.Json().value("outcome", ""), "failed") << failed.out;
  EXPECT_NE(failed.err.find("ended failed"), std::string::npos) << failed.err;

  const CliResult shown = deployment.Cli("lead-1", {"incident", "show", incident});
  EXPECT_EQ(shown.Json().value("state", ""), "assessing") << shown.out;
  EXPECT_EQ(ReadFile(deployment.version_file()), "v2\n");
}

}  // namespace
}  // namespace backout::integration
