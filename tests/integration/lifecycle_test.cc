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

}  // namespace
}  // namespace backout::integration
