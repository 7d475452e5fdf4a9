#include "providers/command/command_provider.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "providers/command/test_scripts.h"
#include "support/temp_dir.h"

namespace backout::providers::command {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LaunchDetached;
using testing::ReadFile;
using testing::WaitForExit;
using testing::WaitForFile;
using testing::WriteScript;

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00Z"); }

// A folder with a runbook that writes its target into `state` and a status command that prints
// `state`, which is how most real runbooks and their version probes pair up.
class CommandProviderTest : public ::testing::Test {
 protected:
  CommandProviderTest() : clock_(T0()) {
    state_ = dir_.path() / "state";
    std::ofstream(state_) << "v2\n";
    rollback_ = WriteScript(dir_.path(), "rollback",
                            "echo \"rolling back to $BACKOUT_TARGET_VERSION\"\n"
                            "echo \"$BACKOUT_TARGET_VERSION\" > '" +
                                state_.string() + "'");
    status_ = WriteScript(dir_.path(), "status", "cat '" + state_.string() + "'");
  }

  json Settings(json extra = json::object()) const {
    json settings{{"kind", "command"},
                  {"run", {rollback_}},
                  {"status", {status_}},
                  {"output_dir", dir_.path().string()}};
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
    auto provider = CommandProvider::Create("checkout", settings, secrets, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  ExecutionContext Context() const {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "sre-1";
    context.approver = "lead-1";
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

  std::string CreateError(json settings, SecretValues secrets = {}) {
    auto provider = CommandProvider::Create("checkout", settings, secrets, clock_);
    EXPECT_FALSE(provider.has_value());
    return provider ? "" : provider.error().message;
  }

  backout::testing::TempDir dir_;
  core::ManualClock clock_;
  std::filesystem::path state_;
  std::string rollback_;
  std::string status_;
};

const TranscriptEntry* FindOutput(const ExecutionResult& result, std::string_view stream) {
  for (const TranscriptEntry& entry : result.transcript.entries) {
    if (entry.kind == TranscriptKind::kOutput && entry.data.value("stream", "") == stream) {
      return &entry;
    }
  }
  return nullptr;
}

// --- settings ---

TEST_F(CommandProviderTest, SettingsRequireRun) {
  std::string error = CreateError(Settings({{"run", nullptr}}));
  EXPECT_NE(error.find("service checkout"), std::string::npos) << error;
  EXPECT_NE(error.find("field 'run': missing"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, SettingsRejectRelativeProgram) {
  std::string error = CreateError(Settings({{"run", {"rollback.sh"}}}));
  EXPECT_NE(error.find("'rollback.sh' must be an absolute path"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, SettingsRejectUnknownField) {
  std::string error = CreateError(Settings({{"shell", true}}));
  EXPECT_NE(error.find("field 'shell': unknown field"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, SettingsRejectBadTimeout) {
  std::string error = CreateError(Settings({{"timeout", "soon"}}));
  EXPECT_NE(error.find("field 'timeout'"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, SettingsRejectReservedVariable) {
  std::string error =
      CreateError(Settings({{"env", {{"BACKOUT_X", "env:X"}}}}), {{"BACKOUT_X", "value"}});
  EXPECT_NE(error.find("prefix BACKOUT_"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, SettingsRejectUnresolvedSecret) {
  std::string error = CreateError(Settings({{"env", {{"TOKEN", "env:TOKEN"}}}}));
  EXPECT_NE(error.find("secret for 'TOKEN' was not resolved"), std::string::npos) << error;
}

TEST_F(CommandProviderTest, CapabilitiesFollowSettings) {
  auto full = Make(Settings({{"history", {status_}}}));
  EXPECT_TRUE(full->Capabilities().live_state);
  EXPECT_TRUE(full->Capabilities().history);
  EXPECT_TRUE(full->Capabilities().readiness);

  auto bare = Make(Settings({{"status", nullptr}}));
  EXPECT_FALSE(bare->Capabilities().live_state);
  EXPECT_FALSE(bare->Capabilities().history);
  EXPECT_FALSE(bare->Capabilities().readiness);
}

// --- plan ---

TEST_F(CommandProviderTest, PlanRecordsRunbookAndLiveVersion) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_FALSE(plan->noop);
  EXPECT_EQ(plan->action["type"], "run");
  EXPECT_EQ(plan->action["argv"], json::array({rollback_}));
  EXPECT_EQ(plan->action["from_version"], "v2");
  EXPECT_EQ(plan->action["env"]["BACKOUT_TARGET_VERSION"], "v1");
  EXPECT_EQ(plan->digest, PlanDigest(plan->action));
}

TEST_F(CommandProviderTest, PlanIsNoopWhenTargetLive) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("v2");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->noop);
  EXPECT_EQ(plan->action["type"], "noop");
}

TEST_F(CommandProviderTest, PlanRejectsEmptyTarget) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(plan.error().message.find("target version is empty"), std::string::npos);
}

TEST_F(CommandProviderTest, PlanDigestChangesWhenLiveVersionMoves) {
  auto provider = Make(Settings());
  auto before = provider->MakePlan("v1");
  std::ofstream(state_) << "v3\n";
  auto after = provider->MakePlan("v1");
  ASSERT_TRUE(before.has_value());
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(before->digest, after->digest);
}

TEST_F(CommandProviderTest, PlanFailsWhenStatusFails) {
  std::string broken = WriteScript(dir_.path(), "broken", "echo 'cannot reach API' >&2; exit 4");
  auto provider = Make(Settings({{"status", {broken}}}));
  auto plan = provider->MakePlan("v1");
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("cannot reach API"), std::string::npos)
      << plan.error().message;
}

// --- execute ---

TEST_F(CommandProviderTest, ExecuteRollsBackAndReadsBack) {
  auto provider = Make(Settings());
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.live_version, "v1");
  EXPECT_EQ(result.from_version, "v2");
  EXPECT_EQ(result.details["exit_code"], 0);
  const TranscriptEntry* out = FindOutput(result, "stdout");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->data["text"], "rolling back to v1\n");
}

TEST_F(CommandProviderTest, ExecutePassesInputsAsEnvironment) {
  auto seen = dir_.path() / "seen";
  std::string runbook = WriteScript(
      dir_.path(), "runbook",
      "for v in BACKOUT_SERVICE BACKOUT_TARGET_VERSION BACKOUT_INCIDENT_ID BACKOUT_EXECUTOR "
      "BACKOUT_APPROVER BACKOUT_IDEMPOTENCY_KEY; do eval \"echo $v=\\$$v\"; done > '" +
          seen.string() +
          "'\n"
          "printf '%s\\n' \"$@\" >> '" +
          seen.string() + "'");
  auto provider = Make(Settings({{"run", {runbook, "$(touch injected)", "; echo hi"}},
                                 {"status", nullptr},
                                 {"working_dir", dir_.path().string()}}));
  ExecutionResult result = ExecuteTo(*provider, "v1 && rm -rf /");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(ReadFile(seen),
            "BACKOUT_SERVICE=checkout\n"
            "BACKOUT_TARGET_VERSION=v1 && rm -rf /\n"
            "BACKOUT_INCIDENT_ID=INC-7\n"
            "BACKOUT_EXECUTOR=sre-1\n"
            "BACKOUT_APPROVER=lead-1\n"
            "BACKOUT_IDEMPOTENCY_KEY=job-1\n"
            "$(touch injected)\n"
            "; echo hi\n");
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "injected"));
}

TEST_F(CommandProviderTest, ExecuteWithoutStatusSaysNotReadBack) {
  auto provider = Make(Settings({{"status", nullptr}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack);
  EXPECT_NE(result.message.find("no status command: version not read back"), std::string::npos)
      << result.message;
  EXPECT_EQ(result.live_version, "");
}

TEST_F(CommandProviderTest, ExecuteDoesNotInheritServerEnvironment) {
  ::setenv("BACKOUT_PROVIDER_TEST_SERVER_SECRET", "server-only", 1);
  auto seen = dir_.path() / "env";
  std::string runbook = WriteScript(dir_.path(), "runbook", "env > '" + seen.string() + "'");
  auto provider = Make(Settings({{"run", {runbook}}, {"status", nullptr}}));
  ::unsetenv("BACKOUT_PROVIDER_TEST_SERVER_SECRET");
  ExecuteTo(*provider, "v1");
  std::string env = ReadFile(seen);
  EXPECT_EQ(env.find("server-only"), std::string::npos);
  EXPECT_NE(env.find("PATH="), std::string::npos);
}

TEST_F(CommandProviderTest, ExecuteNonZeroExitFailsWithStderr) {
  std::string runbook =
      WriteScript(dir_.path(), "runbook", "echo 'release v1 not found' >&2; exit 2");
  auto provider = Make(Settings({{"run", {runbook}}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("exit code 2"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("release v1 not found"), std::string::npos) << result.message;
}

TEST_F(CommandProviderTest, ExecuteFailsWhenStatusReadsOtherVersion) {
  std::string runbook = WriteScript(dir_.path(), "runbook", "exit 0");
  auto provider = Make(Settings({{"run", {runbook}}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_EQ(result.live_version, "v2");
  EXPECT_NE(result.message.find("status reads version v2, not the target v1"), std::string::npos)
      << result.message;
}

TEST_F(CommandProviderTest, ExecuteTimeoutKillsProcessGroup) {
  auto pid_file = dir_.path() / "grandchild.pid";
  std::string runbook = WriteScript(dir_.path(), "runbook",
                                    "sleep 60 & echo $! > '" + pid_file.string() + "'; sleep 60");
  auto provider = Make(Settings({{"run", {runbook}}, {"timeout", "300ms"}, {"kill_grace", "2s"}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_EQ(result.message, "timed out after 300ms; process group killed");
  EXPECT_EQ(result.details["timed_out"], true);

  int64_t grandchild = std::stoll(ReadFile(pid_file));
  auto stat = ReadProcessStat(grandchild);
  bool grandchild_gone =
      !stat || stat->state == 'Z' || stat->process_group != result.details["pid"];
  EXPECT_TRUE(grandchild_gone) << "grandchild sleep " << grandchild << " survived the timeout";
}

TEST_F(CommandProviderTest, ExecuteKeepsOutputBounded) {
  std::string runbook = WriteScript(
      dir_.path(), "runbook",
      "i=0; while [ $i -lt 20000 ]; do echo \"line $i of the runbook output\"; i=$((i+1)); done");
  auto provider = Make(Settings({{"run", {runbook}}, {"status", nullptr}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  const TranscriptEntry* out = FindOutput(result, "stdout");
  ASSERT_NE(out, nullptr);
  std::string text = out->data["text"];
  EXPECT_LE(text.size(), 64u * 1024u);
  EXPECT_GT(out->data["total_bytes"].get<uint64_t>(), 500'000u);
  EXPECT_EQ(out->data["truncated"], true);
  EXPECT_TRUE(text.starts_with("line ")) << text.substr(0, 40);
  EXPECT_TRUE(text.ends_with("line 19999 of the runbook output\n"));
}

TEST_F(CommandProviderTest, SecretValueNeverInTranscript) {
  const std::string canary = "canary-9f27c1-secret-value";
  auto received = dir_.path() / "received";
  std::string runbook = WriteScript(dir_.path(), "runbook",
                                    "echo \"$API_TOKEN\" > '" + received.string() +
                                        "'\n"
                                        "echo \"token is $API_TOKEN\"\n"
                                        "echo \"bad token $API_TOKEN\" >&2\n"
                                        "exit 1");
  auto provider = Make(Settings({{"run", {runbook}}, {"env", {{"API_TOKEN", "env:CANARY"}}}}),
                       {{"API_TOKEN", canary}});
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());

  EXPECT_EQ(ReadFile(received), canary + "\n");
  EXPECT_EQ(ToJson(*plan).dump().find(canary), std::string::npos);
  EXPECT_EQ(ToJson(*result).dump().find(canary), std::string::npos);
  EXPECT_NE(ToJson(result->transcript).dump().find("API_TOKEN"), std::string::npos);
  EXPECT_NE(result->message.find("[secret API_TOKEN]"), std::string::npos) << result->message;
}

TEST_F(CommandProviderTest, SecretCutByTailNeverInTranscript) {
  // The 64 KiB tail starts 4 bytes before the end of the secret.
  const std::string canary = "canary-secret-TAIL";
  std::string runbook = WriteScript(dir_.path(), "runbook",
                                    "echo \"$API_TOKEN\"\n"
                                    "head -c 65531 /dev/zero | tr '\\0' x");
  auto provider =
      Make(Settings({{"run", {runbook}}, {"status", nullptr}, {"env", {{"API_TOKEN", "env:T"}}}}),
           {{"API_TOKEN", canary}});
  ExecutionResult result = ExecuteTo(*provider, "v1");
  const TranscriptEntry* out = FindOutput(result, "stdout");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->data["total_bytes"], canary.size() + 1 + 65531);
  EXPECT_EQ(out->data["text"].get<std::string>().find("TAIL"), std::string::npos);
  EXPECT_EQ(out->data["text"].get<std::string>().size(), 65531u);
}

TEST_F(CommandProviderTest, LongMultibyteStderrStaysValidJson) {
  std::string runbook = WriteScript(
      dir_.path(), "runbook",
      "i=0; while [ $i -lt 500 ]; do printf '\\303\\251' >&2; i=$((i+1)); done; exit 1");
  auto provider = Make(Settings({{"run", {runbook}}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NO_THROW(ToJson(result).dump());
  EXPECT_NE(result.message.find("\xC3\xA9"), std::string::npos) << result.message;
}

TEST_F(CommandProviderTest, OnStartedRunsBeforeRunbook) {
  auto marker = dir_.path() / "ran";
  std::string runbook = WriteScript(dir_.path(), "runbook", "touch '" + marker.string() + "'");
  auto provider = Make(Settings({{"run", {runbook}}, {"status", nullptr}}));
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());

  std::optional<StartedAction> recorded;
  bool ran_before_record = true;
  ExecutionContext context = Context();
  context.on_started = [&](const StartedAction& started) -> core::Result<void> {
    ran_before_record = std::filesystem::exists(marker);
    recorded = started;
    return {};
  };
  auto result = provider->Execute(*plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(recorded.has_value());
  ASSERT_TRUE(recorded->process.has_value());
  EXPECT_FALSE(ran_before_record);
  EXPECT_EQ(recorded->process->pid, result->details["pid"]);
  EXPECT_EQ(recorded->started_at, T0());
  EXPECT_TRUE(result->started.has_value());
}

TEST_F(CommandProviderTest, OnStartedFailureRunsNothing) {
  auto marker = dir_.path() / "ran";
  std::string runbook = WriteScript(dir_.path(), "runbook", "touch '" + marker.string() + "'");
  auto provider = Make(Settings({{"run", {runbook}}}));
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  ExecutionContext context = Context();
  context.on_started = [](const StartedAction&) -> core::Result<void> {
    return core::MakeError(core::ErrorCode::kConflict, "lease lost");
  };
  auto result = provider->Execute(*plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("lease lost"), std::string::npos) << result->message;
  EXPECT_FALSE(result->started.has_value());
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(CommandProviderTest, NoopPlanRunsNothing) {
  auto marker = dir_.path() / "ran";
  std::string runbook = WriteScript(dir_.path(), "runbook", "touch '" + marker.string() + "'");
  auto provider = Make(Settings({{"run", {runbook}}}));
  ExecutionResult result = ExecuteTo(*provider, "v2");
  EXPECT_EQ(result.outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_EQ(result.live_version, "v2");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(CommandProviderTest, ExecuteRejectsAlteredPlan) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  plan->action["argv"] = json::array({"/bin/sh", "-c", "echo pwned"});
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("does not match its action"), std::string::npos);
}

TEST_F(CommandProviderTest, ExecuteRejectsOtherService) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  plan->service = "payments";
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(CommandProviderTest, ExecuteRejectsEmptyIdempotencyKey) {
  auto provider = Make(Settings());
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  auto result = provider->Execute(*plan, "", Context());
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("idempotency key is empty"), std::string::npos);
}

TEST_F(CommandProviderTest, ChangedRunbookIsPreconditionFailed) {
  auto old_provider = Make(Settings());
  auto plan = old_provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());
  auto new_provider = Make(Settings({{"run", {rollback_, "--force"}}}));
  auto result = new_provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed);
  EXPECT_EQ(ReadFile(state_), "v2\n");
}

TEST_F(CommandProviderTest, MissingRunbookFails) {
  auto provider = Make(Settings({{"run", {(dir_.path() / "absent").string()}}}));
  ExecutionResult result = ExecuteTo(*provider, "v1");
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("the runbook did not start"), std::string::npos) << result.message;
}

// --- live state, read-back, readiness, preconditions ---

TEST_F(CommandProviderTest, LiveStateReadsFirstLine) {
  std::ofstream(state_) << "  v9  \nextra\n";
  auto provider = Make(Settings());
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "v9");
  EXPECT_EQ(live->observed_at, T0());
}

TEST_F(CommandProviderTest, LiveStateWithoutStatusFails) {
  auto provider = Make(Settings({{"status", nullptr}}));
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_F(CommandProviderTest, LiveStateEmptyOutputFails) {
  std::string empty = WriteScript(dir_.path(), "empty", "exit 0");
  auto provider = Make(Settings({{"status", {empty}}}));
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_NE(live.error().message.find("printed no version"), std::string::npos);
}

TEST_F(CommandProviderTest, LiveStateRejectsHugeStatusOutput) {
  std::string chatty = WriteScript(dir_.path(), "chatty", "echo v1; head -c 100000 /dev/zero");
  auto provider = Make(Settings({{"status", {chatty}}}));
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_NE(live.error().message.find("print only the version"), std::string::npos)
      << live.error().message;
}

TEST_F(CommandProviderTest, ReadBackReturnsStatusVersion) {
  auto provider = Make(Settings());
  ExecutionResult result = ExecuteTo(*provider, "v1");
  auto record = provider->ReadBack(result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "v1");
  EXPECT_EQ(record->time, T0());
  EXPECT_EQ(record->details["matches_target"], true);
}

TEST_F(CommandProviderTest, ReadinessUsesReadinessCommand) {
  std::string ready = WriteScript(dir_.path(), "ready", "echo 'all 3 pods ready'");
  std::string not_ready = WriteScript(dir_.path(), "not_ready", "echo '1 of 3 ready' >&2; exit 1");

  auto yes = Make(Settings({{"readiness", {ready}}}))->CheckReadiness();
  ASSERT_TRUE(yes.has_value());
  EXPECT_TRUE(yes->ready);
  EXPECT_NE(yes->message.find("all 3 pods ready"), std::string::npos);

  auto no = Make(Settings({{"readiness", {not_ready}}}))->CheckReadiness();
  ASSERT_TRUE(no.has_value());
  EXPECT_FALSE(no->ready);
  EXPECT_NE(no->message.find("1 of 3 ready"), std::string::npos);
}

TEST_F(CommandProviderTest, ReadinessFallsBackToStatus) {
  auto ready = Make(Settings())->CheckReadiness();
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->ready);

  std::string broken = WriteScript(dir_.path(), "broken", "exit 3");
  auto not_ready = Make(Settings({{"status", {broken}}}))->CheckReadiness();
  ASSERT_TRUE(not_ready.has_value());
  EXPECT_FALSE(not_ready->ready);
}

TEST_F(CommandProviderTest, ReadinessWithoutCommandsCannotBeEvaluated) {
  auto readiness = Make(Settings({{"status", nullptr}}))->CheckReadiness();
  ASSERT_FALSE(readiness.has_value());
  EXPECT_EQ(readiness.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_F(CommandProviderTest, PreconditionsReportMissingProgram) {
  auto provider = Make(Settings({{"run", {(dir_.path() / "absent").string()}}}));
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  ASSERT_FALSE(checks->empty());
  EXPECT_EQ((*checks)[0].name, "run program executable");
  EXPECT_FALSE((*checks)[0].satisfied);
  bool live_ok = false;
  for (const Precondition& check : *checks) {
    if (check.name == "live version readable") live_ok = check.satisfied;
  }
  EXPECT_TRUE(live_ok);
}

// --- history ---

TEST_F(CommandProviderTest, HistoryParsesLines) {
  std::string history = WriteScript(
      dir_.path(), "history",
      "echo \"since=$BACKOUT_HISTORY_SINCE\" >&2\n"
      "echo '{\"version\":\"v1\",\"time\":\"2026-02-01T10:00:00Z\",\"actor\":\"ci\"}'\n"
      "echo ''\n"
      "echo '{\"version\":\"v3\",\"time\":\"2026-03-01T09:00:00Z\",\"actor\":\"ops\","
      "\"kind\":\"rollback\",\"ticket\":\"OPS-4\"}'\n"
      "echo '{\"version\":\"v2\",\"time\":\"2026-02-20T10:00:00Z\"}'\n"
      "echo '{\"version\":\"v0\",\"time\":\"2025-01-01T00:00:00Z\",\"actor\":\"old\"}'");
  auto provider = Make(Settings({{"history", {history}}}));
  auto entries = provider->History(*core::ParseTime("2026-01-01T00:00:00Z"));
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].version, "v1");
  EXPECT_EQ((*entries)[0].actor, "ci");
  EXPECT_EQ((*entries)[0].kind, HistoryKind::kDeploy);
  EXPECT_EQ((*entries)[1].version, "v2");
  EXPECT_EQ((*entries)[1].actor, "");
  EXPECT_EQ((*entries)[2].version, "v3");
  EXPECT_EQ((*entries)[2].kind, HistoryKind::kRollback);
  EXPECT_EQ((*entries)[2].details["ticket"], "OPS-4");
}

TEST_F(CommandProviderTest, HistoryMalformedLineNamesLine) {
  std::string history =
      WriteScript(dir_.path(), "history",
                  "echo '{\"version\":\"v1\",\"time\":\"2026-02-01T10:00:00Z\",\"actor\":\"ci\"}'\n"
                  "echo '{\"version\":\"v2\",\"time\":\"yesterday\"}'");
  auto provider = Make(Settings({{"history", {history}}}));
  auto entries = provider->History(T0() - std::chrono::hours(24 * 365));
  ASSERT_FALSE(entries.has_value());
  EXPECT_NE(entries.error().message.find("output line 2"), std::string::npos)
      << entries.error().message;
  EXPECT_NE(entries.error().message.find("yesterday"), std::string::npos)
      << entries.error().message;
}

TEST_F(CommandProviderTest, HistoryInvalidJsonNamesLine) {
  std::string history = WriteScript(dir_.path(), "history", "echo '{\"version\": \"v1\",'");
  auto provider = Make(Settings({{"history", {history}}}));
  auto entries = provider->History(T0());
  ASSERT_FALSE(entries.has_value());
  EXPECT_NE(entries.error().message.find("output line 1: not valid JSON"), std::string::npos)
      << entries.error().message;
}

TEST_F(CommandProviderTest, HistoryWithoutCommandFails) {
  auto provider = Make(Settings());
  auto entries = provider->History(T0());
  ASSERT_FALSE(entries.has_value());
  EXPECT_EQ(entries.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(entries.error().message.find("no history command"), std::string::npos);
}

// --- resume after a crash ---

class CommandResumeTest : public CommandProviderTest {
 protected:
  ResumeRequest RequestFor(const Provider& provider, std::string_view target,
                           std::optional<ProcessIdentity> process) {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    ResumeRequest request;
    if (plan) request.plan = *plan;
    request.idempotency_key = "job-1";
    if (process) request.started = StartedAction{clock_.Now(), *process, json::object()};
    return request;
  }

  // Identity of a process that has already ended.
  ProcessIdentity EndedProcess() {
    ProcessIdentity identity = LaunchDetached({"/bin/true"});
    EXPECT_TRUE(WaitForExit(identity, 5s));
    return identity;
  }
};

TEST_F(CommandResumeTest, WaitsForRunningRunbook) {
  std::string slow =
      WriteScript(dir_.path(), "slow", "sleep 0.5\necho v1 > '" + state_.string() + "'");
  auto provider = Make(Settings());
  ResumeRequest request = RequestFor(*provider, "v1", std::nullopt);
  ProcessIdentity runbook = LaunchDetached({slow});
  ASSERT_TRUE(IsRunning(runbook));
  request.started = StartedAction{clock_.Now(), runbook, json::object()};

  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_FALSE(IsRunning(runbook));
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(result->live_version, "v1");
  EXPECT_NE(result->message.find("adopted runbook ended"), std::string::npos) << result->message;
}

TEST_F(CommandResumeTest, EndedRunbookWithTargetLiveRolledBack) {
  auto provider = Make(Settings());
  ResumeRequest request = RequestFor(*provider, "v1", EndedProcess());
  std::ofstream(state_) << "v1\n";
  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
}

TEST_F(CommandResumeTest, EndedRunbookWithOtherVersionFailed) {
  auto provider = Make(Settings());
  ResumeRequest request = RequestFor(*provider, "v1", EndedProcess());
  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed) << result->message;
  EXPECT_EQ(result->live_version, "v2");
}

TEST_F(CommandResumeTest, WithoutStatusInterrupted) {
  auto marker = dir_.path() / "ran";
  std::string runbook = WriteScript(dir_.path(), "runbook", "touch '" + marker.string() + "'");
  auto provider = Make(Settings({{"run", {runbook}}, {"status", nullptr}}));
  ResumeRequest request = RequestFor(*provider, "v1", EndedProcess());
  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kInterrupted);
  EXPECT_NE(result->message.find("backout incident confirm"), std::string::npos) << result->message;
  EXPECT_FALSE(std::filesystem::exists(marker)) << "Resume ran the runbook again";
}

TEST_F(CommandResumeTest, ReusedPidIsTreatedAsEnded) {
  auto provider = Make(Settings());
  ProcessIdentity stranger = LaunchDetached({"/bin/sleep", "30"});
  ASSERT_TRUE(IsRunning(stranger));
  ResumeRequest request =
      RequestFor(*provider, "v1", ProcessIdentity{stranger.pid, stranger.start_ticks + 7});

  auto started = std::chrono::steady_clock::now();
  auto result = provider->Resume(request, Context());
  auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_LT(waited, 5s);
  EXPECT_TRUE(IsRunning(stranger)) << "Resume signalled a process that reused the PID";
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  ::kill(static_cast<pid_t>(stranger.pid), SIGKILL);
}

TEST_F(CommandResumeTest, AdoptedRunbookPastTimeoutIsKilled) {
  auto provider = Make(Settings({{"timeout", "1s"}, {"kill_grace", "1s"}}));
  ProcessIdentity runbook = LaunchDetached({"/bin/sleep", "30"});
  ResumeRequest request = RequestFor(*provider, "v1", runbook);
  clock_.Advance(std::chrono::seconds(5));
  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(WaitForExit(runbook, 2s));
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("timed out after 1s"), std::string::npos) << result->message;
}

TEST_F(CommandResumeTest, WithoutStartRecordFailsWithoutRunning) {
  auto provider = Make(Settings());
  ResumeRequest request = RequestFor(*provider, "v1", std::nullopt);
  auto result = provider->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("never ran"), std::string::npos) << result->message;
  EXPECT_EQ(ReadFile(state_), "v2\n");
}

// The crash case end to end: a "server" process executes the runbook and is killed with
// SIGKILL midway; a new provider resumes from the persisted start record.
TEST_F(CommandResumeTest, RunbookSurvivesServerKill) {
  auto lines = dir_.path() / "lines";
  auto record_file = dir_.path() / "started.json";
  std::string runbook = WriteScript(dir_.path(), "runbook",
                                    "echo line >> '" + lines.string() +
                                        "'\n"
                                        "sleep 1\n"
                                        "echo \"writing after the server died\"\n"
                                        "echo \"$BACKOUT_TARGET_VERSION\" > '" +
                                        state_.string() + "'");
  json settings = Settings({{"run", {runbook}}});
  auto provider = Make(settings);
  auto plan = provider->MakePlan("v1");
  ASSERT_TRUE(plan.has_value());

  pid_t server = ::fork();
  if (server == 0) {
    ExecutionContext context = Context();
    context.on_started = [&](const StartedAction& started) -> core::Result<void> {
      std::ofstream(record_file.string() + ".tmp") << ToJson(started).dump();
      std::filesystem::rename(record_file.string() + ".tmp", record_file);
      return {};
    };
    (void)provider->Execute(*plan, "job-1", context);
    ::_exit(0);
  }
  ASSERT_TRUE(WaitForFile(record_file, 10s));
  ASSERT_TRUE(WaitForFile(lines, 10s));
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);

  auto started = StartedActionFromJson(json::parse(ReadFile(record_file)));
  ASSERT_TRUE(started.has_value()) << started.error().message;
  ASSERT_TRUE(started->process.has_value());
  ASSERT_TRUE(IsRunning(*started->process)) << "the runbook died with the server";

  auto restarted = Make(settings);
  ResumeRequest request{*plan, "job-1", *started};
  auto result = restarted->Resume(request, Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(ReadFile(lines), "line\n");
  EXPECT_EQ(ReadFile(state_), "v1\n");
}

}  // namespace
}  // namespace backout::providers::command
