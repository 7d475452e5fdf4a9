#include "scenarios.h"

#include <signal.h>

namespace backout::integration {

void GrantTeam(Deployment& deployment) {
  ASSERT_FALSE(deployment.AdminToken().empty()) << "no token in " << deployment.data_dir();
  ASSERT_TRUE(deployment.Grant("lead-1", {"engineering-lead"}, {}));
  ASSERT_TRUE(deployment.Grant("sre-1", {"devops-engineer"}, {"checkout"}));
  ASSERT_TRUE(deployment.Grant("sre-2", {"devops-engineer"}, {"checkout"}));
}

void OpenIncidentOnV2(Deployment& deployment, std::string& incident_id) {
  const CliResult v1 = deployment.Cli(
      "sre-1", {"change", "record", "--service", "checkout", "--version", "v1",
                "--previous-version", "v0", "--ticket", "CHG-100", "--approver", "lead-1",
                "--deployer", "ci-pipeline", "--time", "2026-12-01T10:00:00Z"});
  ASSERT_CLI_OK(v1);
  const std::string v1_id = JsonId(v1.Json());
  ASSERT_FALSE(v1_id.empty()) << v1.out;

  const CliResult verified =
      deployment.Cli("sre-1", {"change", "verify", v1_id, "--passed", "--details", "smoke ok"});
  ASSERT_CLI_OK(verified);
  EXPECT_EQ(verified.Json().value("validated", ""), "good") << verified.out;

  const CliResult v2 =
      deployment.Cli("sre-1", {"change", "record", "--service", "checkout", "--version", "v2",
                               "--previous-version", "v1", "--ticket", "CHG-101", "--approver",
                               "lead-1", "--deployer", "ci-pipeline", "--migration",
                               "0007_add_column", "--time", "2026-12-02T10:00:00Z"});
  ASSERT_CLI_OK(v2);
  const std::string v2_id = JsonId(v2.Json());
  ASSERT_FALSE(v2_id.empty()) << v2.out;

  const CliResult opened = deployment.Cli(
      "lead-1", {"incident", "open", "--service", "checkout", "--severity", "sev2", "--title",
                 "checkout errors after v2", "--suspected-change", v2_id, "--ticket", "OPS-7"});
  ASSERT_CLI_OK(opened);
  incident_id = JsonId(opened.Json());
  ASSERT_FALSE(incident_id.empty()) << opened.out;
  EXPECT_EQ(opened.Json().value("state", ""), "open");
}

void AssessAndApprove(Deployment& deployment, const std::string& incident_id,
                      const std::string& lead) {
  const CliResult assessed = deployment.Cli(lead, {"incident", "assess", incident_id});
  ASSERT_CLI_OK(assessed);
  const nlohmann::json assessment = assessed.Json().value("assessment", nlohmann::json());
  EXPECT_EQ(assessment.value("target_version", ""), "v1") << assessed.out;
  EXPECT_FALSE(assessment.value("digest", "").empty()) << assessed.out;

  const CliResult decided =
      deployment.Cli(lead, {"incident", "decide", incident_id, "--go", "--reason",
                            "v2 raises the error rate; v1 was verified good", "--digest",
                            assessment.value("digest", "")});
  ASSERT_CLI_OK(decided);
  EXPECT_EQ(decided.Json().value("state", ""), "decided") << decided.out;
}

void RunWholeLifecycle(Deployment& deployment) {
  ASSERT_TRUE(deployment.Start()) << ReadFile(deployment.server_log());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));

  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment, incident));

  // sre-1 executes through the command provider and waits for the job.
  const CliResult rolled_back =
      deployment.Cli("sre-1", {"incident", "rollback", incident, "--wait"});
  ASSERT_CLI_OK(rolled_back);
  EXPECT_EQ(rolled_back.Json().value("outcome", ""), "rolled_back") << rolled_back.out;
  EXPECT_NE(rolled_back.err.find("succeeded"), std::string::npos) << rolled_back.err;
  EXPECT_EQ(ReadFile(deployment.version_file()), "v1\n");
  EXPECT_EQ(CountLines(deployment.runbook_log()), 1);
  // The runbook learns who executed and who approved, so the tool's own record can name both.
  EXPECT_EQ(ReadFile(deployment.runbook_log()), "rollback to v1 by sre-1 approved by lead-1\n");

  // The rollback froze checkout's deploys.
  const CliResult service = deployment.Cli("sre-1", {"service", "show", "checkout"});
  ASSERT_CLI_OK(service);
  EXPECT_EQ(service.Json()["freeze"].value("frozen", false), true) << service.out;

  const CliResult validated =
      deployment.Cli("lead-1", {"incident", "validate", incident, "--wait"});
  ASSERT_CLI_OK(validated);
  EXPECT_EQ(validated.Json().value("outcome", ""), "recovered") << validated.out;

  const std::filesystem::path log_excerpt = deployment.folder() / "errors.log";
  WriteFile(log_excerpt, "12:00:01 POST /pay 500\n12:00:02 POST /pay 500\n");
  const CliResult documented = deployment.Cli(
      "sre-2", {"incident", "document", incident, "--root-cause", "v2 dropped the payment retry",
                "--factor", "no canary stage", "--attach", log_excerpt.string()});
  ASSERT_CLI_OK(documented);
  EXPECT_EQ(documented.Json().value("root_cause", ""), "v2 dropped the payment retry");
  EXPECT_EQ(documented.Json()["attachments"].size(), 1u) << documented.out;

  const CliResult review = deployment.Cli("lead-1", {"review", "write", incident});
  ASSERT_CLI_OK(review);
  EXPECT_NE(review.Json().value("markdown", "").find(incident), std::string::npos) << review.out;
  EXPECT_EQ(review.Json().value("status", ""), "draft") << review.out;

  // Only a completed review counts for the audit; its HTML page renders the timeline table.
  const CliResult completed =
      deployment.Cli("lead-1", {"review", "status", incident, "completed", "--owner", "sre-2"});
  ASSERT_CLI_OK(completed);
  EXPECT_EQ(completed.Json().value("status", ""), "completed") << completed.out;
  EXPECT_EQ(completed.Json().value("owner", ""), "sre-2") << completed.out;
  const CliResult html = deployment.Cli("lead-1", {"review", "show", incident, "--html"});
  ASSERT_CLI_OK(html);
  EXPECT_NE(html.out.find("<table>"), std::string::npos) << html.out;

  const CliResult action =
      deployment.Cli("lead-1", {"action", "add", incident, "--title", "Add a canary stage",
                                "--owner", "sre-2", "--due", "2027-01-31"});
  ASSERT_CLI_OK(action);
  const std::string action_id = JsonId(action.Json());
  ASSERT_FALSE(action_id.empty()) << action.out;

  const CliResult done = deployment.Cli("sre-2", {"action", "done", action_id, "--evidence",
                                                  "https://git.example.test/checkout/pull/42"});
  ASSERT_CLI_OK(done);
  EXPECT_EQ(done.Json().value("status", ""), "done") << done.out;
  const CliResult overdue = deployment.Cli("lead-1", {"action", "overdue"});
  ASSERT_CLI_OK(overdue);
  EXPECT_TRUE(overdue.Json().is_array()) << overdue.out;
  EXPECT_TRUE(overdue.Json().empty()) << overdue.out;

  // The attestation records the digest the review printed.
  const CliResult access = deployment.Cli("lead-1", {"access", "review", "--attest"});
  EXPECT_LE(access.exit_code, 1) << access.err;
  EXPECT_EQ(access.Json()["attestation"].value("sha256", ""), access.Json().value("sha256", "x"))
      << access.out;

  const CliResult closed = deployment.Cli("lead-1", {"incident", "close", incident});
  ASSERT_CLI_OK(closed);
  EXPECT_EQ(closed.Json().value("state", ""), "closed") << closed.out;

  const CliResult unfrozen = deployment.Cli(
      "lead-1", {"service", "unfreeze", "checkout", "--reason", "v1 is stable again"});
  ASSERT_CLI_OK(unfrozen);
  EXPECT_EQ(unfrozen.Json().value("frozen", true), false) << unfrozen.out;

  // The ledger verifies offline once the server has stopped writing.
  deployment.Stop();
  const CliResult verified =
      deployment.RawCli({"ledger", "verify", "--database", deployment.database()});
  ASSERT_CLI_OK(verified);
}

}  // namespace backout::integration
