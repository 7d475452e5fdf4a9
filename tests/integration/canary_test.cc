// Secret canaries: every secret in the config and every token is a unique string; after the whole
// lifecycle neither the server's log output nor the database file contains any of them.
#include <gtest/gtest.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

TEST(CanaryTest, NoSecretInLogOrDatabase) {
  Deployment deployment;
  ASSERT_NO_FATAL_FAILURE(RunWholeLifecycle(deployment));

  // A rejected token must not be logged either.
  const std::string bogus_token = "canary-bogus-token-5d1f0e7c2b9a48f3a6e1";
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  const CliResult refused =
      deployment.RawCli({"incident", "list"}, {{"BACKOUT_TOKEN", bogus_token}});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  deployment.Stop();

  std::vector<std::string> secrets = deployment.Secrets();
  secrets.push_back(bogus_token);
  ASSERT_GE(secrets.size(), 8u);  // 3 config secrets, 4 tokens (admin and three users), bogus

  const std::string log = ReadFile(deployment.server_log());
  ASSERT_FALSE(log.empty()) << "the server wrote no log, so the check would prove nothing";
  std::string database;
  for (const char* suffix : {"", "-wal", "-journal", "-shm"}) {
    database += ReadFile(deployment.folder() / (std::string("backout.db") + suffix));
  }
  ASSERT_FALSE(database.empty());

  for (const std::string& secret : secrets) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "the server log contains " << secret;
    EXPECT_EQ(database.find(secret), std::string::npos) << "the database contains " << secret;
  }
}

}  // namespace
}  // namespace backout::integration
