// The CLI's input checks and exit statuses as a user sees them. Covers files and flags that are
// not UTF-8 text, the check commands' statuses (0 clean, 1 findings, 2 usage, 3 could not check),
// filters naming unknown services or owners, and the table output of reviews and access reviews.
// `evidence verify` separates a bundle that failed (1) from one it could not open (3).
// It also covers empty filters and values, empty periods, and attachments and key files over
// their limits.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <fmt/format.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// The commands whose exit status separates findings (1) from a check that could not run (3).
const std::vector<std::vector<std::string>> kCheckCommands = {
    {"action", "overdue"}, {"access", "review"}, {"audit", "check"}};

class CliChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(deployment_.Start()) << ReadFile(deployment_.server_log());
    ASSERT_NO_FATAL_FAILURE(GrantTeam(deployment_));
  }

  // Runs the CLI in table format with `token`.
  CliResult Table(const std::string& token, const std::vector<std::string>& args) {
    return deployment_.RawCli(args, {{"BACKOUT_TOKEN", token}});
  }

  // Brings a new incident to documenting: rolled back, validated and documented.
  void Documented(std::string& incident) {
    ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment_, incident));
    ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment_, incident));
    ASSERT_CLI_OK(deployment_.Cli("sre-1", {"incident", "rollback", incident, "--wait"}));
    ASSERT_CLI_OK(deployment_.Cli("lead-1", {"incident", "validate", incident, "--wait"}));
    ASSERT_CLI_OK(deployment_.Cli(
        "sre-2", {"incident", "document", incident, "--root-cause", "v2 dropped the retry"}));
  }

  Deployment deployment_;
};

TEST_F(CliChecksTest, ReviewWriteRejectsBinaryFile) {
  const std::filesystem::path file = deployment_.folder() / "binary.md";
  std::mt19937 random(7);
  std::string bytes(20 * 1024, '\0');
  for (char& byte : bytes) byte = static_cast<char>(random() & 0xFF);
  bytes[0] = '\xFF';  // never valid in UTF-8, whatever the generator produces
  WriteFile(file, bytes);

  const CliResult result =
      deployment_.Cli("lead-1", {"review", "write", "INC-1", "--file", file.string()});
  ASSERT_CLI_EXIT(result, 1);
  EXPECT_TRUE(Contains(result.err, file.string() + " is not UTF-8 text")) << result.err;
  EXPECT_FALSE(Contains(result.err, "type_error")) << result.err;
}

TEST_F(CliChecksTest, ReviewWriteRejectsBlankFile) {
  for (const std::string content : {"", "  \n\t\n"}) {
    const std::filesystem::path file = deployment_.folder() / "empty.md";
    WriteFile(file, content);
    const CliResult result =
        deployment_.Cli("lead-1", {"review", "write", "INC-1", "--file", file.string()});
    ASSERT_CLI_EXIT(result, 1);
    EXPECT_TRUE(Contains(result.err, file.string() + " is empty or only whitespace")) << result.err;
  }
}

TEST_F(CliChecksTest, FlagThatIsNotUtf8IsNamed) {
  const CliResult result =
      deployment_.Cli("lead-1", {"action", "add", "INC-1", "--title", "fix \xFF\xFE", "--owner",
                                 "sre-1", "--due", "2027-01-31"});
  ASSERT_CLI_EXIT(result, 2);
  EXPECT_TRUE(Contains(result.err, "--title: the value is not UTF-8 text")) << result.err;
}

TEST_F(CliChecksTest, CheckCommandsExitThreeOnBadToken) {
  for (const auto& command : kCheckCommands) {
    const CliResult result = Table("not-a-token", command);
    ASSERT_CLI_EXIT(result, 3);
    EXPECT_TRUE(Contains(result.err, "HTTP 401")) << result.err;
  }
}

TEST_F(CliChecksTest, AccessReviewWithoutRoleExitsThree) {
  const CliResult result = deployment_.Cli("sre-1", {"access", "review"});
  ASSERT_CLI_EXIT(result, 3);
  EXPECT_TRUE(Contains(result.err, "access review needs the role")) << result.err;
}

TEST_F(CliChecksTest, UnknownFiltersAreErrors) {
  const CliResult overdue = deployment_.Cli("lead-1", {"action", "overdue", "--service", "nosuch"});
  ASSERT_CLI_EXIT(overdue, 2);
  EXPECT_TRUE(Contains(overdue.err, "service nosuch is not in the configuration")) << overdue.err;

  const CliResult listed = deployment_.Cli("lead-1", {"action", "list", "--service", "nosuch"});
  ASSERT_CLI_EXIT(listed, 1);
  EXPECT_TRUE(Contains(listed.err, "service nosuch is not in the configuration")) << listed.err;

  const CliResult owner = deployment_.Cli("lead-1", {"action", "overdue", "--owner", "ghost"});
  ASSERT_CLI_EXIT(owner, 2);
  EXPECT_TRUE(Contains(owner.err, "owner ghost is not on the roster")) << owner.err;

  const CliResult known = deployment_.Cli("lead-1", {"action", "overdue", "--service", "checkout"});
  ASSERT_CLI_OK(known);
}

TEST_F(CliChecksTest, FollowUpChecksOwnerEvidenceAndStatus) {
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(Documented(incident));

  // The server rejects an unknown owner with HTTP 400, a usage error for the CLI.
  const CliResult ghost =
      deployment_.Cli("lead-1", {"action", "add", incident, "--title", "Add a canary", "--owner",
                                 "ghost", "--due", "2027-01-31"});
  ASSERT_CLI_EXIT(ghost, 2);
  EXPECT_TRUE(Contains(ghost.err,
                       "action item owner ghost is not on the roster; name a user "
                       "listed under `users` in the config"))
      << ghost.err;

  // The bootstrap admin can sign in but is not listed under `users` in the config.
  const CliResult admin =
      deployment_.Cli("lead-1", {"action", "add", incident, "--title", "Add a canary", "--owner",
                                 "admin", "--due", "2027-01-31"});
  ASSERT_CLI_EXIT(admin, 2);
  EXPECT_TRUE(Contains(admin.err, "action item owner admin is not on the roster")) << admin.err;

  const CliResult added =
      deployment_.Cli("lead-1", {"action", "add", incident, "--title", "Add a canary", "--owner",
                                 "sre-2", "--due", "2027-01-31"});
  ASSERT_CLI_OK(added);
  const std::string action_id = JsonId(added.Json());
  const CliResult not_url =
      deployment_.Cli("sre-2", {"action", "done", action_id, "--evidence", "not a url at all"});
  ASSERT_CLI_EXIT(not_url, 1);
  EXPECT_TRUE(Contains(not_url.err, "only http:// and https:// URLs")) << not_url.err;
  for (const std::string script : {"javascript://%0Aalert(1)", "data://text/html,hi"}) {
    const CliResult rejected =
        deployment_.Cli("sre-2", {"action", "done", action_id, "--evidence", script});
    ASSERT_CLI_EXIT(rejected, 1);
    EXPECT_TRUE(Contains(rejected.err, "invalid evidence link '" + script + "'")) << rejected.err;
  }

  // review status prints one line in table format and the whole review in JSON.
  ASSERT_CLI_OK(deployment_.Cli("lead-1", {"review", "write", incident}));
  const CliResult admin_grant =
      deployment_.Cli("admin", {"user", "create", "lead-2", "--role", "engineering-lead"});
  ASSERT_CLI_OK(admin_grant);
  const std::string lead_token = admin_grant.Json().value("token", "");
  const CliResult summary = Table(lead_token, {"review", "status", incident, "in_review"});
  ASSERT_CLI_OK(summary);
  EXPECT_EQ(summary.out, "review of " + incident + ": status in_review, owner lead-1\n");
  const CliResult full = deployment_.Cli("lead-1", {"review", "status", incident, "draft"});
  ASSERT_CLI_OK(full);
  EXPECT_FALSE(full.Json().value("markdown", "").empty()) << full.out;
}

// A 2 MiB attachment is over the server's default body limit of 1 MiB, so it shows that the
// document route takes the attachment limit into account.
TEST_F(CliChecksTest, DocumentAcceptsLargeAttachment) {
  std::string incident;
  ASSERT_NO_FATAL_FAILURE(OpenIncidentOnV2(deployment_, incident));
  ASSERT_NO_FATAL_FAILURE(AssessAndApprove(deployment_, incident));
  ASSERT_CLI_OK(deployment_.Cli("sre-1", {"incident", "rollback", incident, "--wait"}));
  ASSERT_CLI_OK(deployment_.Cli("lead-1", {"incident", "validate", incident, "--wait"}));
  const std::filesystem::path file = deployment_.folder() / "app.log";
  WriteFile(file, std::string(size_t{2} << 20, 'x'));

  const CliResult documented =
      deployment_.Cli("sre-2", {"incident", "document", incident, "--root-cause",
                                "v2 dropped the retry", "--attach", file.string()});

  ASSERT_CLI_OK(documented) << ReadFile(deployment_.server_log());
  const json attachments = documented.Json().value("attachments", json::array());
  ASSERT_EQ(attachments.size(), 1u) << documented.out;
  EXPECT_EQ(attachments[0].value("size", int64_t{0}), int64_t{2} << 20) << documented.out;
}

TEST_F(CliChecksTest, AccessReviewTableListsGrants) {
  const CliResult result = Table(deployment_.AdminToken(), {"access", "review"});
  ASSERT_LE(result.exit_code, 1) << result.err;
  EXPECT_TRUE(Contains(result.out, "Grants")) << result.out;
  EXPECT_TRUE(Contains(result.out, "LIVE TOKENS")) << result.out;
  EXPECT_TRUE(Contains(result.out, "sre-2")) << result.out;
  EXPECT_TRUE(Contains(result.out, "devops-engineer")) << result.out;
}

TEST(CliChecksErrorTest, CheckCommandsExitThreeWhenUnreachable) {
  testing::TempDir folder;
  const std::string url = "http://127.0.0.1:" + std::to_string(FreeLoopbackPort());
  for (const auto& command : kCheckCommands) {
    const CliResult result =
        RunCli(command, {{"BACKOUT_URL", url}, {"BACKOUT_TOKEN", "x"}}, folder.path());
    ASSERT_CLI_EXIT(result, 3);
    EXPECT_TRUE(Contains(result.err, "cannot reach Backout at " + url)) << result.err;
  }
}

// The checks below reject the input before any request, so no server runs.
TEST(CliChecksErrorTest, EmptyPeriodExitsTwo) {
  testing::TempDir folder;
  const std::map<std::string, std::string> environment = {
      {"BACKOUT_URL", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())},
      {"BACKOUT_TOKEN", "x"}};
  const std::vector<std::vector<std::string>> commands = {
      {"audit", "check", "--from", "2026-12-05T00:00:00Z", "--to", "2026-12-01T00:00:00Z"},
      {"evidence", "export", "--from", "2026-12-05T00:00:00Z", "--to", "2026-12-01T00:00:00Z",
       "--out", (folder.path() / "q4.tar.gz").string()},
      {"evidence", "population", "--from", "2026-12-05T00:00:00Z", "--to", "2026-12-01T00:00:00Z"},
  };
  for (const auto& command : commands) {
    const CliResult result = RunCli(command, environment, folder.path());
    ASSERT_CLI_EXIT(result, 2);
    EXPECT_TRUE(
        Contains(result.err, "--from 2026-12-05T00:00:00Z is not before --to 2026-12-01T00:00:00Z"))
        << result.err;
  }

  const CliResult ledger =
      RunCli({"ledger", "consistency", "--database", "sqlite:x.db", "--from", "5", "--to", "3"},
             environment, folder.path());
  ASSERT_CLI_EXIT(ledger, 2);
  EXPECT_TRUE(Contains(ledger.err, "--from 5 is larger than --to 3")) << ledger.err;
}

TEST(CliChecksErrorTest, EmptyFilterExitsTwo) {
  testing::TempDir folder;
  const std::map<std::string, std::string> environment = {
      {"BACKOUT_URL", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())},
      {"BACKOUT_TOKEN", "x"}};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"action", "list", "--service", ""}, "--service"},
      {{"action", "list", "--owner", ""}, "--owner"},
      {{"action", "overdue", "--service", ""}, "--service"},
      {{"action", "overdue", "--owner", ""}, "--owner"},
      {{"incident", "list", "--service", ""}, "--service"},
      {{"incident", "list", "--state", ""}, "--state"},
      {{"change", "list", "--service", ""}, "--service"},
      {{"discovered", "list", "--service", ""}, "--service"},
      {{"review", "status", "INC-1", "--owner", ""}, "--owner"},
  };
  for (const auto& [command, flag] : cases) {
    const CliResult result = RunCli(command, environment, folder.path());
    ASSERT_CLI_EXIT(result, 2);
    EXPECT_TRUE(Contains(result.err, flag + ": the value is empty")) << result.err;
  }
}

TEST(CliChecksErrorTest, AttachmentOverLimitIsNamed) {
  testing::TempDir folder;
  const std::filesystem::path file = folder.path() / "recording.webm";
  constexpr uintmax_t kSize = (uintmax_t{10} << 20) + 1;
  { std::ofstream create(file); }
  std::filesystem::resize_file(file, kSize);  // sparse, so the test writes no 10 MiB
  const CliResult result =
      RunCli({"incident", "confirm-check", "INC-1", "smoke", "--note", "saw it", "--attach",
              file.string()},
             {{"BACKOUT_URL", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())},
              {"BACKOUT_TOKEN", "x"}},
             folder.path());
  ASSERT_CLI_EXIT(result, 2);
  EXPECT_TRUE(Contains(result.err, fmt::format("{} has {} bytes, over the limit of 10485760 bytes",
                                               file.string(), kSize)))
      << result.err;
}

// Creates a sparse file of `size` bytes, so the test writes no data.
std::filesystem::path SparseFile(const std::filesystem::path& path, uintmax_t size) {
  { std::ofstream create(path); }
  std::filesystem::resize_file(path, size);
  return path;
}

TEST(CliChecksErrorTest, DocumentAttachmentOverLimitExitsTwo) {
  testing::TempDir folder;
  const std::map<std::string, std::string> environment = {
      {"BACKOUT_URL", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())},
      {"BACKOUT_TOKEN", "x"}};
  const std::vector<std::string> document = {"incident", "document", "INC-1", "--root-cause",
                                             "v2 dropped the retry"};
  auto with = [&document](std::initializer_list<std::string> attachments) {
    std::vector<std::string> args = document;
    for (const std::string& path : attachments) {
      args.push_back("--attach");
      args.push_back(path);
    }
    return args;
  };

  const std::string large = SparseFile(folder.path() / "large.log", (uintmax_t{10} << 20) + 1);
  const CliResult too_large = RunCli(with({large}), environment, folder.path());
  ASSERT_CLI_EXIT(too_large, 2);
  EXPECT_TRUE(
      Contains(too_large.err, fmt::format("{} has 10485761 bytes, over the limit of 10485760 "
                                          "bytes",
                                          large)))
      << too_large.err;

  const std::string first_log = SparseFile(folder.path() / "a.log", uintmax_t{6} << 20);
  const std::string second_log = SparseFile(folder.path() / "b.log", uintmax_t{6} << 20);
  const CliResult over_total = RunCli(with({first_log, second_log}), environment, folder.path());
  ASSERT_CLI_EXIT(over_total, 2);
  EXPECT_TRUE(
      Contains(over_total.err, fmt::format("--attach {} brings the total to 12582912 bytes, over "
                                           "the limit of 10485760 bytes",
                                           second_log)))
      << over_total.err;

  const CliResult device = RunCli(with({"/dev/zero"}), environment, folder.path());
  ASSERT_CLI_EXIT(device, 2);
  EXPECT_TRUE(Contains(device.err, "/dev/zero is not a regular file")) << device.err;
}

TEST(CliChecksErrorTest, KeyFileOverLimitExitsTwo) {
  testing::TempDir folder;
  const std::string key = SparseFile(folder.path() / "key.pem", uintmax_t{1} << 20);
  const std::string database = "sqlite:" + (folder.path() / "missing.db").string();

  const CliResult ledger =
      RunCli({"ledger", "verify", "--database", database, "--public-key", key}, {}, folder.path());
  ASSERT_CLI_EXIT(ledger, 2);
  EXPECT_TRUE(Contains(ledger.err, key + " has 1048576 bytes, over the limit of 65536 bytes"))
      << ledger.err;

  const CliResult checkpoint =
      RunCli({"ledger", "verify", "--database", database, "--checkpoint", key}, {}, folder.path());
  ASSERT_CLI_EXIT(checkpoint, 2);
  EXPECT_TRUE(Contains(checkpoint.err, key + " has 1048576 bytes, over the limit of 65536 bytes"))
      << checkpoint.err;

  const std::string bundle = SparseFile(folder.path() / "bundle.tar.gz", 100);
  const CliResult evidence =
      RunCli({"evidence", "verify", bundle, "--public-key", key}, {}, folder.path());
  ASSERT_CLI_EXIT(evidence, 2);
  EXPECT_TRUE(Contains(evidence.err, key + " has 1048576 bytes, over the limit of 65536 bytes"))
      << evidence.err;

  const CliResult device = RunCli({"evidence", "verify", "/dev/zero"}, {}, folder.path());
  ASSERT_CLI_EXIT(device, 2);
  EXPECT_TRUE(Contains(device.err, "/dev/zero is not a regular file")) << device.err;
}

// Without libarchive a bundle cannot be opened, which is a check that could not be made (3), not
// a bundle that failed verification (1). The dynamic loader searches LD_LIBRARY_PATH first, so
// an empty file there under libarchive's Debian 12 soname simulates a broken installation.
TEST(CliChecksErrorTest, EvidenceVerifyWithoutLibarchiveExitsThree) {
  testing::TempDir folder;
  const std::filesystem::path libraries = folder.path() / "broken-libraries";
  std::filesystem::create_directories(libraries);
  std::ofstream(libraries / "libarchive.so.13") << "";
  const std::string bundle = SparseFile(folder.path() / "bundle.tar.gz", 100);

  const CliResult missing = RunCli({"evidence", "verify", bundle},
                                   {{"LD_LIBRARY_PATH", libraries.string()}}, folder.path());
  ASSERT_CLI_EXIT(missing, 3);
  EXPECT_TRUE(Contains(missing.err, "the bundle could not be checked: cannot load libarchive"))
      << missing.err;

  const CliResult corrupt = RunCli({"evidence", "verify", bundle}, {}, folder.path());
  ASSERT_CLI_EXIT(corrupt, 1);
  EXPECT_TRUE(Contains(corrupt.err, "evidence verification FAILED")) << corrupt.err;
}

// `config check` prints the warning for a service that can never be validated `recovered`, and
// rejects an invalid file with the loader's message.
TEST(CliChecksErrorTest, ConfigCheckPrintsWarningsAndErrors) {
  testing::TempDir folder;
  const std::filesystem::path config = folder.path() / "backout.yaml";
  WriteFile(config,
            "services:\n"
            "  - name: checkout\n"
            "    provider: {kind: command, run: [/opt/rollback], status: [/opt/version]}\n");
  const CliResult warned = RunCli({"config", "check", config.string()}, {}, folder.path());
  ASSERT_CLI_EXIT(warned, 0);
  EXPECT_TRUE(Contains(warned.err, "warning: " + config.string() +
                                       ":2: services[0]: service checkout has no `checks`"))
      << warned.err;
  EXPECT_TRUE(Contains(warned.out, config.string() + " is valid: 1 service, 1 warning"))
      << warned.out;

  WriteFile(config,
            "services:\n"
            "  - name: checkout\n"
            "    provider: {kind: command, run: [/opt/rollback], timeout: 5x}\n");
  const CliResult invalid = RunCli({"config", "check", config.string()}, {}, folder.path());
  ASSERT_CLI_EXIT(invalid, 1);
  EXPECT_TRUE(
      Contains(invalid.err, "error: " + config.string() + ":3: services[0].provider.timeout: "))
      << invalid.err;
}

// A config path that is not a regular file is a usage error, for `config check` and `serve`.
TEST(CliChecksErrorTest, ConfigNotRegularFileExitsTwo) {
  testing::TempDir folder;
  const std::filesystem::path fifo = folder.path() / "backout.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {std::string("/dev/zero"), fifo.string()}) {
    const CliResult checked = RunCli({"config", "check", path}, {}, folder.path());
    ASSERT_CLI_EXIT(checked, 2);
    EXPECT_TRUE(Contains(checked.err, path + " is not a regular file")) << checked.err;
    const CliResult served = RunCli({"serve", "--config", path}, {}, folder.path());
    ASSERT_CLI_EXIT(served, 2);
    EXPECT_TRUE(Contains(served.err, path + " is not a regular file")) << served.err;
  }
}

// Every list command rejects a --limit that is negative or past 2^64-1, before any request.
TEST(CliChecksErrorTest, ListLimitOutOfRangeExitsTwo) {
  testing::TempDir folder;
  const std::vector<std::vector<std::string>> commands = {
      {"incident", "list"}, {"service", "list"}, {"notification", "list"}};
  for (const auto& command : commands) {
    for (const std::string value : {"-1", "99999999999999999999999"}) {
      std::vector<std::string> args = command;
      args.insert(args.end(), {"--limit", value});
      // Port 9 on loopback (discard) keeps a command that passed the check away from any server.
      const CliResult listed =
          RunCli(args, {{"BACKOUT_TOKEN", "unused"}, {"BACKOUT_URL", "http://127.0.0.1:9"}},
                 folder.path());
      ASSERT_CLI_EXIT(listed, 2);
      EXPECT_TRUE(Contains(listed.err, "--limit: " + value + " is")) << listed.err;
    }
  }
}

TEST(CliChecksErrorTest, ActionAddEmptyValueIsNamed) {
  testing::TempDir folder;
  const std::map<std::string, std::string> environment = {
      {"BACKOUT_URL", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())},
      {"BACKOUT_TOKEN", "x"}};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"action", "add", "INC-1", "--title", "", "--owner", "sre-1", "--due", "2027-01-31"},
       "--title"},
      {{"action", "add", "INC-1", "--title", "Add a canary", "--owner", "", "--due", "2027-01-31"},
       "--owner"},
      {{"action", "add", "INC-1", "--title", "Add a canary", "--owner", "sre-1", "--due", ""},
       "--due"},
      {{"action", "add", "INC-1", "--no-action", "--reason", ""}, "--reason"},
  };
  for (const auto& [command, flag] : cases) {
    const CliResult result = RunCli(command, environment, folder.path());
    ASSERT_CLI_EXIT(result, 2);
    EXPECT_TRUE(Contains(result.err, flag + ": the value is empty")) << result.err;
    EXPECT_FALSE(Contains(result.err, "needs --title, --owner and --due")) << result.err;
  }
}

}  // namespace
}  // namespace backout::integration
