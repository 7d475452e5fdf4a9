// Backup and restore of the SQLite store as docs/operating.md describes them: an online copy
// with sqlite3's `.backup`, restored into a new folder, still verifies against a checkpoint
// exported before the copy, and a copy older than that checkpoint is caught.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

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

// The number of ledger entries in the SQLite file `path`, read with the sqlite3 shell.
uint64_t EntryCount(const fs::path& path) {
  const std::string command =
      fmt::format("sqlite3 '{}' 'SELECT count(*) FROM ledger_entries'", path.string());
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  char line[64] = {};
  if (!pipe || !fgets(line, sizeof line, pipe.get())) return 0;
  return std::strtoull(line, nullptr, 10);
}

uint64_t TreeSizeIn(const fs::path& checkpoint) {
  std::ifstream in(checkpoint);
  std::stringstream text;
  text << in.rdbuf();
  const auto json = nlohmann::json::parse(text.str(), nullptr, false);
  return json.is_object() ? json.value("tree_size", uint64_t{0}) : 0;
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
  // The running server signs new entries within its checkpoint_interval (1 s by default), so the
  // stored checkpoint reaches past the early copy within a few seconds.
  const uint64_t early_entries = EntryCount(early_copy);
  ASSERT_GT(early_entries, 0u);
  for (int attempt = 0; attempt < 100; ++attempt) {
    ASSERT_CLI_OK(
        deployment.RawCli({"ledger", "checkpoint", "--database", deployment.database(), "--out",
                           checkpoint.string(), "--public-key-out", public_key.string()}));
    if (TreeSizeIn(checkpoint) > early_entries) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(TreeSizeIn(checkpoint), early_entries) << "no checkpoint signed the later entries";
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
