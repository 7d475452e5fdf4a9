#include "emulators/codedeploy/model.h"

#include <gtest/gtest.h>

namespace backout::emulators::codedeploy {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const Time kStart = std::chrono::sys_days(std::chrono::year(2026) / 1 / 1);
constexpr milliseconds kStep{10};

json S3Revision(const std::string& key) {
  return json{{"revisionType", "S3"},
              {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "zip"}}}};
}

double Epoch(Time time) { return EpochSeconds(time).get<double>(); }

// One application `shop` with group `prod` of `instances` instances, revisions v1 to v3
// registered, and `deployments` seeded.
json State(int instances, const std::string& config = "CodeDeployDefault.OneAtATime",
           json auto_rollback = json(), json deployments = json::array()) {
  json ids = json::array();
  for (int i = 1; i <= instances; ++i) ids.push_back("i-" + std::to_string(i));
  json group{{"applicationName", "shop"},
             {"deploymentGroupName", "prod"},
             {"deploymentConfigName", config},
             {"instances", ids}};
  if (!auto_rollback.is_null()) group["autoRollbackConfiguration"] = auto_rollback;
  return json{{"applications", {"shop"}},
              {"deploymentGroups", {group}},
              {"timing", {{"queueMs", kStep.count()}, {"lifecycleEventMs", kStep.count()}}},
              {"revisions",
               {{{"revision", S3Revision("v1.zip")}},
                {{"revision", S3Revision("v2.zip")}},
                {{"revision", S3Revision("v3.zip")}}}},
              {"deployments", deployments}};
}

json SucceededV1() {
  return json{{{"deploymentId", "d-SEEDED001"},
               {"applicationName", "shop"},
               {"deploymentGroupName", "prod"},
               {"revision", S3Revision("v1.zip")},
               {"status", "Succeeded"},
               {"createTime", Epoch(kStart - std::chrono::hours(1))}}};
}

json FailureRollback() { return json{{"enabled", true}, {"events", {"DEPLOYMENT_FAILURE"}}}; }

class ModelTest : public ::testing::Test {
 protected:
  void Load(const json& state) {
    auto model = Model::FromJson(state, kStart);
    ASSERT_TRUE(model.has_value()) << model.error();
    model_.emplace(std::move(*model));
  }

  json Call(const std::string& action, const json& input, Time at = kStart) {
    ApiResult result = model_->Call(action, input, at);
    EXPECT_TRUE(result.has_value())
        << action << ": " << result.error().type << ": " << result.error().message;
    return result.value_or(json());
  }

  ApiError CallError(const std::string& action, const json& input, Time at = kStart) {
    ApiResult result = model_->Call(action, input, at);
    EXPECT_FALSE(result.has_value()) << action << " succeeded: " << result.value_or(json()).dump();
    return result.has_value() ? ApiError{} : result.error();
  }

  std::string Create(const std::string& key, json extra = json::object(), Time at = kStart) {
    json input{{"applicationName", "shop"},
               {"deploymentGroupName", "prod"},
               {"revision", S3Revision(key)}};
    input.update(extra);
    return Call("CreateDeployment", input, at).value("deploymentId", "");
  }

  json Info(const std::string& id, Time at) {
    return Call("GetDeployment", {{"deploymentId", id}}, at)["deploymentInfo"];
  }

  json Target(const std::string& id, const std::string& instance, Time at) {
    return Call("BatchGetDeploymentTargets", {{"deploymentId", id}, {"targetIds", {instance}}},
                at)["deploymentTargets"][0]["instanceTarget"];
  }

  // Long enough for any deployment of these tests to finish.
  static Time Later() { return kStart + std::chrono::seconds(10); }

  std::optional<Model> model_;
};

TEST_F(ModelTest, DeploymentStartsCreated) {
  Load(State(2));
  std::string id = Create("v2.zip");
  EXPECT_EQ(Info(id, kStart)["status"], "Created");
}

TEST_F(ModelTest, DeploymentRunsEventsInTime) {
  Load(State(2));
  std::string id = Create("v2.zip");
  // Queue, then the first event on the first instance.
  EXPECT_EQ(Info(id, kStart + kStep + milliseconds(1))["status"], "InProgress");
  json target = Target(id, "i-1", kStart + kStep + milliseconds(1));
  EXPECT_EQ(target["status"], "InProgress");
}

TEST_F(ModelTest, OneAtATimeSucceedsOnEveryInstance) {
  Load(State(3, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  std::string id = Create("v2.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Succeeded");
  EXPECT_EQ(info["deploymentOverview"]["Succeeded"], 3);
  EXPECT_EQ(info["previousRevision"], S3Revision("v1.zip"));
}

TEST_F(ModelTest, ApplicationStopSkippedOnFirstDeployment) {
  Load(State(1));
  std::string id = Create("v1.zip");
  json events = Target(id, "i-1", Later())["lifecycleEvents"];
  EXPECT_EQ(events[0]["lifecycleEventName"], "ApplicationStop");
  EXPECT_EQ(events[0]["status"], "Skipped");
  EXPECT_EQ(events[1]["status"], "Succeeded");
}

TEST_F(ModelTest, GroupRecordsLastSuccessfulDeployment) {
  Load(State(2, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  std::string id = Create("v2.zip");
  json group =
      Call("GetDeploymentGroup", {{"applicationName", "shop"}, {"deploymentGroupName", "prod"}},
           Later())["deploymentGroupInfo"];
  EXPECT_EQ(group["lastSuccessfulDeployment"]["deploymentId"], id);
  EXPECT_EQ(group["lastAttemptedDeployment"]["deploymentId"], id);
  EXPECT_EQ(group["targetRevision"], S3Revision("v2.zip"));
}

TEST_F(ModelTest, OneAtATimeFailsOnEarlyInstance) {
  Load(State(3, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}}).has_value());
  std::string id = Create("v2.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Failed");
  EXPECT_EQ(info["errorInformation"]["code"], "HEALTH_CONSTRAINTS");
  EXPECT_EQ(info["deploymentOverview"]["Failed"], 1);
  EXPECT_EQ(info["deploymentOverview"]["Skipped"], 2);
}

TEST_F(ModelTest, OneAtATimeToleratesLastInstanceFailure) {
  Load(State(3, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-3"}}).has_value());
  std::string id = Create("v2.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Succeeded");
  EXPECT_EQ(info["deploymentOverview"]["Failed"], 1);
  EXPECT_EQ(Target(id, "i-3", Later())["status"], "Failed");
}

TEST_F(ModelTest, AllAtOnceSucceedsWithOneHealthyInstance) {
  Load(State(3, "CodeDeployDefault.AllAtOnce", json(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}}).has_value());
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-2"}}).has_value());
  std::string id = Create("v2.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Succeeded");
  EXPECT_EQ(info["deploymentOverview"]["Failed"], 2);
}

TEST_F(ModelTest, FailedEventCarriesScriptDiagnostics) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_
                  ->InjectInstanceFailure({{"instanceId", "i-1"},
                                           {"lifecycleEvent", "ValidateService"},
                                           {"message", "health check failed"}})
                  .has_value());
  std::string id = Create("v2.zip");
  json events = Target(id, "i-1", Later())["lifecycleEvents"];
  EXPECT_EQ(events[6]["status"], "Failed");
  EXPECT_EQ(events[6]["diagnostics"]["errorCode"], "ScriptFailed");
  EXPECT_EQ(events[6]["diagnostics"]["message"], "health check failed");
}

TEST_F(ModelTest, SecondDeploymentWhileRunningIsRejected) {
  Load(State(2));
  std::string first = Create("v1.zip");
  ApiError error = CallError("CreateDeployment", {{"applicationName", "shop"},
                                                  {"deploymentGroupName", "prod"},
                                                  {"revision", S3Revision("v2.zip")}});
  EXPECT_EQ(error.type, "DeploymentLimitExceededException");
  EXPECT_NE(error.message.find(first), std::string::npos);
}

TEST_F(ModelTest, UnknownRevisionIsRejected) {
  Load(State(1));
  ApiError error = CallError("CreateDeployment", {{"applicationName", "shop"},
                                                  {"deploymentGroupName", "prod"},
                                                  {"revision", S3Revision("missing.zip")}});
  EXPECT_EQ(error.type, "RevisionDoesNotExistException");
}

TEST_F(ModelTest, InvalidFileExistsBehaviorIsRejected) {
  Load(State(1));
  ApiError error = CallError("CreateDeployment", {{"applicationName", "shop"},
                                                  {"deploymentGroupName", "prod"},
                                                  {"revision", S3Revision("v1.zip")},
                                                  {"fileExistsBehavior", "REPLACE"}});
  EXPECT_EQ(error.type, "InvalidFileExistsBehaviorException");
}

TEST_F(ModelTest, UnknownGroupIsRejected) {
  Load(State(1));
  ApiError error =
      CallError("GetDeploymentGroup", {{"applicationName", "shop"}, {"deploymentGroupName", "x"}});
  EXPECT_EQ(error.type, "DeploymentGroupDoesNotExistException");
}

TEST_F(ModelTest, MalformedDeploymentIdIsRejected) {
  Load(State(1));
  EXPECT_EQ(CallError("GetDeployment", {{"deploymentId", "d-lower"}}).type,
            "InvalidDeploymentIdException");
  EXPECT_EQ(CallError("GetDeployment", {{"deploymentId", "d-ABCDEF123"}}).type,
            "DeploymentDoesNotExistException");
  EXPECT_EQ(CallError("GetDeployment", json::object()).type, "DeploymentIdRequiredException");
}

TEST_F(ModelTest, StopIsPendingThenStopped) {
  Load(State(3, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  std::string id = Create("v2.zip");
  json stop = Call("StopDeployment", {{"deploymentId", id}, {"autoRollbackEnabled", false}},
                   kStart + milliseconds(25));
  EXPECT_EQ(stop["status"], "Pending");
  EXPECT_EQ(Info(id, kStart + milliseconds(30))["status"], "InProgress");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Stopped");
  EXPECT_EQ(info["errorInformation"]["code"], "MANUAL_STOP");
  EXPECT_FALSE(info.contains("rollbackInfo"));
}

TEST_F(ModelTest, StopWithRollbackStartsARollbackDeployment) {
  Load(State(2, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  std::string id = Create("v2.zip");
  Call("StopDeployment", {{"deploymentId", id}, {"autoRollbackEnabled", true}},
       kStart + milliseconds(25));
  json info = Info(id, Later());
  ASSERT_TRUE(info.contains("rollbackInfo"));
  std::string rollback_id = info["rollbackInfo"].value("rollbackDeploymentId", "");
  ASSERT_FALSE(rollback_id.empty());

  json rollback = Info(rollback_id, Later());
  EXPECT_EQ(rollback["creator"], "codeDeployRollback");
  EXPECT_EQ(rollback["revision"], S3Revision("v1.zip"));
  EXPECT_EQ(rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"], id);
  EXPECT_EQ(rollback["status"], "Succeeded");
}

TEST_F(ModelTest, StopOfFinishedDeploymentIsRejected) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ApiError error =
      CallError("StopDeployment", {{"deploymentId", "d-SEEDED001"}, {"autoRollbackEnabled", true}});
  EXPECT_EQ(error.type, "DeploymentAlreadyCompletedException");
}

TEST_F(ModelTest, FailureRollsBackWhenConfigured) {
  Load(State(2, "CodeDeployDefault.OneAtATime", FailureRollback(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}}).has_value());
  std::string id = Create("v2.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Failed");
  std::string rollback_id = info["rollbackInfo"].value("rollbackDeploymentId", "");
  ASSERT_FALSE(rollback_id.empty());
  EXPECT_EQ(Info(rollback_id, Later())["creator"], "codeDeployRollback");
}

TEST_F(ModelTest, FailureWithoutEarlierSuccessExplainsNoRollback) {
  Load(State(1, "CodeDeployDefault.OneAtATime", FailureRollback()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}}).has_value());
  std::string id = Create("v1.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Failed");
  EXPECT_FALSE(info["rollbackInfo"].contains("rollbackDeploymentId"));
  EXPECT_NE(info["rollbackInfo"].value("rollbackMessage", "").find("no earlier successful"),
            std::string::npos);
}

TEST_F(ModelTest, LeftoverFilesFailTheNextInstall) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}, {"lifecycleEvent", "Install"}})
                  .has_value());
  std::string failed = Create("v2.zip");
  ASSERT_EQ(Info(failed, Later())["status"], "Failed");

  std::string redeploy = Create("v1.zip", json::object(), Later());
  Time end = Later() + std::chrono::seconds(10);
  EXPECT_EQ(Info(redeploy, end)["status"], "Failed");
  json install = Target(redeploy, "i-1", end)["lifecycleEvents"][3];
  EXPECT_NE(install["diagnostics"]["message"].get<std::string>().find("already exists"),
            std::string::npos);
}

TEST_F(ModelTest, OverwriteGetsPastLeftoverFiles) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_->InjectInstanceFailure({{"instanceId", "i-1"}, {"lifecycleEvent", "Install"}})
                  .has_value());
  std::string failed = Create("v2.zip");
  ASSERT_EQ(Info(failed, Later())["status"], "Failed");

  std::string redeploy = Create("v1.zip", {{"fileExistsBehavior", "OVERWRITE"}}, Later());
  EXPECT_EQ(Info(redeploy, Later() + std::chrono::seconds(10))["status"], "Succeeded");
}

TEST_F(ModelTest, BrokenApplicationStopFailsLaterDeployments) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_
                  ->SetRevisionBehavior(
                      {{"revision", S3Revision("v1.zip")}, {"brokenApplicationStop", true}})
                  .has_value());
  std::string id = Create("v2.zip");
  EXPECT_EQ(Info(id, Later())["status"], "Failed");
}

TEST_F(ModelTest, IgnoreApplicationStopFailuresGetsPastIt) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  ASSERT_TRUE(model_
                  ->SetRevisionBehavior(
                      {{"revision", S3Revision("v1.zip")}, {"brokenApplicationStop", true}})
                  .has_value());
  std::string id = Create("v2.zip", {{"ignoreApplicationStopFailures", true}});
  EXPECT_EQ(Info(id, Later())["status"], "Succeeded");
}

TEST_F(ModelTest, RevisionThatFailsEverywhere) {
  Load(State(2, "CodeDeployDefault.AllAtOnce", json(), SucceededV1()));
  ASSERT_TRUE(model_
                  ->SetRevisionBehavior({{"revision", S3Revision("v3.zip")},
                                         {"failsAt", "ApplicationStart"},
                                         {"message", "secret DB_PASSWORD not found"}})
                  .has_value());
  std::string id = Create("v3.zip");
  json info = Info(id, Later());
  EXPECT_EQ(info["status"], "Failed");
  EXPECT_EQ(info["deploymentOverview"]["Failed"], 2);
}

TEST_F(ModelTest, StallHoldsAndUnstallResumes) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  std::string id = Create("v2.zip");
  ASSERT_TRUE(model_->SetStalled({{"deploymentId", id}}, true, kStart).has_value());
  EXPECT_EQ(Info(id, Later())["status"], "Created");
  ASSERT_TRUE(model_->SetStalled({{"deploymentId", id}}, false, Later()).has_value());
  EXPECT_EQ(Info(id, Later() + std::chrono::seconds(10))["status"], "Succeeded");
}

TEST_F(ModelTest, ListDeploymentsPagesNewestFirst) {
  json state = State(1);
  state["listPageSize"] = 2;
  Load(state);
  std::vector<std::string> created;
  Time at = kStart;
  for (int i = 0; i < 5; ++i) {
    created.push_back(Create(i % 2 == 0 ? "v1.zip" : "v2.zip", json::object(), at));
    at += std::chrono::seconds(10);
  }

  std::vector<std::string> listed;
  json input{{"applicationName", "shop"}, {"deploymentGroupName", "prod"}};
  for (int page = 0; page < 10; ++page) {
    json output = Call("ListDeployments", input, at);
    EXPECT_LE(output["deployments"].size(), 2u);
    for (const json& id : output["deployments"]) listed.push_back(id);
    if (!output.contains("nextToken")) break;
    input["nextToken"] = output["nextToken"];
  }
  std::vector<std::string> newest_first(created.rbegin(), created.rend());
  EXPECT_EQ(listed, newest_first);
}

TEST_F(ModelTest, ListDeploymentsFiltersByStatus) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  Create("v2.zip");
  json output = Call("ListDeployments", {{"applicationName", "shop"},
                                         {"deploymentGroupName", "prod"},
                                         {"includeOnlyStatuses", {"Created", "InProgress"}}});
  EXPECT_EQ(output["deployments"].size(), 1u);
}

TEST_F(ModelTest, ListDeploymentsRejectsABadToken) {
  Load(State(1));
  EXPECT_EQ(CallError("ListDeployments", {{"nextToken", "garbage"}}).type,
            "InvalidNextTokenException");
}

TEST_F(ModelTest, ListDeploymentsNeedsBothNames) {
  Load(State(1));
  EXPECT_EQ(CallError("ListDeployments", {{"applicationName", "shop"}}).type,
            "DeploymentGroupNameRequiredException");
}

TEST_F(ModelTest, BatchGetDeploymentsSkipsUnknownIds) {
  Load(State(1, "CodeDeployDefault.OneAtATime", json(), SucceededV1()));
  json output = Call("BatchGetDeployments", {{"deploymentIds", {"d-SEEDED001", "d-ABCDEF123"}}});
  ASSERT_EQ(output["deploymentsInfo"].size(), 1u);
  EXPECT_EQ(output["deploymentsInfo"][0]["deploymentId"], "d-SEEDED001");
}

TEST_F(ModelTest, BatchGetDeploymentsLimitsTheBatch) {
  Load(State(1));
  json ids = json::array();
  for (int i = 0; i < 26; ++i) ids.push_back("d-ABCDEF123");
  EXPECT_EQ(CallError("BatchGetDeployments", {{"deploymentIds", ids}}).type,
            "BatchLimitExceededException");
}

TEST_F(ModelTest, TargetsOfUnstartedDeploymentAreRejected) {
  Load(State(1));
  std::string id = Create("v1.zip");
  EXPECT_EQ(CallError("ListDeploymentTargets", {{"deploymentId", id}}).type,
            "DeploymentNotStartedException");
}

TEST_F(ModelTest, SeededRunningDeploymentIsRejected) {
  json deployments = SucceededV1();
  deployments[0]["status"] = "InProgress";
  auto model =
      Model::FromJson(State(1, "CodeDeployDefault.OneAtATime", json(), deployments), kStart);
  ASSERT_FALSE(model.has_value());
  EXPECT_NE(model.error().find("finished"), std::string::npos);
}

}  // namespace
}  // namespace backout::emulators::codedeploy
