// SIGKILL of the real server between the switch of `current` and the store write of the
// rollback's result: the restarted server must correct its release manifest from the folder
// and finish the job without switching again. Also the manifest's table as the CLI prints it.
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "deployment.h"
#include "harness.h"
#include "providers/releases/test_releases.h"
#include "support/temp_dir.h"

namespace backout::integration {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr char kMarker[] = ".backout-release-complete";

template <typename Condition>
bool WaitFor(Condition done, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// A server whose service `web` is deployed by release folders 1, 2 and 3 (current -> 3). Its
// restart command kills the server with SIGKILL the first time it runs, which is right after
// the switch and before the job stores the switch's result.
class ReleaseCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path& dir = folder_.path();
    root_ = dir / "web";
    for (int version = 1; version <= 3; ++version) {
      providers::releases::testing::MakeRelease(root_, std::to_string(version), true,
                                                1'700'000'000 + version * 3600, kMarker);
    }
    providers::releases::testing::PointCurrent(root_, (root_ / "releases" / "3").string());
    WriteFile(dir / "check.sh", "#!/bin/sh\nexit 0\n", fs::perms::owner_all);
    WriteFile(dir / "restart.sh",
              fmt::format("#!/bin/sh\nif [ ! -e {0}/killed ]; then\n  touch {0}/killed\n"
                          "  kill -9 $PPID\n  exit 1\nfi\necho restarted >> {0}/restarts\n",
                          dir.string()),
              fs::perms::owner_all);
    port_ = FreeLoopbackPort();
    WriteFile(dir / "backout.yaml", fmt::format(R"(listen: 127.0.0.1:{1}
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [web]}}
services:
  - name: web
    provider:
      kind: releases
      root: {0}/web
      restart: [{0}/restart.sh]
      health: [{0}/check.sh]
    checks:
      - {{name: smoke, kind: command, run: [{0}/check.sh]}}
)",
                                                dir.string(), port_));
    server_ = std::make_unique<ServerProcess>(dir / "backout.yaml", dir / "server.log",
                                              std::map<std::string, std::string>{});
  }

  std::string Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

  CliResult Cli(const std::string& token, std::vector<std::string> args) {
    args.insert(args.end(), {"-o", "json"});
    return RunCli(args, {{"BACKOUT_URL", Url()}, {"BACKOUT_TOKEN", token}}, folder_.path());
  }

  std::string Grant(const std::string& name, const std::string& role) {
    std::string admin = ReadFile(folder_.path() / "data" / "admin.token");
    while (!admin.empty() && admin.back() == '\n') admin.pop_back();
    std::vector<std::string> args = {"user", "create", name, "--role", role};
    if (role == "devops-engineer") args.insert(args.end(), {"--service", "web"});
    const CliResult created = Cli(admin, args);
    EXPECT_EQ(created.exit_code, 0) << created.err;
    return created.Json().is_object() ? created.Json().value("token", "") : "";
  }

  std::string Live() const { return fs::read_symlink(root_ / "current").filename().string(); }

  testing::TempDir folder_;
  fs::path root_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ReleaseCrashTest, KilledAfterSwitchCorrectsManifest) {
  ASSERT_TRUE(server_->Start(port_)) << ReadFile(folder_.path() / "server.log");
  const std::string lead = Grant("lead-1", "engineering-lead");
  const std::string sre = Grant("sre-1", "devops-engineer");
  ASSERT_FALSE(lead.empty());
  ASSERT_FALSE(sre.empty());

  std::string suspected;
  for (const char* version : {"1", "2", "3"}) {
    const CliResult recorded =
        Cli(sre, {"change", "record", "--service", "web", "--version", version});
    ASSERT_EQ(recorded.exit_code, 0) << recorded.err;
    suspected = JsonId(recorded.Json());
  }
  const CliResult opened =
      Cli(lead, {"incident", "open", "--service", "web", "--severity", "sev2", "--title",
                 "errors after 3", "--suspected-change", suspected});
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  const std::string incident = JsonId(opened.Json());
  const CliResult assessed = Cli(lead, {"incident", "assess", incident, "--target", "2"});
  ASSERT_EQ(assessed.exit_code, 0) << assessed.err;
  const std::string digest =
      assessed.Json().value("assessment", nlohmann::json::object()).value("digest", "");
  const CliResult decided = Cli(lead, {"incident", "decide", incident, "--go", "--reason",
                                       "3 is broken", "--digest", digest});
  ASSERT_EQ(decided.exit_code, 0) << decided.err;

  // The restart command kills the server right after the switch. An idle worker starts the job
  // as soon as the request commits it, so the kill may come before the reply is sent.
  const CliResult requested = Cli(sre, {"incident", "rollback", incident});
  ASSERT_TRUE(WaitFor([&] { return fs::exists(folder_.path() / "killed"); }, seconds(30)))
      << requested.err << ReadFile(folder_.path() / "server.log");
  if (requested.exit_code != 0) {
    EXPECT_NE(requested.err.find("before the response was complete"), std::string::npos)
        << requested.err;
  }
  ASSERT_TRUE(WaitFor([&] { return HttpGetStatus(port_, "/healthz") == 0; }, seconds(10)));
  server_->Stop(SIGKILL);  // reaps the killed process
  ASSERT_EQ(Live(), "2");

  // The restarted server corrects the manifest from the folder and finishes the job.
  ASSERT_TRUE(server_->Start(port_)) << ReadFile(folder_.path() / "server.log");
  nlohmann::json rollback;
  ASSERT_TRUE(WaitFor(
      [&] {
        const nlohmann::json shown = Cli(lead, {"incident", "show", incident}).Json();
        if (!shown.is_object() || shown.value("rollbacks", nlohmann::json::array()).empty()) {
          return false;
        }
        rollback = shown["rollbacks"].back();
        return rollback.contains("outcome") && !rollback["outcome"].is_null();
      },
      seconds(60)))
      << ReadFile(folder_.path() / "server.log");
  EXPECT_EQ(rollback.value("outcome", ""), "rolled_back") << rollback.dump();
  EXPECT_EQ(Live(), "2");
  // The resumed job ran the restart again, never the switch.
  EXPECT_EQ(CountLines(folder_.path() / "restarts"), 1);

  const CliResult releases = Cli(lead, {"service", "releases", "web"});
  ASSERT_EQ(releases.exit_code, 0) << releases.err;
  const nlohmann::json manifest = releases.Json();
  EXPECT_EQ(manifest.value("live_version", ""), "2") << releases.out;
  EXPECT_EQ(manifest.value("agrees_with_folder", false), true) << releases.out;
  std::map<std::string, std::string> statuses;
  std::map<std::string, std::string> set_by;
  for (const nlohmann::json& release : manifest.value("releases", nlohmann::json::array())) {
    statuses[release.value("version", "")] = release.value("status", "");
    set_by[release.value("version", "")] = release.value("set_by", "");
  }
  EXPECT_EQ(statuses["3"], "rolled_back") << releases.out;
  EXPECT_EQ(statuses["2"], "deployed") << releases.out;
  // The resumed job finished the rollback, so its incident is the record of the switch away from
  // 3, as without a crash.
  EXPECT_EQ(set_by["3"], "incident/" + incident) << releases.out;
  EXPECT_NE(ReadFile(folder_.path() / "server.log").find("event=manifest_corrected"),
            std::string::npos);
}

// The table shows the two newest change ids of a release and how many more there are, so a
// release deployed many times keeps the table readable. `-o json` keeps every id.
TEST_F(ReleaseCrashTest, ReleasesTableBoundsChangeIds) {
  ASSERT_TRUE(server_->Start(port_)) << ReadFile(folder_.path() / "server.log");
  const std::string lead = Grant("lead-1", "engineering-lead");
  const std::string sre = Grant("sre-1", "devops-engineer");
  ASSERT_FALSE(lead.empty());
  ASSERT_FALSE(sre.empty());
  // Reconcile first, so the deploys the markers show are known before the test reads the table.
  const CliResult reconciled = Cli(lead, {"service", "reconcile", "web"});
  ASSERT_EQ(reconciled.exit_code, 0) << reconciled.err;
  std::vector<std::string> ids;
  for (int deploy = 0; deploy < 5; ++deploy) {
    const CliResult recorded = Cli(sre, {"change", "record", "--service", "web", "--version", "3"});
    ASSERT_EQ(recorded.exit_code, 0) << recorded.err;
    ids.push_back(JsonId(recorded.Json()));
  }

  const CliResult table = RunCli({"service", "releases", "web", "-o", "table"},
                                 {{"BACKOUT_URL", Url()}, {"BACKOUT_TOKEN", lead}}, folder_.path());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::string row;
  std::istringstream lines(table.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("3 ")) row = line;
  }
  ASSERT_FALSE(row.empty()) << table.out;

  const CliResult listed = Cli(lead, {"service", "releases", "web"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> stored;
  for (const nlohmann::json& release : listed.Json().value("releases", nlohmann::json::array())) {
    if (release.value("version", "") == "3") {
      stored = release.value("change_ids", std::vector<std::string>{});
    }
  }
  // The reconciliation may have added a discovered change for release 3 before the recorded ones.
  ASSERT_GE(stored.size(), ids.size());
  EXPECT_TRUE(std::equal(ids.begin(), ids.end(), stored.end() - ids.size())) << listed.out;
  EXPECT_TRUE(row.ends_with(fmt::format("{},{} +{} more", ids[4], ids[3], stored.size() - 2)))
      << row;
  EXPECT_EQ(row.find(ids[0] + ","), std::string::npos) << row;
}

}  // namespace
}  // namespace backout::integration
