#include "providers/codedeploy/deployment.h"

#include <gtest/gtest.h>

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;

TEST(RevisionNameTest, S3Object) {
  json revision{
      {"revisionType", "S3"},
      {"s3Location", {{"bucket", "releases"}, {"key", "shop/1.4.zip"}, {"bundleType", "zip"}}}};
  EXPECT_EQ(RevisionName(revision), "s3://releases/shop/1.4.zip");
}

TEST(RevisionNameTest, S3ObjectVersion) {
  json revision{{"revisionType", "S3"},
                {"s3Location", {{"bucket", "releases"}, {"key", "shop.zip"}, {"version", "v7"}}}};
  EXPECT_EQ(RevisionName(revision), "s3://releases/shop.zip?versionId=v7");
}

TEST(RevisionNameTest, GitHubCommit) {
  json revision{{"revisionType", "GitHub"},
                {"gitHubLocation", {{"repository", "acme/shop"}, {"commitId", "9f1c2e"}}}};
  EXPECT_EQ(RevisionName(revision), "github:acme/shop@9f1c2e");
}

TEST(RevisionNameTest, InlineContentUsesItsHash) {
  json revision{{"revisionType", "AppSpecContent"},
                {"appSpecContent", {{"content", "version: 0.0"}}}};
  EXPECT_TRUE(RevisionName(revision).starts_with("appspec:sha256:"));
  EXPECT_EQ(RevisionName(revision).size(), std::string("appspec:sha256:").size() + 64);
}

TEST(TerminalStatusTest, OnlyThreeStatusesAreFinal) {
  EXPECT_TRUE(IsTerminalStatus("Succeeded"));
  EXPECT_TRUE(IsTerminalStatus("Failed"));
  EXPECT_TRUE(IsTerminalStatus("Stopped"));
  EXPECT_FALSE(IsTerminalStatus("Baking"));
  EXPECT_FALSE(IsTerminalStatus("SomethingNew"));
}

TEST(ParseDeploymentTest, ReadsRollbackInfoAndTimes) {
  json info{{"deploymentId", "d-ABCDEF123"},
            {"status", "Stopped"},
            {"creator", "user"},
            {"createTime", 1790000000.25},
            {"rollbackInfo", {{"rollbackDeploymentId", "d-ROLLBACK1"}}},
            {"errorInformation", {{"code", "MANUAL_STOP"}, {"message", "stopped"}}}};
  auto record = ParseDeployment(info);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->rollback_deployment_id, "d-ROLLBACK1");
  EXPECT_EQ(record->error_code, "MANUAL_STOP");
  ASSERT_TRUE(record->create_time.has_value());
  EXPECT_EQ(EpochSecondsFromTime(*record->create_time), 1790000000.25);
}

TEST(WithTimesAsTextTest, TimestampsBecomeRfc3339) {
  json info{{"createTime", 1790000000.5},
            {"overview", {{"Succeeded", 3}}},
            {"events", {{{"endTime", 1790000001.25}}}}};
  json text = WithTimesAsText(info);
  EXPECT_EQ(text["createTime"], "2026-09-21T14:13:20.500000Z");
  EXPECT_EQ(text["events"][0]["endTime"], "2026-09-21T14:13:21.250000Z");
  EXPECT_EQ(text["overview"]["Succeeded"], 3);
}

TEST(ParseDeploymentTest, RejectsMissingId) {
  auto record = ParseDeployment(json{{"status", "Succeeded"}});
  ASSERT_FALSE(record.has_value());
  EXPECT_EQ(record.error().code, core::ErrorCode::kUnavailable);
}

TEST(ParseInstanceTargetTest, NamesTheFailedEvent) {
  json target{{"deploymentTargetType", "InstanceTarget"},
              {"instanceTarget",
               {{"targetId", "i-2"},
                {"status", "Failed"},
                {"lifecycleEvents",
                 {{{"lifecycleEventName", "DownloadBundle"}, {"status", "Succeeded"}},
                  {{"lifecycleEventName", "Install"},
                   {"status", "Failed"},
                   {"diagnostics", {{"message", "file already exists"}}}}}}}}};
  InstanceResult result = ParseInstanceTarget(target);
  EXPECT_EQ(result.instance_id, "i-2");
  EXPECT_EQ(result.failed_event, "Install");
  EXPECT_EQ(result.message, "file already exists");
}

}  // namespace
}  // namespace backout::providers::codedeploy
