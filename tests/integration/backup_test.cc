// Backup and restore of the SQLite store as docs/operating.md describes them: an online copy
// with sqlite3's `.backup`, restored into a new folder, still verifies against a checkpoint
// exported before the copy, and a copy older than that checkpoint is caught.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

namespace fs = std::filesystem;

// Copies the live database with sqlite3's online backup, as an operator's cron job would.
void OnlineBackup(const Deployment& deployment, const fs::path& copy) {
  const std::string database = deployment.database().substr(std::string("sqlite:").size());
  const std::string command = fmt::format("sqlite3 '{}' \".backup '{}'\"", database, copy.string());
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(BackupTest, RestoredCopyVerifiesAgainstEarlierCheckpoint) {
  Deployment deployment;
  ASSERT_TRUE(deployment.Start());
  ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment));
  const fs::path early_copy = deployment.folder() / "early.db";
  ASSERT_NO_FATAL_FAILURE(OnlineBackup(deployment, early_copy));

  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment, incident));
  const fs::path checkpoint = deployment.folder() / "checkpoint.json";
  const fs::path public_key = deployment.folder() / "ledger-key.pub";
  ASSERT_CLI_OK(
      deployment.RawCli({"ledger", "checkpoint", "--database", deployment.database(), "--out",
                         checkpoint.string(), "--public-key-out", public_key.string()}));
  const fs::path late_copy = deployment.folder() / "late.db";
  ASSERT_NO_FATAL_FAILURE(OnlineBackup(deployment, late_copy));

  // The server goes on writing after the copy, which is then restored in another folder.
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment, incident));
  deployment.Stop();

  const fs::path restored = deployment.folder() / "restored";
  fs::create_directories(restored);
  fs::copy_file(late_copy, restored / "backout.db");
  const CliResult verified = deployment.RawCli(
      {"ledger", "verify", "--database", "sqlite:" + (restored / "backout.db").string(),
       "--checkpoint", checkpoint.string(), "--public-key", public_key.string()});
  ASSERT_CLI_OK(verified);

  // A copy taken before the checkpoint lacks entries that the checkpoint signed, so verify fails.
  fs::copy_file(early_copy, restored / "early.db");
  const CliResult stale = deployment.RawCli(
      {"ledger", "verify", "--database", "sqlite:" + (restored / "early.db").string(),
       "--checkpoint", checkpoint.string(), "--public-key", public_key.string()});
  EXPECT_EQ(stale.exit_code, 1) << stale.out << stale.err;
  EXPECT_NE((stale.out + stale.err).find("the exported checkpoint signs tree size"),
            std::string::npos)
      << stale.out << stale.err;
}

}  // namespace
}  // namespace backout::integration
