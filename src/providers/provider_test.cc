#include "providers/provider.h"

#include <gtest/gtest.h>

#include <string>

namespace backout::providers {
namespace {

using nlohmann::json;

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00.000250Z"); }

TEST(PlanDigestTest, IgnoresMemberOrder) {
  json a = json::parse(R"({"argv":["/x"],"target_version":"v1"})");
  json b = json::parse(R"({"target_version":"v1","argv":["/x"]})");
  EXPECT_EQ(PlanDigest(a), PlanDigest(b));
}

TEST(PlanDigestTest, ChangesWithContent) {
  EXPECT_NE(PlanDigest(json{{"target_version", "v1"}}), PlanDigest(json{{"target_version", "v2"}}));
}

TEST(PlanDigestTest, IsSha256OfCompactSortedJson) {
  // sha256 of the text {"a":1}
  EXPECT_EQ(PlanDigest(json{{"a", 1}}),
            "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
}

Plan SamplePlan() {
  Plan plan;
  plan.provider_kind = "command";
  plan.service = "checkout";
  plan.target_version = "v1";
  plan.action = json{{"type", "run"}, {"argv", {"/opt/rollback"}}};
  plan.digest = PlanDigest(plan.action);
  plan.summary = "run /opt/rollback";
  return plan;
}

TEST(PlanJsonTest, RoundTrips) {
  Plan plan = SamplePlan();
  auto parsed = PlanFromJson(ToJson(plan));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->service, "checkout");
  EXPECT_EQ(parsed->target_version, "v1");
  EXPECT_EQ(parsed->action, plan.action);
  EXPECT_EQ(parsed->digest, plan.digest);
  EXPECT_EQ(parsed->summary, plan.summary);
  EXPECT_FALSE(parsed->noop);
}

TEST(PlanJsonTest, MissingFieldIsNamed) {
  json stored = ToJson(SamplePlan());
  stored.erase("digest");
  auto parsed = PlanFromJson(stored);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().message, "invalid stored plan: field 'digest' is missing");
}

TEST(PlanJsonTest, WrongTypeIsNamed) {
  json stored = ToJson(SamplePlan());
  stored["noop"] = "no";
  auto parsed = PlanFromJson(stored);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("field 'noop' must be a boolean"), std::string::npos);
}

Plan TargetedPlan() {
  Plan plan = SamplePlan();
  plan.action["target_version"] = "v1";
  plan.digest = PlanDigest(plan.action);
  return plan;
}

TEST(CheckPlanOriginTest, AcceptsOwnPlan) {
  auto checked = CheckPlanOrigin(TargetedPlan(), "command", "checkout");
  EXPECT_TRUE(checked.has_value()) << checked.error().message;
}

TEST(CheckPlanOriginTest, RejectsOtherKind) {
  auto checked = CheckPlanOrigin(TargetedPlan(), "releases", "checkout");
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(checked.error().message.find("for provider command of service checkout"),
            std::string::npos)
      << checked.error().message;
  EXPECT_NE(checked.error().message.find("not for this releases provider"), std::string::npos);
}

TEST(CheckPlanOriginTest, RejectsOtherService) {
  auto checked = CheckPlanOrigin(TargetedPlan(), "command", "billing");
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message.find("service billing: the plan is for provider command of "
                                         "service checkout"),
            std::string::npos)
      << checked.error().message;
}

TEST(CheckPlanOriginTest, RejectsAlteredAction) {
  Plan plan = TargetedPlan();
  plan.action["argv"] = json::array({"/bin/other"});
  auto checked = CheckPlanOrigin(plan, "command", "checkout");
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message.find("digest " + plan.digest + " does not match its action"),
            std::string::npos)
      << checked.error().message;
  EXPECT_NE(checked.error().message.find(PlanDigest(plan.action)), std::string::npos);
}

TEST(CheckPlanOriginTest, RejectsTargetMismatch) {
  Plan plan = TargetedPlan();
  plan.target_version = "v9";
  auto checked = CheckPlanOrigin(plan, "command", "checkout");
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message.find("target v9 differs from its action's target v1"),
            std::string::npos)
      << checked.error().message;
}

TEST(CheckPlanOriginTest, IgnoresNullActionTarget) {
  Plan plan = SamplePlan();
  plan.action["target_version"] = nullptr;
  plan.digest = PlanDigest(plan.action);
  EXPECT_TRUE(CheckPlanOrigin(plan, "command", "checkout").has_value());
}

TEST(StartedActionJsonTest, RoundTripsProcess) {
  StartedAction started{T0(), ProcessIdentity{4242, 987654321}, json::object()};
  auto parsed = StartedActionFromJson(ToJson(started));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->started_at, T0());
  ASSERT_TRUE(parsed->process.has_value());
  EXPECT_EQ(parsed->process->pid, 4242);
  EXPECT_EQ(parsed->process->start_ticks, 987654321u);
}

TEST(StartedActionJsonTest, RoundTripsToolId) {
  StartedAction started{T0(), std::nullopt, json{{"deployment_id", "d-123"}}};
  auto parsed = StartedActionFromJson(ToJson(started));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_FALSE(parsed->process.has_value());
  EXPECT_EQ(parsed->tool["deployment_id"], "d-123");
}

TEST(ExecutionResultJsonTest, RoundTrips) {
  ExecutionResult result;
  result.outcome = RollbackOutcome::kInterrupted;
  result.message = "cannot tell";
  result.target_version = "v1";
  result.from_version = "v2";
  result.started_at = T0();
  result.finished_at = T0() + std::chrono::seconds(3);
  result.started = StartedAction{T0(), ProcessIdentity{7, 8}, json::object()};
  result.transcript.Add(T0(), TranscriptKind::kProcess, "started", json{{"pid", 7}});
  result.transcript.Add(T0(), TranscriptKind::kOutput, "stdout: 3 bytes", json{{"text", "ok\n"}});
  result.details = json{{"exit_code", 0}};

  auto parsed = ExecutionResultFromJson(ToJson(result));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->outcome, RollbackOutcome::kInterrupted);
  EXPECT_EQ(parsed->message, "cannot tell");
  EXPECT_EQ(parsed->from_version, "v2");
  EXPECT_EQ(parsed->finished_at, result.finished_at);
  ASSERT_TRUE(parsed->started.has_value());
  EXPECT_EQ(parsed->started->process->pid, 7);
  ASSERT_EQ(parsed->transcript.entries.size(), 2u);
  EXPECT_EQ(parsed->transcript.entries[1].kind, TranscriptKind::kOutput);
  EXPECT_EQ(parsed->transcript.entries[1].data["text"], "ok\n");
  EXPECT_EQ(parsed->details["exit_code"], 0);
  EXPECT_EQ(ToJson(*parsed), ToJson(result));
}

TEST(TranscriptJsonTest, UnknownKindRejected) {
  json stored =
      json::array({{{"time", "2026-03-01T12:00:00Z"}, {"kind", "telepathy"}, {"summary", "x"}}});
  auto parsed = TranscriptFromJson(stored);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("entry 0"), std::string::npos);
  EXPECT_NE(parsed.error().message.find("'telepathy'"), std::string::npos);
}

}  // namespace
}  // namespace backout::providers
