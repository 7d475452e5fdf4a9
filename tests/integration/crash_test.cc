// SIGKILL of the server while the command provider's runbook runs: the restarted server must
// never run the runbook again, and must finish the job from `status` or mark it interrupted.
#include <thread>

#include <gtest/gtest.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

using std::chrono::seconds;

// Polls until `done` returns true or `timeout` passes; returns the last result of `done`.
template <typename Condition>
bool WaitFor(Condition done, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// The latest rollback of the incident as `incident show` returns it.
nlohmann::json LatestRollback(Deployment& deployment, const std::string& incident) {
  const CliResult shown = deployment.Cli("lead-1", {"incident", "show", incident});
  const nlohmann::json json = shown.Json();
  if (!json.is_object() || !json.contains("rollbacks") || json["rollbacks"].empty()) {
    return nlohmann::json::object();
  }
  return json["rollbacks"].back();
}

// Starts a rollback whose runbook sleeps, and kills the server once the runbook has appended its
// line; then restarts the server.
void KillDuringRunbook(Deployment& deployment, std::string& incident) {
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment, incident));

  const CliResult started = deployment.Cli("sre-1", {"incident", "rollback", incident});
  ASSERT_CLI_OK(started);
  ASSERT_TRUE(WaitFor([&] { return CountLines(deployment.runbook_log()) == 1; }, seconds(30)))
      << "the runbook never ran\n"
      << ReadFile(deployment.server_log());

  deployment.Kill();
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
}

TEST(CrashTest, StatusLetsRestartedJobComplete) {
  Deployment deployment({.database = "", .with_status = true, .runbook_sleep_seconds = 4});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(KillDuringRunbook(deployment, incident));

  nlohmann::json rollback;
  ASSERT_TRUE(WaitFor(
      [&] {
        rollback = LatestRollback(deployment, incident);
        return rollback.contains("outcome") && !rollback["outcome"].is_null();
      },
      seconds(60)))
      << rollback.dump() << "\n"
      << ReadFile(deployment.server_log());
  EXPECT_EQ(rollback.value("outcome", ""), "rolled_back") << rollback.dump();
  EXPECT_EQ(CountLines(deployment.runbook_log()), 1);
  EXPECT_EQ(ReadFile(deployment.version_file()), "v1\n");

  const CliResult shown = deployment.Cli("lead-1", {"incident", "show", incident});
  EXPECT_EQ(shown.Json().value("state", ""), "validating") << shown.out;
}

TEST(CrashTest, NoStatusEndsInterruptedAndNeedsConfirm) {
  Deployment deployment({.database = "", .with_status = false, .runbook_sleep_seconds = 4});
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(KillDuringRunbook(deployment, incident));

  nlohmann::json rollback;
  ASSERT_TRUE(WaitFor(
      [&] {
        rollback = LatestRollback(deployment, incident);
        return rollback.contains("outcome") && !rollback["outcome"].is_null();
      },
      seconds(60)))
      << rollback.dump() << "\n"
      << ReadFile(deployment.server_log());
  EXPECT_EQ(rollback.value("outcome", ""), "interrupted") << rollback.dump();

  // The orphaned runbook still finishes on its own; it must have run exactly once.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(deployment.version_file()) == "v1\n"; }, seconds(30)));
  EXPECT_EQ(CountLines(deployment.runbook_log()), 1);

  const CliResult shown = deployment.Cli("lead-1", {"incident", "show", incident});
  EXPECT_EQ(shown.Json().value("state", ""), "rolling_back") << shown.out;

  const CliResult confirmed = deployment.Cli(
      "sre-1",
      {"incident", "confirm", incident, "--happened", "--reason", "the version file shows v1"});
  ASSERT_CLI_OK(confirmed);
  EXPECT_EQ(confirmed.Json().value("state", ""), "validating") << confirmed.out;
  EXPECT_EQ(CountLines(deployment.runbook_log()), 1);
}

}  // namespace
}  // namespace backout::integration
