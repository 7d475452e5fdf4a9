#include "providers/releases/releases_provider.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "http/test_server.h"
#include "providers/command/test_scripts.h"
#include "providers/releases/test_releases.h"
#include "support/temp_dir.h"

namespace backout::providers::releases {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::MakeRelease;
using testing::PointCurrent;
using testing::ReadText;
using testing::SecondsAfterEpoch;

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00Z"); }

// A deploy root with releases 1, 2 and 3 (completed in that order) and current -> 3.
class ReleasesProviderTest : public ::testing::Test {
 protected:
  ReleasesProviderTest() : clock_(T0()) {
    root_ = dir_.path() / "checkout";
    Release("1", true, 1'000);
    Release("2", true, 2'000);
    Release("3", true, 3'000);
    PointCurrent(root_, Abs("3"));
  }

  fs::path Release(const std::string& version, bool complete, int64_t at) {
    return MakeRelease(root_, version, complete, at, std::string(kDefaultMarker));
  }
  std::string Abs(const std::string& version) const {
    return (root_ / "releases" / version).string();
  }
  std::string LinkTarget() const { return fs::read_symlink(root_ / "current").string(); }

  json Settings(json extra = json::object()) const {
    json settings{{"kind", "releases"}, {"root", root_.string()}};
    for (const auto& [key, value] : extra.items()) settings[key] = value;
    return settings;
  }

  std::unique_ptr<Provider> Make(json settings) {
    auto provider = ReleasesProvider::Create("checkout", settings, {}, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }
  std::unique_ptr<Provider> Make() { return Make(Settings()); }

  std::string CreateError(json settings) {
    auto provider = ReleasesProvider::Create("checkout", settings, {}, clock_);
    EXPECT_FALSE(provider.has_value());
    return provider ? "" : provider.error().message;
  }

  ExecutionContext Context() const {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "sre-1";
    return context;
  }

  ExecutionResult ExecuteTo(const Provider& provider, std::string_view target) {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    if (!plan) return {};
    auto result = provider.Execute(*plan, "job-1", Context());
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result ? *result : ExecutionResult{};
  }

  // Plans a rollback to `target` and runs Execute with an on_started that records the start and
  // then fails, as when the server stops right after committing the start.
  std::pair<Plan, StartedAction> StartThenCrash(const Provider& provider, std::string_view target) {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    StartedAction recorded;
    ExecutionContext context = Context();
    context.on_started = [&](const StartedAction& started) -> core::Result<void> {
      recorded = started;
      return core::MakeError(core::ErrorCode::kUnavailable, "server stopped");
    };
    auto result = provider.Execute(*plan, "job-1", context);
    EXPECT_TRUE(result.has_value());
    return {*plan, recorded};
  }

  backout::testing::TempDir dir_;
  core::ManualClock clock_;
  fs::path root_;
};

// --- settings ---

TEST_F(ReleasesProviderTest, SettingsRequireRoot) {
  std::string error = CreateError(json{{"kind", "releases"}});
  EXPECT_NE(error.find("field 'root': missing"), std::string::npos) << error;
}

TEST_F(ReleasesProviderTest, SettingsRejectRelativeRoot) {
  std::string error = CreateError(Settings({{"root", "srv/checkout"}}));
  EXPECT_NE(error.find("must be an absolute path"), std::string::npos) << error;
}

TEST_F(ReleasesProviderTest, SettingsRejectMarkerWithSlash) {
  std::string error = CreateError(Settings({{"marker", "../REVISION"}}));
  EXPECT_NE(error.find("field 'marker'"), std::string::npos) << error;
}

TEST_F(ReleasesProviderTest, SettingsRejectRelativeRestart) {
  std::string error = CreateError(Settings({{"restart", {"systemctl", "restart"}}}));
  EXPECT_NE(error.find("field 'restart'"), std::string::npos) << error;
}

TEST_F(ReleasesProviderTest, SettingsRejectUnknownField) {
  std::string error = CreateError(Settings({{"keep_releases", 5}}));
  EXPECT_NE(error.find("field 'keep_releases': unknown field"), std::string::npos) << error;
}

TEST_F(ReleasesProviderTest, SettingsRejectNonHttpHealthUrl) {
  std::string error = CreateError(Settings({{"health_url", "ftp://127.0.0.1/x"}}));
  EXPECT_NE(error.find("field 'health_url'"), std::string::npos) << error;
}

// --- live state ---

TEST_F(ReleasesProviderTest, LiveStateReadsLink) {
  auto provider = Make();
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "3");
  EXPECT_EQ(live->observed_at, T0());
  EXPECT_EQ(live->details["link_target"], Abs("3"));
  EXPECT_EQ(live->details["complete"], true);
}

TEST_F(ReleasesProviderTest, RelativeLinkIsLiveWithNote) {
  PointCurrent(root_, "releases/2");
  auto provider = Make();
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "2");
  EXPECT_EQ(live->details["link_relative"], true);
  EXPECT_NE(live->details.value("link_note", "").find("'releases/2'"), std::string::npos)
      << live->details.dump();
}

TEST_F(ReleasesProviderTest, RelativeLinkOutsideFailsPrecondition) {
  PointCurrent(root_, "10");
  auto provider = Make();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value()) << checks.error().message;
  const Precondition* link = nullptr;
  for (const Precondition& check : *checks) {
    if (check.name == "current links to a release") link = &check;
  }
  ASSERT_NE(link, nullptr);
  EXPECT_FALSE(link->satisfied);
  EXPECT_NE(link->detail.find("links to '10'"), std::string::npos) << link->detail;
}

TEST_F(ReleasesProviderTest, RelativeLinkToReleasePassesPreconditionWithNote) {
  PointCurrent(root_, "releases/3");
  auto checks = Make()->Preconditions();
  ASSERT_TRUE(checks.has_value()) << checks.error().message;
  const Precondition* link = nullptr;
  for (const Precondition& check : *checks) {
    if (check.name == "current links to a release") link = &check;
  }
  ASSERT_NE(link, nullptr);
  EXPECT_TRUE(link->satisfied);
  EXPECT_NE(link->detail.find("relative link"), std::string::npos) << link->detail;
}

TEST_F(ReleasesProviderTest, DanglingLinkFailsPrecondition) {
  PointCurrent(root_, Abs("9"));
  auto provider = Make();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  bool found = false;
  for (const Precondition& check : *checks) {
    if (check.name != "current links to a release") continue;
    found = true;
    EXPECT_FALSE(check.satisfied);
    EXPECT_NE(check.detail.find(Abs("9")), std::string::npos) << check.detail;
  }
  EXPECT_TRUE(found);
}

TEST_F(ReleasesProviderTest, HealthyRootPassesPreconditions) {
  auto provider = Make();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  for (const Precondition& check : *checks) {
    EXPECT_TRUE(check.satisfied) << check.name << ": " << check.detail;
  }
}

// --- plans ---

TEST_F(ReleasesProviderTest, PlanSwitchNamesFromAndTarget) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_FALSE(plan->noop);
  EXPECT_EQ(plan->target_version, "2");
  EXPECT_EQ(plan->action["type"], "switch");
  EXPECT_EQ(plan->action["from_version"], "3");
  EXPECT_EQ(plan->action["from_target"], Abs("3"));
  EXPECT_EQ(plan->action["target_path"], Abs("2"));
  EXPECT_EQ(plan->digest, PlanDigest(plan->action));
}

TEST_F(ReleasesProviderTest, PlanRefusesMissingTarget) {
  auto provider = Make();
  auto plan = provider->MakePlan("9");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(plan.error().message.find("release 9 not found"), std::string::npos)
      << plan.error().message;
}

TEST_F(ReleasesProviderTest, PlanRefusesIncompleteTarget) {
  Release("4", false, 0);
  auto provider = Make();
  auto plan = provider->MakePlan("4");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("release 4 is incomplete"), std::string::npos)
      << plan.error().message;
}

// Release 2b is a link to a folder outside releases/ whose marker is newer than 2's, so by marker
// time alone the provider's rule would pick it.
TEST_F(ReleasesProviderTest, ReleaseLinkedOutsideIsNeverTarget) {
  const fs::path elsewhere =
      MakeRelease(dir_.path() / "other", "2b", true, 2'500, std::string(kDefaultMarker));
  fs::create_directory_symlink(elsewhere, root_ / "releases/2b");
  auto provider = Make();

  auto named = provider->MakePlan("2b");
  ASSERT_FALSE(named.has_value());
  EXPECT_EQ(named.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(named.error().message.find("release 2b cannot be a rollback target"), std::string::npos)
      << named.error().message;
  EXPECT_NE(named.error().message.find(elsewhere.string()), std::string::npos)
      << named.error().message;

  auto by_rule = provider->MakePlan("");
  ASSERT_TRUE(by_rule.has_value()) << by_rule.error().message;
  EXPECT_EQ(by_rule->target_version, "2");

  auto inventory = provider->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  ASSERT_EQ(inventory->items.size(), 4u);
  EXPECT_EQ(inventory->items[0].version, "2b");
  EXPECT_FALSE(inventory->items[0].complete);
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  for (const HistoryEntry& entry : *history) EXPECT_NE(entry.version, "2b");
}

// `current` switched by hand to a release folder that links outside releases/ is no live release.
TEST_F(ReleasesProviderTest, CurrentThroughReleaseLinkedOutsideIsProblem) {
  const fs::path elsewhere =
      MakeRelease(dir_.path() / "other", "4", true, 4'000, std::string(kDefaultMarker));
  fs::create_directory_symlink(elsewhere, root_ / "releases/4");
  PointCurrent(root_, Abs("4"));
  auto provider = Make();

  auto inventory = provider->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "");
  EXPECT_NE(inventory->live_problem.find("links to release 4"), std::string::npos)
      << inventory->live_problem;
  EXPECT_FALSE(provider->ReadLiveState().has_value());
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  for (const HistoryEntry& entry : *history) EXPECT_NE(entry.version, "4");
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
}

// The target folder was replaced by a link to elsewhere between the plan and the switch.
TEST_F(ReleasesProviderTest, TargetLinkedOutsideSincePlanFailsPrecondition) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  const fs::path elsewhere =
      MakeRelease(dir_.path() / "other", "2", true, 2'000, std::string(kDefaultMarker));
  fs::rename(root_ / "releases/2", dir_.path() / "moved-2");
  fs::create_directory_symlink(elsewhere, root_ / "releases/2");

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed);
  EXPECT_NE(result->message.find("no longer a trusted release"), std::string::npos)
      << result->message;
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, PlanRefusesPathTraversal) {
  auto provider = Make();
  auto plan = provider->MakePlan("../../etc");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(ReleasesProviderTest, PlanForLiveReleaseIsNoop) {
  auto provider = Make();
  auto plan = provider->MakePlan("3");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->noop);
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, EmptyTargetPicksPreviousRelease) {
  auto provider = Make();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "2");
  EXPECT_NE(plan->summary.find("provider rule"), std::string::npos) << plan->summary;
}

TEST_F(ReleasesProviderTest, ProviderRuleAndNamedTargetHaveSameDigest) {
  // The job plans again with the approved target's name, so the rule must not change the digest.
  auto provider = Make();
  auto by_rule = provider->MakePlan("");
  auto named = provider->MakePlan("2");
  ASSERT_TRUE(by_rule.has_value());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(by_rule->digest, named->digest);
}

TEST_F(ReleasesProviderTest, ProviderRuleSkipsIncompleteAndNewerReleases) {
  Release("2b", false, 0);
  Release("4", true, 4'000);
  PointCurrent(root_, Abs("2"));
  auto provider = Make();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "1");
}

TEST_F(ReleasesProviderTest, ProviderRuleUsesCompletionNotName) {
  // Deployer numbers releases 1, 2 … 10: by name "9" sorts after "10", by completion before.
  Release("9", true, 9'000);
  Release("10", true, 10'000);
  PointCurrent(root_, Abs("10"));
  auto provider = Make();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "9");
}

// A rollback with only one release must not "succeed": there is nothing to roll back to, and
// current stays where it is.
TEST_F(ReleasesProviderTest, OnlyOneReleaseHasNoRollbackTarget) {
  fs::remove_all(root_);
  Release("1", true, 1'000);
  PointCurrent(root_, Abs("1"));
  auto provider = Make();

  auto by_rule = provider->MakePlan("");
  ASSERT_FALSE(by_rule.has_value());
  EXPECT_EQ(by_rule.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(by_rule.error().message.find("no rollback target"), std::string::npos)
      << by_rule.error().message;

  auto named = provider->MakePlan("0");
  ASSERT_FALSE(named.has_value());
  EXPECT_EQ(named.error().code, core::ErrorCode::kNotFound);
  EXPECT_EQ(LinkTarget(), Abs("1"));
}

TEST_F(ReleasesProviderTest, OnlyIncompleteOthersHaveNoRollbackTarget) {
  fs::remove_all(root_);
  Release("1", false, 0);
  Release("2", true, 2'000);
  PointCurrent(root_, Abs("2"));
  auto provider = Make();
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
  EXPECT_EQ(LinkTarget(), Abs("2"));
}

TEST_F(ReleasesProviderTest, ProviderRuleNeedsLiveRelease) {
  PointCurrent(root_, "3");
  auto provider = Make();
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("'3'"), std::string::npos) << plan.error().message;
}

// --- execution ---

TEST_F(ReleasesProviderTest, ExecuteSwitchesAndReadsBack) {
  auto provider = Make();
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.from_version, "3");
  EXPECT_EQ(result.live_version, "2");
  EXPECT_EQ(LinkTarget(), Abs("2"));
  EXPECT_TRUE(fs::exists(root_ / "releases/3")) << "a release was deleted";
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "current.tmp-job-1")));
  ASSERT_TRUE(result.started.has_value());
  EXPECT_EQ(result.started->tool["from_target"], Abs("3"));
}

TEST_F(ReleasesProviderTest, ExecuteCommitsIntentBeforeSwitching) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  std::string target_when_started;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction&) -> core::Result<void> {
    target_when_started = LinkTarget();
    return {};
  };
  auto result = provider->Execute(*plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(target_when_started, Abs("3"));
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack);
}

TEST_F(ReleasesProviderTest, FailedIntentRecordLeavesCurrentAlone) {
  auto provider = Make();
  auto [plan, started] = StartThenCrash(*provider, "2");
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, ExecuteRejectsAlteredPlan) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  plan->action["target_path"] = "/etc";
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, LiveMovedSincePlanFailsPrecondition) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  PointCurrent(root_, Abs("1"));
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed) << result->message;
  EXPECT_EQ(LinkTarget(), Abs("1"));
}

TEST_F(ReleasesProviderTest, TargetMarkerRemovedSincePlanFailsPrecondition) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  fs::remove(root_ / "releases/2" / kDefaultMarker);
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed) << result->message;
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, ExecuteRepairsRelativeLink) {
  PointCurrent(root_, "releases/3");
  auto provider = Make();
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(LinkTarget(), Abs("2"));
}

TEST_F(ReleasesProviderTest, RestartRunsAfterSwitchWithInputs) {
  fs::path seen = dir_.path() / "restart.out";
  std::string restart = command::testing::WriteScript(
      dir_.path(), "restart",
      "echo \"$BACKOUT_TARGET_VERSION $BACKOUT_RELEASE_PATH $(readlink '" +
          (root_ / "current").string() + "')\" >> '" + seen.string() + "'");
  auto provider = Make(Settings({{"restart", {restart}}}));
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(ReadText(seen), "2 " + Abs("2") + " " + Abs("2") + "\n");
}

TEST_F(ReleasesProviderTest, FailedRestartIsFailedWithLinkSwitched) {
  std::string restart =
      command::testing::WriteScript(dir_.path(), "restart", "echo 'unit not found' >&2; exit 5");
  auto provider = Make(Settings({{"restart", {restart}}}));
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("exit code 5"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("unit not found"), std::string::npos) << result.message;
  EXPECT_EQ(result.live_version, "2");
  EXPECT_EQ(LinkTarget(), Abs("2"));
}

TEST_F(ReleasesProviderTest, RestartTimeoutIsFailed) {
  std::string restart = command::testing::WriteScript(dir_.path(), "restart", "sleep 30");
  auto provider = Make(Settings({{"restart", {restart}}, {"restart_timeout", "200ms"}}));
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("timed out"), std::string::npos) << result.message;
}

// --- the release log ---

TEST_F(ReleasesProviderTest, ExecuteAppendsRollbackToRevisionLog) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at a1) deployed as release 1 by ci\n"
                                         << "Branch main (at b2) deployed as release 2 by ci\n"
                                         << "Branch main (at c3) deployed as release 3 by ci\n";
  auto provider = Make();
  ExecutionResult result = ExecuteTo(*provider, "2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.details["release_log_updated"], true);
  std::string log = ReadText(root_ / "revisions.log");
  EXPECT_TRUE(log.ends_with("sre-1 rolled back to release 2\n")) << log;

  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->details["release_log"]["in_sync"], true);
}

TEST_F(ReleasesProviderTest, LiveStateReportsLogOutOfSync) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at c3) deployed as release 3 by ci\n";
  PointCurrent(root_, Abs("2"));
  auto provider = Make();
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->details["release_log"]["in_sync"], false);
  EXPECT_EQ(live->details["release_log"]["last_logged_version"], "3");
}

// --- history ---

const HistoryEntry* FindEntry(const std::vector<HistoryEntry>& entries, std::string_view version,
                              HistoryKind kind) {
  for (const HistoryEntry& entry : entries) {
    if (entry.version == version && entry.kind == kind) return &entry;
  }
  return nullptr;
}

// Each marker is a deploy. `current` was replaced after release 3's marker appeared, which
// without revisions.log may also be a switch back to 3, so the link adds a deploy entry too.
TEST_F(ReleasesProviderTest, HistoryFromFoldersListsDeploys) {
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[0].version, "1");
  EXPECT_EQ((*history)[0].time, SecondsAfterEpoch(1'000));
  EXPECT_EQ((*history)[2].version, "3");
  EXPECT_EQ((*history)[2].details["source"], "release folder");
  for (const HistoryEntry& entry : *history) EXPECT_EQ(entry.kind, HistoryKind::kDeploy);
  EXPECT_EQ((*history)[3].version, "3");
  EXPECT_EQ((*history)[3].details["source"], "current link");
  EXPECT_EQ((*history)[3].details["discovered"], true);
  EXPECT_FALSE((*history)[3].details.contains("newer_release"));
}

TEST_F(ReleasesProviderTest, HistorySinceFiltersOlder) {
  auto provider = Make();
  auto history = provider->History(SecondsAfterEpoch(2'000));
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].version, "2");
  EXPECT_EQ((*history)[1].version, "3");
}

// The marker of the live release appeared after `current` was last replaced: the deploy wrote
// the link first, so the marker's deploy entry explains the link and it adds none.
TEST_F(ReleasesProviderTest, LinkOlderThanLiveMarkerAddsNoEntry) {
  const core::Time switched =
      ReleaseTree(root_, std::string(kDefaultMarker)).ReadCurrent().changed_at;
  const int64_t switched_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(switched.time_since_epoch()).count();
  Release("3", true, switched_seconds + 60);
  auto history = Make()->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 3u);
  for (const HistoryEntry& entry : *history) {
    EXPECT_EQ(entry.details.value("source", ""), "release folder") << entry.version;
  }
}

// `current` points at a release folder without its marker: a deploy that may not have finished,
// which Backout reports as a problem and never as a switch, whichever releases are newer.
TEST_F(ReleasesProviderTest, IncompleteLiveReleaseIsNoSwitch) {
  Release("4", false, 0);
  PointCurrent(root_, Abs("4"));
  auto provider = Make();

  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 3u);
  for (const HistoryEntry& entry : *history) {
    EXPECT_NE(entry.version, "4");
    EXPECT_EQ(entry.kind, HistoryKind::kDeploy);
    EXPECT_FALSE(entry.details.contains("discovered")) << entry.version;
  }

  auto inventory = provider->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "");
  EXPECT_NE(inventory->live_problem.find("release 4, which is incomplete"), std::string::npos)
      << inventory->live_problem;

  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_NE(live.error().message.find("incomplete"), std::string::npos) << live.error().message;
}

// A relative link that resolves to a folder without its marker is as untrusted as an absolute one.
TEST_F(ReleasesProviderTest, RelativeLinkToIncompleteReleaseIsNoSwitch) {
  Release("0", false, 0);
  PointCurrent(root_, "releases/0");
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  EXPECT_EQ(FindEntry(*history, "0", HistoryKind::kRollback), nullptr);
  EXPECT_EQ(FindEntry(*history, "0", HistoryKind::kDeploy), nullptr);
  auto inventory = provider->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "");
  EXPECT_NE(inventory->live_problem.find("incomplete"), std::string::npos);
}

// Once the marker appears with an older time than the release live before, the switch to it is
// a rollback like any hand switch back.
TEST_F(ReleasesProviderTest, ReleaseCompletedWhileLiveIsRollback) {
  Release("0", false, 0);
  PointCurrent(root_, Abs("0"));
  ASSERT_TRUE(Make()->History(core::Time{}).has_value());
  Release("0", true, 500);
  auto history = Make()->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  const HistoryEntry* rollback = FindEntry(*history, "0", HistoryKind::kRollback);
  ASSERT_NE(rollback, nullptr);
  EXPECT_EQ(rollback->details["newer_release"], "3");
}

// With the live release incomplete, the provider's rule still picks the newest complete release.
TEST_F(ReleasesProviderTest, ProviderRuleLeavesIncompleteLiveRelease) {
  Release("4", false, 0);
  PointCurrent(root_, Abs("4"));
  auto plan = Make()->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "3");
  EXPECT_FALSE(plan->noop);
}

TEST_F(ReleasesProviderTest, HandMadeSwitchIsDiscoveredRollback) {
  PointCurrent(root_, Abs("1"));
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  const HistoryEntry* rollback = FindEntry(*history, "1", HistoryKind::kRollback);
  ASSERT_NE(rollback, nullptr);
  EXPECT_EQ(rollback->details["discovered"], true);
  EXPECT_EQ(rollback->details["source"], "current link");
  EXPECT_GT(rollback->time, SecondsAfterEpoch(3'000));
}

TEST_F(ReleasesProviderTest, RelativeHandSwitchIsDiscoveredRollback) {
  PointCurrent(root_, "releases/1");
  auto history = Make()->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  const HistoryEntry* rollback = FindEntry(*history, "1", HistoryKind::kRollback);
  ASSERT_NE(rollback, nullptr);
  EXPECT_EQ(rollback->details["link_relative"], true);
  EXPECT_EQ(rollback->details["newer_release"], "3");
  EXPECT_NE(rollback->details.value("link_note", "").find("relative"), std::string::npos);
}

// current -> 2 was set before release 3 completed: 3 was deployed without being made live, so the
// switch to 2 is no rollback.
TEST_F(ReleasesProviderTest, ReleaseCompletedAfterSwitchMakesNoRollback) {
  PointCurrent(root_, Abs("2"));
  const core::Time switched =
      ReleaseTree(root_, std::string(kDefaultMarker)).ReadCurrent().changed_at;
  const int64_t switched_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(switched.time_since_epoch()).count();
  Release("3", true, switched_seconds + 60);
  auto history = Make()->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  EXPECT_EQ(FindEntry(*history, "2", HistoryKind::kRollback), nullptr);
  // The link, replaced after release 2's marker, is read as a deploy of 2.
  ASSERT_EQ(history->size(), 4u);
  int link_entries = 0;
  for (const HistoryEntry& entry : *history) {
    if (entry.details.value("source", "") != "current link") continue;
    ++link_entries;
    EXPECT_EQ(entry.version, "2");
    EXPECT_EQ(entry.kind, HistoryKind::kDeploy);
  }
  EXPECT_EQ(link_entries, 1);
}

TEST_F(ReleasesProviderTest, HistoryReadsRevisionLog) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at a1) deployed as release 1 by alice\n"
                                         << "Branch main (at b2) deployed as release 2 by alice\n"
                                         << "Branch main (at c3) deployed as release 3 by bob\n";
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[2].actor, "bob");
  EXPECT_EQ((*history)[2].details["revision"], "c3");
  EXPECT_EQ((*history)[2].time, SecondsAfterEpoch(3'000));
}

// The release log still names release 3 after someone pointed current at 2 by hand: the switch
// is reported as a discovered rollback, and the log as out of sync.
TEST_F(ReleasesProviderTest, LogOutOfSyncYieldsDiscoveredRollback) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at b2) deployed as release 2 by alice\n"
                                         << "Branch main (at c3) deployed as release 3 by bob\n";
  PointCurrent(root_, Abs("2"));
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  const HistoryEntry* rollback = FindEntry(*history, "2", HistoryKind::kRollback);
  ASSERT_NE(rollback, nullptr);
  EXPECT_EQ(rollback->details["log_out_of_sync"], true);
  EXPECT_EQ(rollback->details["last_logged_version"], "3");
}

TEST_F(ReleasesProviderTest, BackoutRollbackAppearsOnceInHistory) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at c3) deployed as release 3 by bob\n";
  auto provider = Make();
  ExecutionResult result = ExecuteTo(*provider, "2");
  ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack);
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  int rollbacks = 0;
  for (const HistoryEntry& entry : *history) {
    if (entry.kind == HistoryKind::kRollback) ++rollbacks;
  }
  EXPECT_EQ(rollbacks, 1);
  const HistoryEntry* rollback = FindEntry(*history, "2", HistoryKind::kRollback);
  ASSERT_NE(rollback, nullptr);
  EXPECT_EQ(rollback->actor, "sre-1");
  EXPECT_EQ(rollback->details["time_source"], "current link status change time");
}

// --- resuming after a crash ---

TEST_F(ReleasesProviderTest, ResumeAfterSwitchIsRolledBack) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  auto first = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->outcome, RollbackOutcome::kRolledBack);

  auto resumed = provider->Resume(ResumeRequest{*plan, "job-1", first->started}, Context());
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(resumed->live_version, "2");
  EXPECT_EQ(LinkTarget(), Abs("2"));
}

TEST_F(ReleasesProviderTest, ResumeRunsRestartAgainButNeverSwitches) {
  fs::path count = dir_.path() / "restarts";
  std::string restart =
      command::testing::WriteScript(dir_.path(), "restart", "echo x >> '" + count.string() + "'");
  auto provider = Make(Settings({{"restart", {restart}}}));
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  auto first = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->outcome, RollbackOutcome::kRolledBack);

  ResumeRequest request{*plan, "job-1", first->started};
  auto resumed = provider->Resume(request, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(ReadText(count), "x\nx\n");
  EXPECT_EQ(LinkTarget(), Abs("2"));
}

TEST_F(ReleasesProviderTest, ResumeDoesNotLogRollbackTwice) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at c3) deployed as release 3 by bob\n";
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  auto first = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(first.has_value());
  auto resumed = provider->Resume(ResumeRequest{*plan, "job-1", first->started}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(ReadText(root_ / "revisions.log"),
            "Branch main (at c3) deployed as release 3 by bob\n"
            "sre-1 rolled back to release 2\n");
}

TEST_F(ReleasesProviderTest, ResumeBeforeSwitchIsFailedAndUnchanged) {
  auto provider = Make();
  auto [plan, started] = StartThenCrash(*provider, "2");
  // The crash left the temporary link of a switch that never renamed it.
  fs::create_symlink(Abs("2"), root_ / "current.tmp-job-1");

  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", started}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kFailed) << resumed->message;
  EXPECT_NE(resumed->message.find("did not happen"), std::string::npos) << resumed->message;
  EXPECT_EQ(LinkTarget(), Abs("3"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "current.tmp-job-1")));
}

TEST_F(ReleasesProviderTest, ResumeAfterSwitchedBackIsInterrupted) {
  auto provider = Make();
  auto [plan, started] = StartThenCrash(*provider, "2");
  // Someone re-created the link to the same release after the job started.
  PointCurrent(root_, Abs("2"));
  PointCurrent(root_, Abs("3"));
  // Two links made within one clock tick can share a status change time, so the recorded time
  // is moved back to make the replacement visible.
  StartedAction earlier = started;
  earlier.tool["from_changed_at"] = "2000-01-01T00:00:00.000000Z";

  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", earlier}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kInterrupted) << resumed->message;
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, ResumeAfterOtherSwitchIsPreconditionFailed) {
  auto provider = Make();
  auto [plan, started] = StartThenCrash(*provider, "2");
  PointCurrent(root_, Abs("1"));
  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", started}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kPreconditionFailed) << resumed->message;
  EXPECT_EQ(LinkTarget(), Abs("1"));
}

TEST_F(ReleasesProviderTest, ResumeWithoutStartRecordIsFailed) {
  auto provider = Make();
  auto plan = provider->MakePlan("2");
  ASSERT_TRUE(plan.has_value());
  auto resumed = provider->Resume(ResumeRequest{*plan, "job-1", std::nullopt}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(resumed->message.find("never ran"), std::string::npos) << resumed->message;
  EXPECT_EQ(LinkTarget(), Abs("3"));
}

TEST_F(ReleasesProviderTest, ResumeWithBrokenLinkIsInterrupted) {
  auto provider = Make();
  auto [plan, started] = StartThenCrash(*provider, "2");
  PointCurrent(root_, "2");
  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", started}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kInterrupted) << resumed->message;
  EXPECT_NE(resumed->message.find("links to '2'"), std::string::npos) << resumed->message;
}

// --- readiness and read-back ---

TEST_F(ReleasesProviderTest, ReadinessWithoutChecksIsFailedPrecondition) {
  auto provider = Make();
  EXPECT_FALSE(provider->Capabilities().readiness);
  auto ready = provider->CheckReadiness();
  ASSERT_FALSE(ready.has_value());
  EXPECT_EQ(ready.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_F(ReleasesProviderTest, ReadinessRunsHealthCommand) {
  std::string health = command::testing::WriteScript(
      dir_.path(), "health", "test \"$BACKOUT_LIVE_VERSION\" = 3 && echo serving 3");
  auto provider = Make(Settings({{"health", {health}}}));
  auto ready = provider->CheckReadiness();
  ASSERT_TRUE(ready.has_value()) << ready.error().message;
  EXPECT_TRUE(ready->ready) << ready->message;
  EXPECT_NE(ready->message.find("serving 3"), std::string::npos) << ready->message;
}

TEST_F(ReleasesProviderTest, FailingHealthCommandIsNotReady) {
  std::string health = command::testing::WriteScript(dir_.path(), "health", "exit 1");
  auto provider = Make(Settings({{"health", {health}}}));
  auto ready = provider->CheckReadiness();
  ASSERT_TRUE(ready.has_value());
  EXPECT_FALSE(ready->ready);
  EXPECT_NE(ready->message.find("exit code 1"), std::string::npos) << ready->message;
}

TEST_F(ReleasesProviderTest, ReadinessRequestsHealthUrl) {
  http::testing::LocalServer server;
  int status = 200;
  server.server().Get("/healthz", [&](const httplib::Request&, httplib::Response& response) {
    response.status = status;
    response.set_content("ok", "text/plain");
  });
  ASSERT_TRUE(server.Start());
  auto provider = Make(Settings({{"health_url", server.Url("/healthz")}}));

  auto ready = provider->CheckReadiness();
  ASSERT_TRUE(ready.has_value()) << ready.error().message;
  EXPECT_TRUE(ready->ready) << ready->message;

  status = 503;
  auto not_ready = provider->CheckReadiness();
  ASSERT_TRUE(not_ready.has_value());
  EXPECT_FALSE(not_ready->ready);
  EXPECT_NE(not_ready->message.find("503"), std::string::npos) << not_ready->message;
}

TEST_F(ReleasesProviderTest, ReadinessFailsOnBrokenLink) {
  std::string health = command::testing::WriteScript(dir_.path(), "health", "exit 0");
  PointCurrent(root_, Abs("9"));
  auto provider = Make(Settings({{"health", {health}}}));
  auto ready = provider->CheckReadiness();
  ASSERT_TRUE(ready.has_value());
  EXPECT_FALSE(ready->ready);
  EXPECT_NE(ready->message.find("dangling"), std::string::npos) << ready->message;
}

TEST_F(ReleasesProviderTest, ReadBackReturnsLinkAndMarker) {
  auto provider = Make();
  ExecutionResult result = ExecuteTo(*provider, "2");
  auto record = provider->ReadBack(result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "2");
  EXPECT_EQ(record->details["link_target"], Abs("2"));
  EXPECT_EQ(record->details["resolved_path"], fs::canonical(Abs("2")).string());
  EXPECT_EQ(record->details["marker_contents"], "version=2\n");
  EXPECT_EQ(record->details["matches_target"], true);
  EXPECT_EQ(record->details["marker_time"], core::FormatTime(SecondsAfterEpoch(2'000)));
}

TEST_F(ReleasesProviderTest, ReadBackFailsOnDanglingRelativeLink) {
  auto provider = Make();
  PointCurrent(root_, "releases/9");
  auto record = provider->ReadBack(ExecutionResult{});
  ASSERT_FALSE(record.has_value());
  EXPECT_NE(record.error().message.find("'releases/9'"), std::string::npos);
}

// --- inventory ---

TEST_F(ReleasesProviderTest, InventoryListsFoldersAndLive) {
  Release("4", false, 0);
  auto provider = Make();
  EXPECT_TRUE(provider->Capabilities().inventory);
  auto inventory = provider->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "3");
  EXPECT_EQ(inventory->live_problem, "");
  ASSERT_EQ(inventory->items.size(), 4u);
  EXPECT_EQ(inventory->items[0].version, "4");  // incomplete releases come first
  EXPECT_FALSE(inventory->items[0].complete);
  EXPECT_FALSE(inventory->items[0].completed_at.has_value());
  EXPECT_EQ(inventory->items[1].version, "1");
  EXPECT_TRUE(inventory->items[1].complete);
  EXPECT_EQ(inventory->items[1].completed_at, SecondsAfterEpoch(1'000));
  EXPECT_EQ(inventory->items[3].version, "3");
}

TEST_F(ReleasesProviderTest, InventoryNamesBrokenLink) {
  PointCurrent(root_, "releases/9");
  auto inventory = Make()->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "");
  EXPECT_NE(inventory->live_problem.find("'releases/9'"), std::string::npos)
      << inventory->live_problem;
  EXPECT_EQ(inventory->items.size(), 3u);
}

TEST_F(ReleasesProviderTest, InventoryReadsRelativeLinkToRelease) {
  PointCurrent(root_, "releases/1");
  auto inventory = Make()->ReadInventory();
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->live_version, "1");
  EXPECT_EQ(inventory->live_problem, "");
}

TEST_F(ReleasesProviderTest, InventoryErrorNamesFolderOnce) {
  fs::remove_all(root_ / "releases");
  auto inventory = Make()->ReadInventory();
  ASSERT_FALSE(inventory.has_value());
  const std::string& message = inventory.error().message;
  EXPECT_NE(message.find("service checkout"), std::string::npos) << message;
  const size_t first = message.find("cannot list the release folders");
  ASSERT_NE(first, std::string::npos) << message;
  EXPECT_EQ(message.find("cannot list the release folders", first + 1), std::string::npos)
      << message;
}

}  // namespace
}  // namespace backout::providers::releases
