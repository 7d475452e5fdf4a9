// The LaunchDarkly provider against the LaunchDarkly emulator, which LaunchDarkly's own API client
// drives in tests/emulators/launchdarkly. Each group covers one kind of fault in rolling back a
// flag: what "off" really serves, prerequisites and a 0 % rollout that are not "off", clients
// that keep the old value for a while, approval-gated environments, and rejected, throttled,
// raced or lost API calls.

#include "providers/launchdarkly/launchdarkly_provider.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include <thread>

#include "emulators/launchdarkly/emulator.h"
#include "providers/registry.h"

namespace backout::providers::launchdarkly {
namespace {

using emulators::launchdarkly::ApiError;
using emulators::launchdarkly::Emulator;
using emulators::launchdarkly::InjectedFailure;
using nlohmann::json;

constexpr const char* kToken = "api-backout-service-token-7f3a";
constexpr const char* kHumanToken = "api-personal-token-of-dana-91c2";
constexpr const char* kPatchPath = "/api/v2/flags/default/checkout";

class SystemClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

// Flag `checkout` (variations: 0 = new, 1 = old) in production, on, serving the new variation by
// default. `production` replaces or adds fields of its production environment.
json State(json production = json::object(), json flags = json::array()) {
  json config{{"on", true}, {"offVariation", 1}, {"fallthrough", {{"variation", 0}}}};
  config.update(production);
  if (config.contains("offVariation") && config["offVariation"].is_null()) {
    config.erase("offVariation");
  }
  flags.push_back(
      {{"key", "checkout"},
       {"name", "Checkout redesign"},
       {"variations", {{{"value", true}, {"name", "new"}}, {{"value", false}, {"name", "old"}}}},
       {"environments", {{"production", config}}}});
  return json{{"tokens",
               {{{"token", kToken},
                 {"name", "backout-prod"},
                 {"member", {{"email", "svc-backout@example.com"}}}},
                {{"token", kHumanToken},
                 {"name", "dana-laptop"},
                 {"member", {{"email", "dana@example.com"}}}}}},
              {"flags", flags}};
}

class LaunchDarklyProviderTest : public ::testing::Test {
 protected:
  void StartWith(const json& state) {
    auto emulator = Emulator::Create(state);
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());
  }

  json Settings(json extra = json::object()) const {
    json settings{{"project", "default"},
                  {"environment", "production"},
                  {"flag", "checkout"},
                  {"base_url", emulator_->Url()},
                  {"credentials", {{"api_token", "env:LD_API_TOKEN"}}},
                  {"new_variation", "new"},
                  {"request_timeout", "2s"},
                  {"timeout", "20s"},
                  {"max_retry_wait", "5s"}};
    settings.update(extra);
    return settings;
  }

  std::unique_ptr<Provider> MakeProvider(json extra = json::object(), std::string token = kToken) {
    auto provider = Registry::Create("launchdarkly", "checkout-web", Settings(extra),
                                     SecretValues{{"api_token", std::move(token)}}, *clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  Plan PlanFor(Provider& provider, std::string_view target = "") {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    return plan.value_or(Plan{});
  }

  ExecutionResult Run(Provider& provider, const Plan& plan, std::string key = "job-1") {
    ExecutionContext context;
    context.incident_id = "INC-42";
    context.executor = "alice@example.com";
    context.approver = "lead@example.com";
    context.on_started = [this](const StartedAction& started) -> core::Result<void> {
      started_ = started;
      return {};
    };
    auto result = provider.Execute(plan, key, context);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.value_or(ExecutionResult{});
  }

  json Production() {
    return emulator_->Dump()["flags"]["default"]["checkout"]["environments"]["production"];
  }
  json AuditLog() { return emulator_->Dump()["auditLog"]; }

  // Changes the flag as a person would in LaunchDarkly, with their own token.
  void ChangeByHand(const std::string& kind) {
    httplib::Client client("127.0.0.1", emulator_->port());
    json body{{"environmentKey", "production"},
              {"comment", "hand change"},
              {"instructions", {{{"kind", kind}}}}};
    auto response =
        client.Patch(kPatchPath, httplib::Headers{{"Authorization", kHumanToken}}, body.dump(),
                     "application/json; domain-model=launchdarkly.semanticpatch");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
  }

  std::unique_ptr<core::Clock> clock_ = std::make_unique<SystemClock>();
  std::unique_ptr<Emulator> emulator_;
  std::optional<StartedAction> started_;
};

std::optional<Precondition> FindCheck(const std::vector<Precondition>& checks,
                                      std::string_view name) {
  for (const Precondition& check : checks) {
    if (check.name == name) return check;
  }
  return std::nullopt;
}

// ---- Kill switch, audit trail and read-back ---------------------------------------------------

TEST_F(LaunchDarklyProviderTest, TurnOffRollsBack) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.target_version, "off");
  EXPECT_EQ(plan.action["type"], "turn_off");

  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.from_version, "on");
  EXPECT_EQ(result.live_version, "off");
  EXPECT_FALSE(Production()["on"].get<bool>());
  ASSERT_TRUE(started_.has_value());
  EXPECT_EQ(started_->tool["marker"], "[backout key=job-1]");
  EXPECT_EQ(emulator_->CallCount("PATCH"), 1);
}

TEST_F(LaunchDarklyProviderTest, CommentNamesIncidentAndPeople) {
  StartWith(State());
  auto provider = MakeProvider();
  Run(*provider, PlanFor(*provider));

  json log = AuditLog();
  ASSERT_EQ(log.size(), 1u);
  std::string comment = log[0]["comment"];
  EXPECT_NE(comment.find("INC-42"), std::string::npos);
  EXPECT_NE(comment.find("executed by alice@example.com"), std::string::npos);
  EXPECT_NE(comment.find("approved by lead@example.com"), std::string::npos);
  EXPECT_NE(comment.find("[backout key=job-1]"), std::string::npos);
}

TEST_F(LaunchDarklyProviderTest, ReadBackIsAuditEntry) {
  StartWith(State());
  auto provider = MakeProvider();
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  auto record = provider->ReadBack(result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "off");
  EXPECT_EQ(record->details["audit_entry_id"], AuditLog()[0]["_id"]);
  EXPECT_EQ(record->details["changed_by"], "svc-backout@example.com");
  EXPECT_EQ(record->details["before"], "on");
  EXPECT_TRUE(record->details["matches_target"].get<bool>());
  EXPECT_EQ(record->time.time_since_epoch().count() / 1000, AuditLog()[0]["date"].get<int64_t>());
}

TEST_F(LaunchDarklyProviderTest, AlreadyOffIsNoop) {
  StartWith(State({{"on", false}}));
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  EXPECT_TRUE(plan.noop);
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 0);
}

TEST_F(LaunchDarklyProviderTest, JsonPatchFormatRollsBack) {
  StartWith(State());
  auto provider = MakeProvider({{"patch_format", "json_patch"}});
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_FALSE(Production()["on"].get<bool>());
  EXPECT_NE(AuditLog()[0]["comment"].get<std::string>().find("INC-42"), std::string::npos);
}

TEST_F(LaunchDarklyProviderTest, TokenNeverInTranscript) {
  StartWith(State());
  auto provider = MakeProvider();
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  std::string text = ToJson(result).dump();
  EXPECT_EQ(text.find(kToken), std::string::npos);
  EXPECT_NE(text.find("Authorization"), std::string::npos);
}

// ---- What "off" really serves -----------------------------------------------------------------

TEST_F(LaunchDarklyProviderTest, OffVariationShownBeforeKill) {
  StartWith(State());
  auto provider = MakeProvider();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value()) << checks.error().message;
  auto off = FindCheck(*checks, "what off serves");
  ASSERT_TRUE(off.has_value());
  EXPECT_TRUE(off->satisfied);
  EXPECT_NE(off->detail.find("'old' (false)"), std::string::npos) << off->detail;
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.action["off_serves"]["value"], false);
}

TEST_F(LaunchDarklyProviderTest, NoOffVariationWarnsOfFallback) {
  StartWith(State({{"offVariation", nullptr}}));
  auto provider = MakeProvider();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  auto off = FindCheck(*checks, "what off serves");
  ASSERT_TRUE(off.has_value());
  EXPECT_FALSE(off->satisfied);
  EXPECT_NE(off->detail.find("fallback value the application passes in code"), std::string::npos);

  // The approver saw the warning, so the kill still runs and its record repeats it.
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.action["type"], "turn_off");
  EXPECT_NE(plan.summary.find("may be the new behaviour"), std::string::npos);
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack);
  EXPECT_NE(result.message.find("fallback"), std::string::npos);
}

TEST_F(LaunchDarklyProviderTest, OffServingNewIsNoTarget) {
  StartWith(State({{"offVariation", 0}}));
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.action["type"], "no_rollback_target");
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kNoRollbackTarget);
  EXPECT_NE(result.message.find("new behaviour"), std::string::npos);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 0);
}

TEST_F(LaunchDarklyProviderTest, CodeFallbackEqualToNewIsNoTarget) {
  StartWith(State({{"offVariation", nullptr}}));
  auto provider = MakeProvider({{"sdk_fallback", "true"}});
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.action["type"], "no_rollback_target");
}

TEST_F(LaunchDarklyProviderTest, OffVariationChangedAfterApproval) {
  StartWith(State({{"offVariation", 1}}));
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);

  httplib::Client client("127.0.0.1", emulator_->port());
  json patch = json::array({{{"op", "remove"}, {"path", "/environments/production/offVariation"}}});
  auto response = client.Patch(kPatchPath, httplib::Headers{{"Authorization", kHumanToken}},
                               patch.dump(), "application/json");
  ASSERT_EQ(response->status, 200) << response->body;

  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kPreconditionFailed) << result.message;
  EXPECT_TRUE(Production()["on"].get<bool>());
  EXPECT_FALSE(started_.has_value());
}

// ---- Prerequisites and a 0 % rollout are not "off" --------------------------------------------

TEST_F(LaunchDarklyProviderTest, DependentFlagsInAssessment) {
  json upsell{{"key", "upsell"},
              {"variations", {{{"value", "banner"}}, {{"value", "none"}}}},
              {"environments",
               {{"production",
                 {{"on", true},
                  {"offVariation", 1},
                  {"prerequisites", {{{"key", "checkout"}, {"variation", 0}}}}}}}}};
  StartWith(State(json::object(), json::array({upsell})));
  auto provider = MakeProvider();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  auto dependents = FindCheck(*checks, "dependent flags");
  ASSERT_TRUE(dependents.has_value());
  EXPECT_NE(dependents->detail.find("upsell"), std::string::npos) << dependents->detail;
  EXPECT_NE(dependents->detail.find("\"none\""), std::string::npos) << dependents->detail;

  Plan plan = PlanFor(*provider);
  ASSERT_EQ(plan.action["dependent_flags"].size(), 1u);
  EXPECT_EQ(plan.action["dependent_flags"][0]["key"], "upsell");
  EXPECT_NE(plan.summary.find("1 dependent flag"), std::string::npos);
}

TEST_F(LaunchDarklyProviderTest, RolloutOnlyWhenBindingAsks) {
  StartWith(State());
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("rollout:0");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(LaunchDarklyProviderTest, RolloutToZeroClean) {
  json fallthrough{
      {"rollout",
       {{"variations",
         {{{"variation", 0}, {"weight", 30000}}, {{"variation", 1}, {"weight", 70000}}}}}}};
  StartWith(State({{"fallthrough", fallthrough}}));
  auto provider = MakeProvider({{"action", "rollout_to_zero"}});
  Plan plan = PlanFor(*provider);
  EXPECT_EQ(plan.target_version, "rollout:0");
  EXPECT_EQ(plan.action["from_version"], "rollout:30");

  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.live_version, "rollout:0");
  json weights = Production()["fallthrough"]["rollout"]["variations"];
  EXPECT_EQ(WeightOf(Production()["fallthrough"], 0), 0);
  EXPECT_EQ(WeightOf(Production()["fallthrough"], 1), 100000);
  EXPECT_TRUE(Production()["on"].get<bool>());
}

TEST_F(LaunchDarklyProviderTest, RolloutLeavingTargetsIsPartial) {
  StartWith(State({{"targets", {{{"variation", 0}, {"values", {"vip-1", "vip-2"}}}}}}));
  auto provider = MakeProvider({{"action", "rollout_to_zero"}});
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  auto rule_check = FindCheck(*checks, "new variation only in the default rule");
  ASSERT_TRUE(rule_check.has_value());
  EXPECT_FALSE(rule_check->satisfied);

  ExecutionResult result = Run(*provider, PlanFor(*provider));
  EXPECT_EQ(result.outcome, RollbackOutcome::kPartial) << result.message;
  EXPECT_NE(result.message.find("vip-1"), std::string::npos);
  EXPECT_EQ(Production()["fallthrough"]["variation"], 1);
}

TEST_F(LaunchDarklyProviderTest, RolloutLeavingRulesIsPartial) {
  json rules = json::array(
      {{{"description", "beta testers"}, {"variation", 0}, {"clauses", json::array()}}});
  StartWith(State({{"rules", rules}}));
  auto provider = MakeProvider({{"action", "rollout_to_zero"}});
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  EXPECT_EQ(result.outcome, RollbackOutcome::kPartial);
  EXPECT_NE(result.message.find("beta testers"), std::string::npos) << result.message;
}

TEST_F(LaunchDarklyProviderTest, KillStillOfferedToRolloutBinding) {
  StartWith(State({{"targets", {{{"variation", 0}, {"values", {"vip-1"}}}}}}));
  auto provider = MakeProvider({{"action", "rollout_to_zero"}});
  ExecutionResult result = Run(*provider, PlanFor(*provider, "off"));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_FALSE(Production()["on"].get<bool>());
}

// ---- Clients keep the old value for a while ---------------------------------------------------

TEST_F(LaunchDarklyProviderTest, ReadinessWaitsPropagationGrace) {
  StartWith(State());
  auto manual = std::make_unique<core::ManualClock>(SystemClock().Now());
  core::ManualClock& clock = *manual;
  clock_ = std::move(manual);
  auto provider = MakeProvider({{"propagation_grace", "30s"}});

  auto before = provider->CheckReadiness();
  ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(before->ready);

  ExecutionResult result = Run(*provider, PlanFor(*provider));
  ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack);
  EXPECT_TRUE(result.details.contains("accepted_at"));
  EXPECT_NE(result.message.find("cached value"), std::string::npos);

  auto settling = provider->CheckReadiness();
  ASSERT_TRUE(settling.has_value());
  EXPECT_FALSE(settling->ready);
  EXPECT_FALSE(settling->failed);
  EXPECT_NE(settling->message.find("propagation_grace"), std::string::npos);

  clock.Advance(std::chrono::seconds(31));
  auto settled = provider->CheckReadiness();
  ASSERT_TRUE(settled.has_value());
  EXPECT_TRUE(settled->ready) << settled->message;
}

TEST_F(LaunchDarklyProviderTest, ReadinessIsFlagStateNow) {
  StartWith(State());
  auto provider = MakeProvider();
  Run(*provider, PlanFor(*provider));
  ASSERT_TRUE(provider->CheckReadiness()->ready);

  // Someone turns it back on: the tool's own state wins over the earlier success.
  ChangeByHand("turnFlagOn");
  auto readiness = provider->CheckReadiness();
  ASSERT_TRUE(readiness.has_value());
  EXPECT_FALSE(readiness->ready);
  EXPECT_TRUE(readiness->failed);
}

// ---- Approval-gated environments --------------------------------------------------------------

TEST_F(LaunchDarklyProviderTest, ApprovalRequiredIsPending) {
  StartWith(State());
  ASSERT_TRUE(emulator_->SetApprovalRequired("default", "production", true).has_value());
  auto provider = MakeProvider();
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  EXPECT_EQ(result.outcome, RollbackOutcome::kPendingApproval);
  EXPECT_NE(result.message.find("Flag configuration updates require approval"), std::string::npos);
  EXPECT_TRUE(Production()["on"].get<bool>());
  EXPECT_EQ(AuditLog().size(), 0u);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 1);
}

// ---- Rejected, throttled, raced and lost calls -------------------------------------------------

TEST_F(LaunchDarklyProviderTest, WrongTokenFailsPlanning) {
  StartWith(State());
  auto provider = MakeProvider(json::object(), "api-revoked-token-0000");
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_EQ(plan.error().message.find("api-revoked-token-0000"), std::string::npos);
}

TEST_F(LaunchDarklyProviderTest, UnknownFlagIsNotFound) {
  StartWith(State());
  auto provider = MakeProvider({{"flag", "no-such-flag"}});
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
}

TEST_F(LaunchDarklyProviderTest, ForbiddenChangeFails) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", kPatchPath, ApiError{403, "forbidden", "Access denied"}, 1});
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("403"), std::string::npos);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 1);
}

TEST_F(LaunchDarklyProviderTest, ConflictIsRetried) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", kPatchPath, ApiError{409, "conflict", "concurrent update"}, 1});
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(emulator_->CallCount("PATCH"), 2);
  EXPECT_EQ(AuditLog().size(), 1u);
}

TEST_F(LaunchDarklyProviderTest, FailedVersionTestIsRetried) {
  StartWith(State());
  auto provider = MakeProvider({{"patch_format", "json_patch"}});
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(InjectedFailure{
      "PATCH", kPatchPath, ApiError{400, "patch_failed", "test operation failed"}, 1});
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(emulator_->CallCount("PATCH"), 2);
}

TEST_F(LaunchDarklyProviderTest, RateLimitHonoursRetryAfter) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", kPatchPath, ApiError{429, "rate_limited", "slow down", 1}, 1});
  auto begin = std::chrono::steady_clock::now();
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_GE(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(950));
  EXPECT_EQ(emulator_->CallCount("PATCH"), 2);
}

TEST_F(LaunchDarklyProviderTest, RateLimitTooLongFails) {
  StartWith(State());
  auto provider = MakeProvider({{"max_retry_wait", "2s"}});
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", kPatchPath, ApiError{429, "rate_limited", "slow down", 600}, 1});
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("600000 ms"), std::string::npos) << result.message;
  EXPECT_TRUE(Production()["on"].get<bool>());
}

TEST_F(LaunchDarklyProviderTest, PendingChangeConflictFails) {
  StartWith(State());
  ASSERT_TRUE(emulator_->SetPendingChange("default", "checkout", "production", true).has_value());
  auto provider = MakeProvider();
  ExecutionResult result = Run(*provider, PlanFor(*provider));
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("ignore_conflicts"), std::string::npos);

  auto forcing = MakeProvider({{"ignore_conflicts", true}});
  EXPECT_EQ(Run(*forcing, PlanFor(*forcing), "job-2").outcome, RollbackOutcome::kRolledBack);
}

TEST_F(LaunchDarklyProviderTest, LostResponseFoundInAuditLog) {
  StartWith(State());
  auto provider = MakeProvider({{"request_timeout", "300ms"}});
  Plan plan = PlanFor(*provider);
  emulator_->DelayNextPatches(std::chrono::milliseconds(1500), 1);
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_NE(result.message.find("response was lost"), std::string::npos);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 1);
  EXPECT_EQ(result.details["audit_entry_id"], AuditLog()[0]["_id"]);
}

TEST_F(LaunchDarklyProviderTest, ServerErrorNotAppliedIsResent) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", kPatchPath, ApiError{503, "service_unavailable", "try later"}, 1});
  ExecutionResult result = Run(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(emulator_->CallCount("PATCH"), 2);
  EXPECT_EQ(AuditLog().size(), 1u);
}

// ---- History and restarts ---------------------------------------------------------------------

TEST_F(LaunchDarklyProviderTest, HandTurnOffIsDiscoveredRollback) {
  StartWith(State());
  auto since = SystemClock().Now() - std::chrono::seconds(1);
  ChangeByHand("turnFlagOff");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ChangeByHand("turnFlagOn");

  auto provider = MakeProvider();
  auto history = provider->History(since);
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].kind, HistoryKind::kRollback);
  EXPECT_EQ((*history)[0].version, "off");
  EXPECT_EQ((*history)[0].actor, "dana@example.com");
  EXPECT_FALSE((*history)[0].details["made_by_backout"].get<bool>());
  EXPECT_EQ((*history)[1].kind, HistoryKind::kDeploy);
  EXPECT_EQ((*history)[1].version, "on");
}

TEST_F(LaunchDarklyProviderTest, HistoryMarksBackoutChanges) {
  StartWith(State());
  auto since = SystemClock().Now() - std::chrono::seconds(1);
  auto provider = MakeProvider();
  Run(*provider, PlanFor(*provider));
  auto history = provider->History(since);
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_TRUE((*history)[0].details["made_by_backout"].get<bool>());
  EXPECT_EQ((*history)[0].kind, HistoryKind::kRollback);
}

TEST_F(LaunchDarklyProviderTest, ResumeFindsLandedChange) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  Run(*provider, plan, "job-7");

  ResumeRequest request{plan, "job-7", started_};
  ExecutionContext context;
  context.incident_id = "INC-42";
  auto resumed = provider->Resume(request, context);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(resumed->details["audit_entry_id"], AuditLog()[0]["_id"]);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 1);
}

TEST_F(LaunchDarklyProviderTest, ResumeNeverResends) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = PlanFor(*provider);
  ResumeRequest request{plan, "job-8",
                        StartedAction{SystemClock().Now(), std::nullopt, json::object()}};
  ExecutionContext context;
  auto resumed = provider->Resume(request, context);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(resumed->message.find("never reached LaunchDarkly"), std::string::npos);
  EXPECT_EQ(emulator_->CallCount("PATCH"), 0);
}

}  // namespace
}  // namespace backout::providers::launchdarkly
