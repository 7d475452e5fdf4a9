// The CodeDeploy provider against the CodeDeploy emulator, which the AWS CLI itself drives in
// tests/emulators/codedeploy. Each test covers one field case of rolling back with CodeDeploy:
// running versus finished deployments, no earlier good revision, CodeDeploy's own rollback
// already running, rollbacks that fail or half fail, and lost or rejected API responses.

#include "providers/codedeploy/codedeploy_provider.h"

#include <gtest/gtest.h>

#include <thread>

#include "emulators/codedeploy/emulator.h"
#include "providers/registry.h"

namespace backout::providers::codedeploy {
namespace {

using emulators::codedeploy::ApiError;
using emulators::codedeploy::Emulator;
using nlohmann::json;
using std::chrono::milliseconds;

class SystemClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

constexpr std::string_view kKeyId = "AKIAPROVIDERTEST0001";
constexpr std::string_view kSecret = "provider/test/secret/value";

json S3(const std::string& key) {
  return json{{"revisionType", "S3"},
              {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "zip"}}}};
}

std::string Version(const std::string& key) { return "s3://releases/" + key; }

double EpochAgo(std::chrono::minutes ago) {
  return std::chrono::duration<double>((std::chrono::system_clock::now() - ago).time_since_epoch())
      .count();
}

json Seeded(const std::string& id, const std::string& key, const std::string& status,
            std::chrono::minutes ago, json extra = json::object()) {
  json deployment{{"deploymentId", id},
                  {"applicationName", "shop"},
                  {"deploymentGroupName", "prod"},
                  {"revision", S3(key)},
                  {"status", status},
                  {"createTime", EpochAgo(ago)},
                  {"completeTime", EpochAgo(ago - std::chrono::minutes(1))}};
  deployment.update(extra);
  return deployment;
}

// Group shop/prod with three instances. v1 then v2 were deployed successfully, unless
// `deployments` gives others.
json State(json deployments = json::array(
               {Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90)),
                Seeded("d-SEEDV2000", "v2.zip", "Succeeded", std::chrono::minutes(60))}),
           std::string config = "CodeDeployDefault.OneAtATime", json auto_rollback = json()) {
  json group{{"applicationName", "shop"},
             {"deploymentGroupName", "prod"},
             {"deploymentConfigName", config},
             {"instances", {"i-1", "i-2", "i-3"}}};
  if (!auto_rollback.is_null()) group["autoRollbackConfiguration"] = auto_rollback;
  return json{
      {"credentials", {{{"accessKeyId", kKeyId}, {"secretAccessKey", kSecret}}}},
      {"applications", {"shop"}},
      {"deploymentGroups", {group}},
      {"timing", {{"queueMs", 10}, {"lifecycleEventMs", 10}}},
      {"listPageSize", 3},
      {"revisions",
       {{{"revision", S3("v1.zip")}}, {{"revision", S3("v2.zip")}}, {{"revision", S3("v3.zip")}}}},
      {"deployments", deployments}};
}

json FailureRollback() { return json{{"enabled", true}, {"events", {"DEPLOYMENT_FAILURE"}}}; }

class CodeDeployProviderTest : public ::testing::Test {
 protected:
  void StartWith(const json& state) {
    auto emulator = Emulator::Create(state);
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());
  }

  json Settings(json extra = json::object()) const {
    json settings{
        {"application", "shop"},
        {"deployment_group", "prod"},
        {"region", "us-east-1"},
        {"endpoint", emulator_->Url()},
        {"credentials",
         {{"access_key_id", "env:SHOP_AWS_KEY"}, {"secret_access_key", "env:SHOP_AWS_SECRET"}}},
        {"timeout", "20s"},
        {"poll_interval", "10ms"},
        {"max_poll_interval", "50ms"},
        {"request_timeout", "5s"}};
    settings.update(extra);
    return settings;
  }

  std::unique_ptr<Provider> MakeProvider(json extra = json::object(),
                                         std::string secret = std::string(kSecret)) {
    SecretValues secrets{{"access_key_id", std::string(kKeyId)},
                         {"secret_access_key", std::move(secret)}};
    auto provider = Registry::Create("codedeploy", "shop", Settings(extra), secrets, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  Plan MakePlanFor(Provider& provider, std::string_view target) {
    auto plan = provider.MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    return plan.value_or(Plan{});
  }

  ExecutionResult ExecutePlan(Provider& provider, const Plan& plan,
                              const std::string& key = "job-1") {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "dana";
    context.on_started = [this](const StartedAction& started) -> core::Result<void> {
      started_.push_back(started);
      return {};
    };
    auto result = provider.Execute(plan, key, context);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.value_or(ExecutionResult{});
  }

  // Creates a deployment through the API as a person would, stalled so it keeps running.
  std::string StartStalledDeployment(const std::string& key) {
    EXPECT_TRUE(emulator_->Stall(GroupRef()).has_value());
    http::Request request;
    request.method = http::Method::kPost;
    request.url = emulator_->Url() + "/";
    request.headers.Add("Content-Type", "application/x-amz-json-1.1");
    request.headers.Add("X-Amz-Target", "CodeDeploy_20141006.CreateDeployment");
    request.body =
        json{{"applicationName", "shop"}, {"deploymentGroupName", "prod"}, {"revision", S3(key)}}
            .dump();
    EXPECT_TRUE(http::SignRequest(
                    request, http::AwsCredentials{std::string(kKeyId), std::string(kSecret), ""},
                    http::SigV4Options{"us-east-1", "codedeploy"}, clock_.Now())
                    .has_value());
    auto client = http::Client::Create(http::ClientOptions{});
    auto response = (*client)->Send(request);
    EXPECT_TRUE(response.has_value());
    return json::parse(response->body).value("deploymentId", "");
  }

  static json GroupRef() {
    return json{{"applicationName", "shop"}, {"deploymentGroupName", "prod"}};
  }

  json DeploymentInState(const std::string& id) {
    json state = emulator_->Dump();
    for (const json& deployment : state["deployments"]) {
      if (deployment["deploymentId"] == id) return deployment;
    }
    return json();
  }

  int CodeDeployRollbacks() {
    int count = 0;
    json state = emulator_->Dump();
    for (const json& deployment : state["deployments"]) {
      if (deployment["creator"] == "codeDeployRollback") ++count;
    }
    return count;
  }

  SystemClock clock_;
  std::unique_ptr<Emulator> emulator_;
  std::vector<StartedAction> started_;
};

// ---- Reading ----------------------------------------------------------------------------------

TEST_F(CodeDeployProviderTest, LiveStateIsTheLatestDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, Version("v2.zip"));
  EXPECT_EQ(live->details["latest_deployment"]["deployment_id"], "d-SEEDV2000");
  EXPECT_EQ(live->details["last_successful_deployment"]["deployment_id"], "d-SEEDV2000");
  EXPECT_TRUE(live->details["active_deployments"].empty());
}

TEST_F(CodeDeployProviderTest, LiveStateShowsTheRunningDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  std::string running = StartStalledDeployment("v3.zip");
  auto live = provider->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, Version("v3.zip"));
  EXPECT_EQ(live->details["active_deployments"][0]["deployment_id"], running);
}

TEST_F(CodeDeployProviderTest, HistoryFollowsPagesAndMarksRollbacks) {
  json deployments =
      json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90)),
                   Seeded("d-SEEDV2000", "v2.zip", "Succeeded", std::chrono::minutes(80)),
                   Seeded("d-SEEDV3000", "v3.zip", "Failed", std::chrono::minutes(70),
                          {{"rollbackInfo", {{"rollbackDeploymentId", "d-AUTORB000"}}}}),
                   Seeded("d-AUTORB000", "v2.zip", "Succeeded", std::chrono::minutes(69),
                          {{"creator", "codeDeployRollback"},
                           {"rollbackInfo", {{"rollbackTriggeringDeploymentId", "d-SEEDV3000"}}}}),
                   Seeded("d-MANUAL100", "v1.zip", "Succeeded", std::chrono::minutes(50))});
  StartWith(State(deployments));
  auto provider = MakeProvider();
  auto history = provider->History(clock_.Now() - std::chrono::hours(2));
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 5u);  // five deployments over two ListDeployments pages
  EXPECT_EQ((*history)[0].details["deployment_id"], "d-SEEDV1000");
  EXPECT_EQ((*history)[0].kind, HistoryKind::kDeploy);
  EXPECT_EQ((*history)[3].actor, "codeDeployRollback");
  EXPECT_EQ((*history)[3].kind, HistoryKind::kRollback);
  EXPECT_EQ((*history)[4].details["deployment_id"], "d-MANUAL100");
  EXPECT_EQ((*history)[4].kind, HistoryKind::kRollback);
}

TEST_F(CodeDeployProviderTest, HistoryHonorsSince) {
  StartWith(State());
  auto provider = MakeProvider();
  auto history = provider->History(clock_.Now() - std::chrono::minutes(75));
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].version, Version("v2.zip"));
}

TEST_F(CodeDeployProviderTest, PreconditionsReportTheGroup) {
  StartWith(
      State(json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90)),
                         Seeded("d-SEEDV2000", "v2.zip", "Succeeded", std::chrono::minutes(60))}),
            "CodeDeployDefault.OneAtATime", FailureRollback()));
  auto provider = MakeProvider();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  ASSERT_EQ(checks->size(), 4u);
  EXPECT_TRUE((*checks)[0].satisfied) << (*checks)[0].detail;
  EXPECT_NE((*checks)[1].detail.find("DEPLOYMENT_FAILURE"), std::string::npos);
  EXPECT_TRUE((*checks)[3].satisfied);
  EXPECT_NE((*checks)[3].detail.find(Version("v1.zip")), std::string::npos);
}

TEST_F(CodeDeployProviderTest, WrongSecretFailsWithAClearError) {
  StartWith(State());
  auto provider = MakeProvider(json::object(), "not-the-secret");
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_NE(live.error().message.find("InvalidSignatureException"), std::string::npos);
  EXPECT_NE(live.error().message.find("check the credentials"), std::string::npos);
  EXPECT_EQ(live.error().message.find("not-the-secret"), std::string::npos);
}

TEST_F(CodeDeployProviderTest, UnknownGroupIsNotFound) {
  StartWith(State());
  auto provider = MakeProvider({{"deployment_group", "staging"}});
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(live.error().message.find("deployment_group"), std::string::npos);
}

// ---- R18: a finished deployment is rolled back by deploying the old revision again ------------

TEST_F(CodeDeployProviderTest, FinishedDeploymentPlansARedeploy) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  EXPECT_EQ(plan.action["type"], "redeploy");
  EXPECT_EQ(plan.target_version, Version("v1.zip"));
  EXPECT_EQ(plan.action["from_version"], Version("v2.zip"));
  EXPECT_EQ(plan.action["create"]["fileExistsBehavior"], "OVERWRITE");
  EXPECT_EQ(plan.digest, PlanDigest(plan.action));
}

TEST_F(CodeDeployProviderTest, PlanIsStableWhileNothingChanges) {
  StartWith(State());
  auto provider = MakeProvider();
  EXPECT_EQ(MakePlanFor(*provider, "").digest, MakePlanFor(*provider, "").digest);
}

// The rollback job plans again with the approved plan's target before it executes.
TEST_F(CodeDeployProviderTest, PlanForItsOwnTargetDigestsTheSame) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan by_rule = MakePlanFor(*provider, "");
  Plan by_target = MakePlanFor(*provider, by_rule.target_version);
  EXPECT_EQ(by_rule.digest, by_target.digest);
}

TEST_F(CodeDeployProviderTest, StopPlanForItsOwnTargetDigestsTheSame) {
  StartWith(State());
  auto provider = MakeProvider();
  StartStalledDeployment("v3.zip");
  Plan by_rule = MakePlanFor(*provider, "");
  Plan by_target = MakePlanFor(*provider, by_rule.target_version);
  EXPECT_EQ(by_rule.action["type"], "stop_and_rollback");
  EXPECT_EQ(by_rule.digest, by_target.digest);
}

TEST_F(CodeDeployProviderTest, RedeployRollsBack) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.live_version, Version("v1.zip"));
  ASSERT_EQ(started_.size(), 1u);
  std::string id = result.details.value("deployment_id", "");
  EXPECT_EQ(started_[0].tool["deployment_id"], id);

  json deployment = DeploymentInState(id);
  EXPECT_EQ(deployment["fileExistsBehavior"], "OVERWRITE");
  EXPECT_EQ(deployment["autoRollbackConfiguration"]["enabled"], false);
  EXPECT_NE(deployment["description"].get<std::string>().find("INC-7"), std::string::npos);
  EXPECT_NE(deployment["description"].get<std::string>().find(CodeDeployProvider::Marker("job-1")),
            std::string::npos);
}

TEST_F(CodeDeployProviderTest, ReadBackReturnsTheDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  auto record = provider->ReadBack(result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, Version("v1.zip"));
  EXPECT_EQ(record->details["deployment_id"], result.details["deployment_id"]);
  EXPECT_EQ(record->details["status"], "Succeeded");
  EXPECT_EQ(record->details["matches_target"], true);
  EXPECT_TRUE(record->details["deployment_info"].contains("completeTime"));
}

TEST_F(CodeDeployProviderTest, NamedTargetByDeploymentId) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "d-SEEDV1000");
  EXPECT_EQ(plan.target_version, Version("v1.zip"));
  EXPECT_NE(plan.summary.find("deployed by d-SEEDV1000"), std::string::npos) << plan.summary;
}

TEST_F(CodeDeployProviderTest, UnknownTargetIsNotFound) {
  StartWith(State());
  auto provider = MakeProvider();
  auto plan = provider->MakePlan(Version("v9.zip"));
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
}

TEST_F(CodeDeployProviderTest, LiveTargetIsANoop) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, Version("v2.zip"));
  EXPECT_TRUE(plan.noop);
  EXPECT_EQ(ExecutePlan(*provider, plan).outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 0);
}

// ---- R18: a running deployment is stopped, and CodeDeploy's own rollback followed ------------

TEST_F(CodeDeployProviderTest, RunningDeploymentPlansStopAndRollback) {
  StartWith(State());
  auto provider = MakeProvider();
  std::string running = StartStalledDeployment("v3.zip");
  Plan plan = MakePlanFor(*provider, "");
  EXPECT_EQ(plan.action["type"], "stop_and_rollback");
  EXPECT_EQ(plan.action["stop_deployment_id"], running);
  EXPECT_EQ(plan.target_version, Version("v2.zip"));
}

TEST_F(CodeDeployProviderTest, StopAndRollbackFollowsCodeDeploysRollback) {
  StartWith(State());
  auto provider = MakeProvider();
  std::string running = StartStalledDeployment("v3.zip");
  Plan plan = MakePlanFor(*provider, "");
  std::thread release([this] {
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());
  });
  ExecutionResult result = ExecutePlan(*provider, plan);
  release.join();

  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.details["stopped_deployment"]["deployment_id"], running);
  EXPECT_EQ(result.details["creator"], "codeDeployRollback");
  EXPECT_EQ(result.live_version, Version("v2.zip"));
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);  // only the test's own
}

TEST_F(CodeDeployProviderTest, OlderTargetStopsThenDeploys) {
  StartWith(State());
  auto provider = MakeProvider();
  StartStalledDeployment("v3.zip");
  Plan plan = MakePlanFor(*provider, Version("v1.zip"));
  EXPECT_EQ(plan.action["type"], "stop_then_deploy");
  ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());
  // The deployment now finishes by itself, so a fresh plan would differ. The approved plan
  // still works: its stop accepts an already completed deployment, then it deploys v1.
  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.live_version, Version("v1.zip"));
}

// ---- R20: no earlier successful revision --------------------------------------------------------

TEST_F(CodeDeployProviderTest, FirstDeploymentFailedHasNoTarget) {
  json deployments = json::array(
      {Seeded("d-FIRST0000", "v1.zip", "Failed", std::chrono::minutes(30),
              {{"rollbackInfo",
                {{"rollbackMessage", "No previous successful deployment to roll back to."}}}})});
  StartWith(State(deployments));
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  EXPECT_EQ(plan.action["type"], "no_rollback_target");
  EXPECT_NE(plan.summary.find("No previous successful deployment"), std::string::npos);

  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kNoRollbackTarget);
  EXPECT_NE(result.message.find("CodeDeploy says: No previous successful deployment"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 0);
}

TEST_F(CodeDeployProviderTest, StoppedWithoutEarlierSuccessReportsNoTarget) {
  StartWith(State(json::array()));
  auto provider = MakeProvider();
  std::string running = StartStalledDeployment("v1.zip");
  // The only revision is the running one, so CodeDeploy's rule finds nothing either.
  Plan plan = MakePlanFor(*provider, "");
  EXPECT_EQ(plan.action["type"], "no_rollback_target");
}

// ---- R21: CodeDeploy already rolls back by itself
// -------------------------------------------------

TEST_F(CodeDeployProviderTest, AttachesToCodeDeploysOwnRollback) {
  StartWith(
      State(json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90))}),
            "CodeDeployDefault.OneAtATime", FailureRollback()));
  auto provider = MakeProvider();
  ASSERT_TRUE(emulator_->InjectInstanceFailure({{"instanceId", "i-1"}}).has_value());
  std::string failing = StartStalledDeployment("v2.zip");
  ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());

  // Wait until the failure made CodeDeploy start its rollback, then hold that rollback.
  std::string rollback_id;
  for (int i = 0; i < 200 && rollback_id.empty(); ++i) {
    rollback_id = DeploymentInState(failing)
                      .value("rollbackInfo", json::object())
                      .value("rollbackDeploymentId", "");
    if (rollback_id.empty()) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_FALSE(rollback_id.empty());
  ASSERT_TRUE(emulator_->Stall({{"deploymentId", rollback_id}}).has_value());

  Plan plan = MakePlanFor(*provider, "");
  EXPECT_EQ(plan.action["type"], "attach");
  EXPECT_EQ(plan.action["attach_deployment_id"], rollback_id);
  ASSERT_TRUE(emulator_->Unstall({{"deploymentId", rollback_id}}).has_value());
  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(result.details["deployment_id"], rollback_id);
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);  // only the failing one
}

TEST_F(CodeDeployProviderTest, FinishedCodeDeployRollbackIsANoop) {
  json deployments = json::array(
      {Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90)),
       Seeded("d-SEEDV2000", "v2.zip", "Failed", std::chrono::minutes(60),
              {{"rollbackInfo", {{"rollbackDeploymentId", "d-AUTORB000"}}}}),
       Seeded("d-AUTORB000", "v1.zip", "Succeeded", std::chrono::minutes(59),
              {{"creator", "codeDeployRollback"},
               {"rollbackInfo", {{"rollbackTriggeringDeploymentId", "d-SEEDV2000"}}}})});
  StartWith(State(deployments));
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  EXPECT_TRUE(plan.noop);
  EXPECT_EQ(plan.target_version, Version("v1.zip"));
  EXPECT_NE(plan.summary.find("d-AUTORB000"), std::string::npos) << plan.summary;
}

// ---- R23: the rollback itself fails on some instances
// --------------------------------------------

TEST_F(CodeDeployProviderTest, LeftoverFilesFailARollbackThatDisallowsThem) {
  StartWith(
      State(json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90))}),
            "CodeDeployDefault.AllAtOnce"));
  ASSERT_TRUE(
      emulator_->InjectInstanceFailure({{"instanceId", "i-2"}, {"lifecycleEvent", "Install"}})
          .has_value());
  std::string bad = StartStalledDeployment("v2.zip");
  ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());
  auto provider = MakeProvider({{"file_exists_behavior", "DISALLOW"}});
  for (int i = 0; i < 200 && DeploymentInState(bad)["status"] != "Succeeded"; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }

  Plan plan = MakePlanFor(*provider, "");
  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kPartial) << result.message;
  EXPECT_NE(result.message.find("i-2 (Install failed"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("already exists"), std::string::npos) << result.message;
}

TEST_F(CodeDeployProviderTest, OverwriteGetsPastLeftoverFiles) {
  StartWith(
      State(json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90))}),
            "CodeDeployDefault.AllAtOnce"));
  ASSERT_TRUE(
      emulator_->InjectInstanceFailure({{"instanceId", "i-2"}, {"lifecycleEvent", "Install"}})
          .has_value());
  std::string bad = StartStalledDeployment("v2.zip");
  ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());
  auto provider = MakeProvider();  // OVERWRITE by default
  for (int i = 0; i < 200 && DeploymentInState(bad)["status"] != "Succeeded"; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
}

TEST_F(CodeDeployProviderTest, LastInstanceFailureIsPartial) {
  StartWith(State());
  ASSERT_TRUE(emulator_
                  ->InjectInstanceFailure({{"instanceId", "i-3"},
                                           {"lifecycleEvent", "ValidateService"},
                                           {"message", "health check returned 503"}})
                  .has_value());
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  // OneAtATime lets the deployment succeed when only the last instance fails.
  EXPECT_EQ(result.details["status"], "Succeeded");
  EXPECT_EQ(result.outcome, RollbackOutcome::kPartial) << result.message;
  EXPECT_NE(result.message.find("i-3 (ValidateService failed: health check returned 503)"),
            std::string::npos)
      << result.message;
}

TEST_F(CodeDeployProviderTest, BrokenApplicationStopFailsTheRollback) {
  StartWith(State());
  ASSERT_TRUE(
      emulator_->SetRevisionBehavior({{"revision", S3("v2.zip")}, {"brokenApplicationStop", true}})
          .has_value());
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed) << result.message;
  EXPECT_NE(result.message.find("ApplicationStop failed"), std::string::npos) << result.message;
}

TEST_F(CodeDeployProviderTest, IgnoreApplicationStopFailuresGetsPastIt) {
  StartWith(State());
  ASSERT_TRUE(
      emulator_->SetRevisionBehavior({{"revision", S3("v2.zip")}, {"brokenApplicationStop", true}})
          .has_value());
  auto provider = MakeProvider({{"ignore_application_stop_failures", true}});
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
}

// ---- R24: the old revision itself fails; reported, never hidden
// ----------------------------------

TEST_F(CodeDeployProviderTest, FailingOldRevisionIsReportedFailed) {
  StartWith(
      State(json::array({Seeded("d-SEEDV1000", "v1.zip", "Succeeded", std::chrono::minutes(90)),
                         Seeded("d-SEEDV2000", "v2.zip", "Succeeded", std::chrono::minutes(60))}),
            "CodeDeployDefault.AllAtOnce", FailureRollback()));
  ASSERT_TRUE(emulator_
                  ->SetRevisionBehavior({{"revision", S3("v1.zip")},
                                         {"failsAt", "ApplicationStart"},
                                         {"message", "secret DB_PASSWORD not found"}})
                  .has_value());
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed) << result.message;
  EXPECT_NE(result.message.find("HEALTH_CONSTRAINTS"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("secret DB_PASSWORD not found"), std::string::npos);
  EXPECT_EQ(result.details["instances"].size(), 3u);
  // The rollback deployment disabled CodeDeploy's automatic rollback, which would have put the
  // bad v2 back.
  EXPECT_EQ(CodeDeployRollbacks(), 0);
}

TEST_F(CodeDeployProviderTest, ReadinessReportsAFailedRollback) {
  StartWith(State());
  ASSERT_TRUE(
      emulator_->SetRevisionBehavior({{"revision", S3("v1.zip")}, {"failsAt", "ValidateService"}})
          .has_value());
  auto provider = MakeProvider();
  ExecutePlan(*provider, MakePlanFor(*provider, ""));
  auto readiness = provider->CheckReadiness();
  ASSERT_TRUE(readiness.has_value());
  EXPECT_FALSE(readiness->ready);
  EXPECT_TRUE(readiness->failed);
  EXPECT_NE(readiness->message.find("Failed"), std::string::npos) << readiness->message;
}

TEST_F(CodeDeployProviderTest, ReadinessAfterASuccessfulRollback) {
  StartWith(State());
  auto provider = MakeProvider();
  ExecutePlan(*provider, MakePlanFor(*provider, ""));
  auto readiness = provider->CheckReadiness();
  ASSERT_TRUE(readiness.has_value());
  EXPECT_TRUE(readiness->ready) << readiness->message;
}

// ---- CreateDeployment is never repeated blindly ------------------------------------------------

TEST_F(CodeDeployProviderTest, LostCreateAnswerIsFoundByDescription) {
  StartWith(State());
  emulator_->DelayNextResponses("CreateDeployment", milliseconds(1500), 1);
  auto provider = MakeProvider({{"request_timeout", "300ms"}});
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);
}

TEST_F(CodeDeployProviderTest, SameKeyDeploysOnce) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ExecutionResult first = ExecutePlan(*provider, plan, "job-9");
  ExecutionResult second = ExecutePlan(*provider, plan, "job-9");
  EXPECT_EQ(first.details["deployment_id"], second.details["deployment_id"]);
  EXPECT_EQ(second.details["adopted_earlier_attempt"], true);
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);
}

TEST_F(CodeDeployProviderTest, ThrottledCreateIsRetried) {
  StartWith(State());
  emulator_->FailNextCalls("CreateDeployment",
                           ApiError{400, "ThrottlingException", "Rate exceeded"}, 2);
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 3);
}

TEST_F(CodeDeployProviderTest, BusyGroupIsWaitedFor) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  // Someone starts a deployment after the plan; it finishes 300 ms later.
  StartStalledDeployment("v3.zip");
  std::thread release([this] {
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_TRUE(emulator_->Unstall(GroupRef()).has_value());
  });
  ExecutionResult result = ExecutePlan(*provider, plan);
  release.join();
  EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  EXPECT_GE(emulator_->CallCount("CreateDeployment"), 3);  // the test's, a rejected one, ours
}

TEST_F(CodeDeployProviderTest, RejectedCreateFailsWithTheReason) {
  StartWith(State());
  emulator_->FailNextCalls("CreateDeployment",
                           ApiError{400, "RevisionDoesNotExistException", "No revision found"}, 1);
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  EXPECT_EQ(result.outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result.message.find("RevisionDoesNotExistException"), std::string::npos)
      << result.message;
  EXPECT_TRUE(started_.empty());
}

TEST_F(CodeDeployProviderTest, UnrecordedStartStopsTheDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ExecutionContext context;
  context.incident_id = "INC-7";
  context.on_started = [](const StartedAction&) -> core::Result<void> {
    return core::MakeError(core::ErrorCode::kUnavailable, "database gone");
  };
  auto result = provider->Execute(plan, "job-3", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_EQ(emulator_->CallCount("StopDeployment"), 1);
}

TEST_F(CodeDeployProviderTest, DeadlineLeavesTheDeploymentInterrupted) {
  StartWith(State());
  auto provider = MakeProvider({{"timeout", "300ms"}});
  Plan plan = MakePlanFor(*provider, "");
  ASSERT_TRUE(emulator_->Stall(GroupRef()).has_value());
  ExecutionResult result = ExecutePlan(*provider, plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kInterrupted);
  EXPECT_NE(result.message.find("still running"), std::string::npos) << result.message;
  EXPECT_EQ(emulator_->CallCount("StopDeployment"), 0);
}

TEST_F(CodeDeployProviderTest, StopRequestStopsTheDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ASSERT_TRUE(emulator_->Stall(GroupRef()).has_value());
  std::stop_source stop;
  ExecutionContext context;
  context.incident_id = "INC-7";
  context.stop = stop.get_token();
  std::thread requester([&stop] {
    std::this_thread::sleep_for(milliseconds(200));
    stop.request_stop();
  });
  auto result = provider->Execute(plan, "job-8", context);
  requester.join();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_EQ(result->details["status"], "Stopped");
  EXPECT_EQ(result->details["stopped_on_request"], true);
}

// ---- Resume after a crash
// -------------------------------------------------------------------------

TEST_F(CodeDeployProviderTest, ResumeFollowsARecordedDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ExecutionResult first = ExecutePlan(*provider, plan, "job-4");
  ASSERT_EQ(started_.size(), 1u);

  auto resumed = provider->Resume(ResumeRequest{plan, "job-4", started_[0]}, ExecutionContext{});
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(resumed->details["deployment_id"], first.details["deployment_id"]);
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);
}

TEST_F(CodeDeployProviderTest, ResumeFindsAnUnrecordedDeployment) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  ExecutePlan(*provider, plan, "job-5");

  // The crash came after CreateDeployment and before its id was recorded.
  auto resumed = provider->Resume(ResumeRequest{plan, "job-5", std::nullopt}, ExecutionContext{});
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kRolledBack) << resumed->message;
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 1);
}

TEST_F(CodeDeployProviderTest, ResumeWithoutADeploymentNeverCreatesOne) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  auto resumed = provider->Resume(ResumeRequest{plan, "job-6", std::nullopt}, ExecutionContext{});
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(resumed->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(resumed->message.find("never started"), std::string::npos) << resumed->message;
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 0);
}

// ---- Plans and transcripts
// -------------------------------------------------------------------------

TEST_F(CodeDeployProviderTest, AlteredPlanIsRejected) {
  StartWith(State());
  auto provider = MakeProvider();
  Plan plan = MakePlanFor(*provider, "");
  plan.action["target_revision"] = S3("v3.zip");
  ExecutionContext context;
  auto result = provider->Execute(plan, "job-1", context);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(emulator_->CallCount("CreateDeployment"), 0);
}

TEST_F(CodeDeployProviderTest, TranscriptHidesTheSignature) {
  StartWith(State());
  auto provider = MakeProvider();
  ExecutionResult result = ExecutePlan(*provider, MakePlanFor(*provider, ""));
  std::string text = ToJson(result.transcript).dump();
  EXPECT_NE(text.find("CreateDeployment"), std::string::npos);
  EXPECT_NE(text.find("[REDACTED]"), std::string::npos);
  EXPECT_EQ(text.find("Signature="), std::string::npos);
  EXPECT_EQ(text.find(kSecret), std::string::npos);
}

TEST_F(CodeDeployProviderTest, RegistryListsCodeDeploy) {
  auto kinds = Registry::Kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "codedeploy"), kinds.end());
}

}  // namespace
}  // namespace backout::providers::codedeploy
