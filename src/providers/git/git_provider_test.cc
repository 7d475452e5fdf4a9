#include "providers/git/git_provider.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "http/test_server.h"
#include "providers/command/test_scripts.h"
#include "providers/git/test_git.h"
#include "support/temp_dir.h"

namespace backout::providers::git {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Git;
using testing::kAutomationManifest;
using testing::ValuesYaml;
using testing::WriteFile;

constexpr std::string_view kValuesPath = "apps/checkout/values.yaml";
constexpr std::string_view kAutomationPath = "clusters/prod/checkout-automation.yaml";

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00Z"); }

// A bare remote that refuses non-fast-forward pushes, and a clone in which the team deployed
// checkout v40, v41 and v42, one commit each.
class GitProviderTest : public ::testing::Test {
 protected:
  GitProviderTest() : clock_(T0()) {
    remote_ = dir_.path() / "remote.git";
    clone_ = dir_.path() / "clone";
    Git(dir_.path(), {"init", "--bare", "-b", "main", remote_.string()});
    Git(remote_, {"config", "receive.denyNonFastForwards", "true"});
    Git(dir_.path(), {"clone", remote_.string(), clone_.string()});
    Git(clone_, {"symbolic-ref", "HEAD", "refs/heads/main"});

    WriteFile(clone_ / kAutomationPath, std::string(kAutomationManifest));
    deploys_.push_back(Deploy("v40"));
    deploys_.push_back(Deploy("v41"));
    deploys_.push_back(Deploy("v42"));
  }

  // Commits `version` in the clone and pushes it; returns the commit id.
  std::string Deploy(const std::string& version,
                     const std::string& repository = "registry.example/checkout") {
    WriteFile(clone_ / kValuesPath, ValuesYaml(version, repository));
    Git(clone_, {"add", "-A"});
    Git(clone_, {"commit", "-q", "-m", "Deploy checkout " + version});
    Git(clone_, {"push", "-q", "origin", "main"});
    return Git(clone_, {"rev-parse", "HEAD"});
  }

  // Pushes an unrelated commit from the clone, as another team would.
  std::string PushUnrelated(const std::string& name) {
    Git(clone_, {"pull", "-q", "--ff-only", "origin", "main"});
    WriteFile(clone_ / "apps/other" / name, name + "\n");
    Git(clone_, {"add", "-A"});
    Git(clone_, {"commit", "-q", "-m", "Change " + name});
    Git(clone_, {"push", "-q", "origin", "main"});
    return Git(clone_, {"rev-parse", "HEAD"});
  }

  std::string RemoteHead() const { return Git(remote_, {"rev-parse", "main"}); }
  // The file on the remote's branch, with its final newline, which Git() trims, put back.
  std::string RemoteFile(std::string_view path) const {
    return Git(remote_, {"show", "main:" + std::string(path)}) + "\n";
  }
  int RemoteCommitsMentioning(const std::string& text) const {
    std::string ids =
        Git(remote_, {"log", "--format=%H", "--fixed-strings", "--grep", text, "main"});
    return ids.empty() ? 0 : static_cast<int>(std::count(ids.begin(), ids.end(), '\n') + 1);
  }

  json Settings(json extra = json::object()) const {
    json settings{{"kind", "git"},
                  {"repository", remote_.string()},
                  {"branch", "main"},
                  {"path", kValuesPath},
                  {"version_key", "image.tag"},
                  {"work_dir", (dir_.path() / "work").string()},
                  {"author_name", "Backout"},
                  {"author_email", "backout@example.com"}};
    for (const auto& [key, value] : extra.items()) {
      if (value.is_null()) {
        settings.erase(key);
      } else {
        settings[key] = value;
      }
    }
    return settings;
  }

  std::unique_ptr<Provider> Make(json settings, SecretValues secrets = {}) {
    auto provider = GitProvider::Create("checkout", settings, secrets, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }
  std::unique_ptr<Provider> Make() { return Make(Settings()); }

  std::string CreateError(json settings, SecretValues secrets = {}) {
    auto provider = GitProvider::Create("checkout", settings, secrets, clock_);
    EXPECT_FALSE(provider.has_value());
    return provider ? "" : provider.error().message;
  }

  ExecutionContext Context() const {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "sre-1";
    context.approver = "lead-1";
    return context;
  }

  Plan PlanTo(const Provider& provider, std::string_view target) {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    return plan ? *plan : Plan{};
  }

  backout::testing::TempDir dir_;
  core::ManualClock clock_;
  fs::path remote_;
  fs::path clone_;
  std::vector<std::string> deploys_;  // commit ids of v40, v41, v42
};

// --- libgit2 ---

// The binary does not link libgit2; GitRepository::Open loads it with dlopen.
TEST(Libgit2Test, LoadsAndResolvesFunctions) {
  auto loaded = LoadLibgit2();
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  auto again = LoadLibgit2();
  EXPECT_TRUE(again.has_value());
}

// --- settings ---

TEST_F(GitProviderTest, SettingsRequireRepository) {
  std::string error = CreateError(Settings({{"repository", nullptr}}));
  EXPECT_NE(error.find("field 'repository': missing"), std::string::npos) << error;
}

TEST_F(GitProviderTest, SettingsRequireOneVersionSource) {
  std::string both = CreateError(Settings({{"version_pattern", "tag: (.*)"}}));
  EXPECT_NE(both.find("exactly one of version_pattern"), std::string::npos) << both;
  std::string none = CreateError(Settings({{"version_key", nullptr}}));
  EXPECT_NE(none.find("exactly one of version_pattern"), std::string::npos) << none;
}

TEST_F(GitProviderTest, SettingsRequirePatternGroup) {
  std::string error =
      CreateError(Settings({{"version_key", nullptr}, {"version_pattern", "tag: \\S+"}}));
  EXPECT_NE(error.find("exactly one group"), std::string::npos) << error;
}

TEST_F(GitProviderTest, SettingsRejectPasswordInUrl) {
  std::string error =
      CreateError(Settings({{"repository", "https://bot:hunter2@git.example.com/prod.git"}}));
  EXPECT_NE(error.find("contains a password"), std::string::npos) << error;
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
}

TEST_F(GitProviderTest, SettingsRejectPathOutsideRepository) {
  std::string error = CreateError(Settings({{"path", "../secrets.yaml"}}));
  EXPECT_NE(error.find("field 'path'"), std::string::npos) << error;
}

TEST_F(GitProviderTest, SettingsRejectUnresolvedCredential) {
  std::string error = CreateError(Settings({{"credentials", {{"password", "env:GIT_TOKEN"}}}}));
  EXPECT_NE(error.find("field 'credentials'"), std::string::npos) << error;
}

TEST_F(GitProviderTest, SettingsAcceptResolvedCredentials) {
  auto provider = GitProvider::Create(
      "checkout",
      Settings({{"credentials", {{"username", "env:GIT_USER"}, {"password", "env:GIT_TOKEN"}}}}),
      SecretValues{{"username", "bot"}, {"password", "s3cret"}}, clock_);
  EXPECT_TRUE(provider.has_value()) << provider.error().message;
}

TEST_F(GitProviderTest, SettingsRejectUnknownField) {
  std::string error = CreateError(Settings({{"force", true}}));
  EXPECT_NE(error.find("field 'force': unknown field"), std::string::npos) << error;
}

// --- live state and plans ---

TEST_F(GitProviderTest, LiveStateReadsBranchHead) {
  auto provider = Make();
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "v42");
  EXPECT_EQ(live->details["commit"], deploys_[2]);
}

TEST_F(GitProviderTest, LiveStateWithPatternAndFileUrl) {
  auto provider = Make(Settings({{"repository", "file://" + remote_.string()},
                                 {"version_key", nullptr},
                                 {"version_pattern", R"(tag: ([A-Za-z0-9._-]+))"}}));
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "v42");
}

TEST_F(GitProviderTest, MissingBranchIsReported) {
  auto provider = Make(Settings({{"branch", "production"}}));
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(live.error().message.find("branch production not found"), std::string::npos);
}

TEST_F(GitProviderTest, PlanRevertsSuspectedCommit) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  EXPECT_FALSE(plan.noop);
  EXPECT_EQ(plan.action["from_version"], "v42");
  EXPECT_EQ(plan.action["suspect_commit"], deploys_[2]);
  EXPECT_EQ(plan.action["revert_commits"], json::array({deploys_[2]}));
  EXPECT_EQ(plan.action["changed_files"], json::array({kValuesPath}));
  EXPECT_EQ(plan.action["force_push"], false);
  EXPECT_EQ(plan.digest, PlanDigest(plan.action));
}

TEST_F(GitProviderTest, PlanTwoVersionsBackRevertsBoth) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v40");
  EXPECT_EQ(plan.action["revert_commits"], json::array({deploys_[2], deploys_[1]}));
}

TEST_F(GitProviderTest, EmptyTargetUsesVersionBeforeSuspect) {
  auto provider = Make();
  Plan by_rule = PlanTo(*provider, "");
  EXPECT_EQ(by_rule.target_version, "v41");
  Plan named = PlanTo(*provider, "v41");
  EXPECT_EQ(by_rule.digest, named.digest);
  EXPECT_NE(by_rule.summary.find("provider rule"), std::string::npos) << by_rule.summary;
}

TEST_F(GitProviderTest, PlanForLiveVersionIsNoop) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v42");
  EXPECT_TRUE(plan.noop);
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_EQ(RemoteHead(), deploys_[2]);
}

TEST_F(GitProviderTest, PlanRefusesUnknownVersion) {
  auto provider = Make();
  auto plan = provider->MakePlan("v39");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(plan.error().message.find("version v39 never appears"), std::string::npos)
      << plan.error().message;
}

TEST_F(GitProviderTest, OnlyOneVersionHasNoRollbackTarget) {
  fs::remove_all(dir_.path() / "solo.git");
  fs::path solo = dir_.path() / "solo.git";
  fs::path solo_clone = dir_.path() / "solo";
  Git(dir_.path(), {"init", "--bare", "-b", "main", solo.string()});
  Git(dir_.path(), {"clone", solo.string(), solo_clone.string()});
  Git(solo_clone, {"symbolic-ref", "HEAD", "refs/heads/main"});
  WriteFile(solo_clone / kValuesPath, ValuesYaml("v1"));
  Git(solo_clone, {"add", "-A"});
  Git(solo_clone, {"commit", "-q", "-m", "First deploy"});
  Git(solo_clone, {"push", "-q", "origin", "main"});

  auto provider = Make(Settings(
      {{"repository", solo.string()}, {"work_dir", (dir_.path() / "solo-work").string()}}));
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(plan.error().message.find("no rollback target"), std::string::npos)
      << plan.error().message;
}

TEST_F(GitProviderTest, ConflictingRevertNamesFiles) {
  // A later commit changed the line next to the tag, so the revert's context no longer matches.
  Deploy("v42", "registry.example/checkout-mirror");
  auto provider = Make();
  auto plan = provider->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("conflicts in apps/checkout/values.yaml"), std::string::npos)
      << plan.error().message;
}

// --- execution ---

TEST_F(GitProviderTest, ExecuteRevertsAndPushes) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(result->live_version, "v41");

  // The remote, as the git command shows it.
  std::string head = RemoteHead();
  EXPECT_EQ(result->details["commit"], head);
  EXPECT_EQ(Git(remote_, {"rev-parse", "main~1"}), deploys_[2]);
  EXPECT_EQ(RemoteFile(kValuesPath), ValuesYaml("v41"));
  std::string message = Git(remote_, {"log", "-1", "--format=%B", "main"});
  EXPECT_NE(message.find("Backout-Incident: INC-7"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-Path: apps/checkout/values.yaml"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-From-Version: v42"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-To-Version: v41"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-Approver: lead-1"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-Executor: sre-1"), std::string::npos) << message;
  EXPECT_NE(message.find(deploys_[2]), std::string::npos) << message;
  EXPECT_EQ(Git(remote_, {"log", "-1", "--format=%an <%ae>", "main"}),
            "Backout <backout@example.com>");
  ASSERT_TRUE(result->started.has_value());
  EXPECT_EQ(result->started->tool["commit"], head);
}

TEST_F(GitProviderTest, OnStartedRecordsCommitBeforePush) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  std::string head_when_started;
  std::string recorded;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction& started) -> core::Result<void> {
    head_when_started = RemoteHead();
    recorded = started.tool.value("commit", "");
    return {};
  };
  auto result = provider->Execute(plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(head_when_started, deploys_[2]);
  EXPECT_EQ(recorded, RemoteHead());
}

// Another commit lands between the plan and the push: the first push is rejected, and the
// remote ends with exactly one revert that names the incident and the approver.
TEST_F(GitProviderTest, CompetingCommitIsRetriedOnce) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  std::string competing;
  int starts = 0;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction&) -> core::Result<void> {
    if (++starts == 1) competing = PushUnrelated("queue.yaml");
    return {};
  };
  auto result = provider->Execute(plan, "job-1", context);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(starts, 2);

  EXPECT_EQ(Git(remote_, {"rev-parse", "main~1"}), competing);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident: INC-7"), 1);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Approver: lead-1"), 1);
  EXPECT_EQ(RemoteFile(kValuesPath), ValuesYaml("v41"));
  EXPECT_EQ(RemoteFile("apps/other/queue.yaml"), "queue.yaml\n");
  bool rejected = false;
  for (const TranscriptEntry& entry : result->transcript.entries) {
    if (entry.summary.find("rejected") != std::string::npos) rejected = true;
  }
  EXPECT_TRUE(rejected);
}

// Most remotes accept a non-fast-forward update when the client sends one, so the provider must
// never send one: the competing commit survives even without the remote's own check.
TEST_F(GitProviderTest, CompetingCommitSurvivesWithoutRemoteCheck) {
  Git(remote_, {"config", "receive.denyNonFastForwards", "false"});
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  std::string competing;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction&) -> core::Result<void> {
    if (competing.empty()) competing = PushUnrelated("queue.yaml");
    return {};
  };
  auto result = provider->Execute(plan, "job-1", context);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(Git(remote_, {"rev-parse", "main~1"}), competing);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident: INC-7"), 1);
}

TEST_F(GitProviderTest, RemoteThatKeepsMovingFailsAfterAttempts) {
  auto provider = Make(Settings({{"push_attempts", 2}}));
  Plan plan = PlanTo(*provider, "v41");
  int starts = 0;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction&) -> core::Result<void> {
    PushUnrelated("change-" + std::to_string(++starts));
    return {};
  };
  auto result = provider->Execute(plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("rejected the push 2 times"), std::string::npos)
      << result->message;
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident"), 0);
}

TEST_F(GitProviderTest, VersionChangedSincePlanFailsPrecondition) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  std::string v43 = Deploy("v43");
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed) << result->message;
  EXPECT_EQ(RemoteHead(), v43);
}

TEST_F(GitProviderTest, UnrelatedCommitKeepsPlanDigest) {
  auto provider = Make();
  Plan before = PlanTo(*provider, "v41");
  PushUnrelated("cache.yaml");
  Plan after = PlanTo(*provider, "v41");
  EXPECT_EQ(before.digest, after.digest);
}

// --- resuming after a crash ---

TEST_F(GitProviderTest, CrashBeforePushResumesWithSameCommit) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  StartedAction recorded;
  ExecutionContext crashing = Context();
  crashing.on_started = [&](const StartedAction& started) -> core::Result<void> {
    recorded = started;
    return core::MakeError(core::ErrorCode::kUnavailable, "server stopped");
  };
  auto crashed = provider->Execute(plan, "job-1", crashing);
  ASSERT_TRUE(crashed.has_value());
  EXPECT_EQ(crashed->outcome, RollbackOutcome::kFailed);
  EXPECT_EQ(RemoteHead(), deploys_[2]);
  std::string commit = recorded.tool.value("commit", "");
  ASSERT_FALSE(commit.empty());

  // A new provider, as after a restart, with the same work folder.
  auto restarted = Make();
  auto resumed = restarted->Resume(ResumeRequest{plan, "job-1", recorded}, Context());
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(RemoteHead(), commit);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident: INC-7"), 1);
}

TEST_F(GitProviderTest, ResumeAfterPushDoesNotPushAgain) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->outcome, RollbackOutcome::kRolledBack);
  std::string head = RemoteHead();

  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", result->started}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(RemoteHead(), head);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident: INC-7"), 1);
}

TEST_F(GitProviderTest, ResumeAfterBranchMovedMakesOneRevert) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  StartedAction recorded;
  ExecutionContext crashing = Context();
  crashing.on_started = [&](const StartedAction& started) -> core::Result<void> {
    recorded = started;
    return core::MakeError(core::ErrorCode::kUnavailable, "server stopped");
  };
  ASSERT_TRUE(provider->Execute(plan, "job-1", crashing).has_value());
  std::string competing = PushUnrelated("queue.yaml");

  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", recorded}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(Git(remote_, {"rev-parse", "main~1"}), competing);
  EXPECT_EQ(RemoteCommitsMentioning("Backout-Incident: INC-7"), 1);
}

TEST_F(GitProviderTest, ResumeWithoutRecordedCommitPushesNothing) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  auto resumed = provider->Resume(ResumeRequest{plan, "job-1", std::nullopt}, Context());
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(resumed->message.find("never pushed"), std::string::npos) << resumed->message;
  EXPECT_EQ(RemoteHead(), deploys_[2]);
}

// --- image automation undoing the revert ---

TEST_F(GitProviderTest, RevertSuspendsAutomationInSameCommit) {
  auto provider = Make(Settings({{"suspend_automation", {kAutomationPath}}}));
  Plan plan = PlanTo(*provider, "v41");
  EXPECT_EQ(plan.action["suspend_automation"], json::array({kAutomationPath}));
  EXPECT_EQ(plan.action["changed_files"], json::array({kValuesPath, kAutomationPath}));
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;

  EXPECT_EQ(Git(remote_, {"rev-parse", "main~1"}), deploys_[2]);
  std::string changed = Git(remote_, {"show", "--format=", "--name-only", "main"});
  EXPECT_EQ(changed, std::string(kValuesPath) + "\n" + std::string(kAutomationPath));
  std::string manifest = RemoteFile(kAutomationPath);
  EXPECT_NE(manifest.find("spec:\n  suspend: true\n  interval: 1m"), std::string::npos) << manifest;
  EXPECT_TRUE(IsSuspended(manifest));
}

TEST_F(GitProviderTest, AlreadySuspendedAutomationIsLeftAlone) {
  std::string suspended = *SuspendAutomation(kAutomationManifest);
  WriteFile(clone_ / kAutomationPath, suspended);
  Git(clone_, {"commit", "-q", "-am", "Suspend automation"});
  Git(clone_, {"push", "-q", "origin", "main"});
  auto provider = Make(Settings({{"suspend_automation", {kAutomationPath}}}));
  Plan plan = PlanTo(*provider, "v41");
  EXPECT_EQ(plan.action["suspend_automation"], json::array());
  EXPECT_EQ(plan.action["already_suspended"], json::array({kAutomationPath}));
}

TEST_F(GitProviderTest, MissingAutomationManifestRefusesPlan) {
  auto provider = Make(Settings({{"suspend_automation", {"clusters/prod/missing.yaml"}}}));
  auto plan = provider->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("clusters/prod/missing.yaml not found"), std::string::npos)
      << plan.error().message;
}

TEST_F(GitProviderTest, AutomationPushBackIsRevertedByController) {
  std::string health = command::testing::WriteScript(dir_.path(), "health", "exit 0");
  auto provider = Make(Settings({{"health", {health}}}));
  Plan plan = PlanTo(*provider, "v41");
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;

  // Image automation sets the newest tag again a minute later.
  Git(clone_, {"pull", "-q", "--ff-only", "origin", "main"});
  WriteFile(clone_ / kValuesPath, ValuesYaml("v42"));
  Git(clone_, {"-c", "user.name=fluxcdbot", "commit", "-q", "-am", "Update checkout to v42"});
  Git(clone_, {"push", "-q", "origin", "main"});
  std::string bot = Git(clone_, {"rev-parse", "HEAD"});

  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "v42");
  EXPECT_EQ(record->details["matches_target"], false);
  EXPECT_EQ(record->details["reverted_by_controller"]["commit"], bot);
  EXPECT_NE(
      record->details["reverted_by_controller"]["author"].get<std::string>().find("fluxcdbot"),
      std::string::npos);

  auto ready = provider->CheckReadiness();
  ASSERT_TRUE(ready.has_value()) << ready.error().message;
  EXPECT_FALSE(ready->ready);
  EXPECT_NE(ready->message.find("reverted by controller"), std::string::npos) << ready->message;
  EXPECT_NE(ready->message.find("fluxcdbot"), std::string::npos) << ready->message;
}

TEST_F(GitProviderTest, WatchSeesAutomationUndoRevert) {
  auto provider = Make(Settings({{"verify_for", "20s"}, {"verify_interval", "100ms"}}));
  Plan plan = PlanTo(*provider, "v41");

  // The "automation" waits for the revert on the remote, then pushes v42 back.
  std::atomic<bool> pushed_back{false};
  std::thread automation([&] {
    for (int i = 0; i < 400 && !pushed_back; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      if (Git(remote_, {"log", "-1", "--format=%B", "main"}).find("Backout-Incident") ==
          std::string::npos) {
        continue;
      }
      Git(clone_, {"pull", "-q", "--ff-only", "origin", "main"});
      WriteFile(clone_ / kValuesPath, ValuesYaml("v42"));
      Git(clone_, {"-c", "user.name=fluxcdbot", "commit", "-q", "-am", "Update checkout to v42"});
      Git(clone_, {"push", "-q", "origin", "main"});
      pushed_back = true;
    }
  });
  auto result = provider->Execute(plan, "job-1", Context());
  automation.join();
  ASSERT_TRUE(pushed_back);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kRevertedByController) << result->message;
  EXPECT_NE(result->message.find("fluxcdbot"), std::string::npos) << result->message;
  EXPECT_EQ(result->live_version, "v42");
}

// --- history ---

TEST_F(GitProviderTest, HistoryListsDeploys) {
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].version, "v40");
  EXPECT_EQ((*history)[2].version, "v42");
  EXPECT_EQ((*history)[2].actor, "Dev <dev@example.com>");
  EXPECT_EQ((*history)[2].details["commit"], deploys_[2]);
  for (const HistoryEntry& entry : *history) EXPECT_EQ(entry.kind, HistoryKind::kDeploy);
}

TEST_F(GitProviderTest, HandMadeRevertIsDiscoveredRollback) {
  Git(clone_, {"revert", "--no-edit", deploys_[2]});
  Git(clone_, {"push", "-q", "origin", "main"});
  auto provider = Make();
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->size(), 4u);
  const HistoryEntry& last = history->back();
  EXPECT_EQ(last.version, "v41");
  EXPECT_EQ(last.kind, HistoryKind::kRollback);
  EXPECT_EQ(last.details["discovered"], true);
  EXPECT_EQ(last.details["from_version"], "v42");
}

TEST_F(GitProviderTest, BackoutRevertIsRollbackNotDiscovered) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  ASSERT_TRUE(provider->Execute(plan, "job-1", Context()).has_value());
  auto history = provider->History(core::Time{});
  ASSERT_TRUE(history.has_value());
  const HistoryEntry& last = history->back();
  EXPECT_EQ(last.kind, HistoryKind::kRollback);
  EXPECT_EQ(last.details["by_backout"], true);
  EXPECT_EQ(last.details["incident"], "INC-7");
  EXPECT_FALSE(last.details.contains("discovered"));
}

// --- readiness and read-back ---

TEST_F(GitProviderTest, ReadinessWithoutChecksIsFailedPrecondition) {
  auto provider = Make();
  auto ready = provider->CheckReadiness();
  ASSERT_FALSE(ready.has_value());
  EXPECT_EQ(ready.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_F(GitProviderTest, ReadinessWaitsForControllerRevision) {
  http::testing::LocalServer server;
  std::string deployed = deploys_[1];
  server.server().Get("/app", [&](const httplib::Request&, httplib::Response& response) {
    json body{{"status", {{"sync", {{"revision", deployed}}}}}};
    response.set_content(body.dump(), "application/json");
  });
  ASSERT_TRUE(server.Start());
  auto provider = Make(Settings({{"controller_url", server.Url("/app")},
                                 {"controller_revision_pointer", "/status/sync/revision"}}));

  auto behind = provider->CheckReadiness();
  ASSERT_TRUE(behind.has_value()) << behind.error().message;
  EXPECT_FALSE(behind->ready);
  EXPECT_NE(behind->message.find("has not deployed"), std::string::npos) << behind->message;

  deployed = "main@sha1:" + deploys_[2];  // Flux's form
  auto synced = provider->CheckReadiness();
  ASSERT_TRUE(synced.has_value());
  EXPECT_TRUE(synced->ready) << synced->message;
}

TEST_F(GitProviderTest, ReadBackReturnsPushedCommit) {
  auto provider = Make();
  Plan plan = PlanTo(*provider, "v41");
  auto result = provider->Execute(plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "v41");
  EXPECT_EQ(record->details["commit"], RemoteHead());
  EXPECT_EQ(record->details["on_branch"], true);
  EXPECT_EQ(record->details["approver"], "lead-1");
  EXPECT_EQ(record->details["incident"], "INC-7");
  EXPECT_EQ(record->time, T0());
  EXPECT_TRUE(record->details["reverted_by_controller"].is_null());
}

}  // namespace
}  // namespace backout::providers::git
