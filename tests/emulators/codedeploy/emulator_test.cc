#include "emulators/codedeploy/emulator.h"

#include <gtest/gtest.h>

#include "http/client.h"
#include "http/sigv4.h"

namespace backout::emulators::codedeploy {
namespace {

using nlohmann::json;

json S3Revision(const std::string& key) {
  return json{{"revisionType", "S3"},
              {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "zip"}}}};
}

json BaseState() {
  return json{{"applications", {"shop"}},
              {"deploymentGroups",
               {{{"applicationName", "shop"},
                 {"deploymentGroupName", "prod"},
                 {"instances", {"i-1", "i-2"}}}}},
              {"timing", {{"queueMs", 10}, {"lifecycleEventMs", 10}}},
              {"revisions", {{{"revision", S3Revision("v1.zip")}}}}};
}

http::TimePoint Now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

http::AwsCredentials ExampleCredentials() {
  return http::AwsCredentials{std::string(kExampleAccessKeyId),
                              std::string(kExampleSecretAccessKey), ""};
}

class EmulatorTest : public ::testing::Test {
 protected:
  void StartWith(const json& state) {
    auto emulator = Emulator::Create(state);
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());
    http::ClientOptions options;
    options.retry.max_attempts = 1;
    options.total_timeout = std::chrono::milliseconds(2000);
    client_ = std::move(*http::Client::Create(options));
  }

  void SetUp() override { StartWith(BaseState()); }

  http::Request ApiRequest(const std::string& action, const json& body) {
    http::Request request;
    request.method = http::Method::kPost;
    request.url = emulator_->Url() + "/";
    request.headers.Add("Content-Type", "application/x-amz-json-1.1");
    request.headers.Add("X-Amz-Target", "CodeDeploy_20141006." + action);
    request.body = body.dump();
    return request;
  }

  http::Response Send(http::Request request) {
    auto response = client_->Send(request);
    EXPECT_TRUE(response.has_value()) << response.error().message;
    return response.value_or(http::Response{});
  }

  http::Response Call(const std::string& action, const json& body,
                      http::AwsCredentials credentials = ExampleCredentials(),
                      std::string region = "us-east-1", http::TimePoint at = Now()) {
    http::Request request = ApiRequest(action, body);
    auto signature =
        http::SignRequest(request, credentials, http::SigV4Options{region, "codedeploy"}, at);
    EXPECT_TRUE(signature.has_value());
    return Send(std::move(request));
  }

  static std::string ErrorType(const http::Response& response) {
    return json::parse(response.body).value("__type", "");
  }

  static std::string ErrorMessage(const http::Response& response) {
    return json::parse(response.body).value("message", "");
  }

  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<http::Client> client_;
};

const json kGroup{{"applicationName", "shop"}, {"deploymentGroupName", "prod"}};

TEST_F(EmulatorTest, SignedCallSucceeds) {
  http::Response response = Call("GetDeploymentGroup", kGroup);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.Get("Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(json::parse(response.body)["deploymentGroupInfo"]["deploymentGroupName"], "prod");
}

TEST_F(EmulatorTest, WrongSecretIsRejected) {
  http::AwsCredentials wrong = ExampleCredentials();
  wrong.secret_access_key = "not-the-secret";
  http::Response response = Call("GetDeploymentGroup", kGroup, wrong);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorType(response), "InvalidSignatureException");
  EXPECT_EQ(emulator_->CallCount("GetDeploymentGroup"), 0);
}

TEST_F(EmulatorTest, UnknownAccessKeyIsRejected) {
  http::AwsCredentials unknown{"AKIAUNKNOWNKEY000000", "secret", ""};
  EXPECT_EQ(ErrorType(Call("GetDeploymentGroup", kGroup, unknown)), "UnrecognizedClientException");
}

TEST_F(EmulatorTest, UnsignedRequestIsRejected) {
  http::Response response = Send(ApiRequest("GetDeploymentGroup", kGroup));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorType(response), "MissingAuthenticationTokenException");
}

TEST_F(EmulatorTest, ExpiredSignatureIsRejected) {
  http::Response response = Call("GetDeploymentGroup", kGroup, ExampleCredentials(), "us-east-1",
                                 Now() - std::chrono::minutes(10));
  EXPECT_EQ(ErrorType(response), "InvalidSignatureException");
  EXPECT_NE(ErrorMessage(response).find("Signature expired"), std::string::npos);
}

TEST_F(EmulatorTest, OtherRegionIsRejected) {
  http::Response response = Call("GetDeploymentGroup", kGroup, ExampleCredentials(), "eu-west-1");
  EXPECT_EQ(ErrorType(response), "InvalidSignatureException");
  EXPECT_NE(ErrorMessage(response).find("region"), std::string::npos);
}

TEST_F(EmulatorTest, ChangedBodyIsRejected) {
  http::Request request = ApiRequest("GetDeploymentGroup", kGroup);
  ASSERT_TRUE(http::SignRequest(request, ExampleCredentials(),
                                http::SigV4Options{"us-east-1", "codedeploy"}, Now())
                  .has_value());
  request.body = json{{"applicationName", "shop"}, {"deploymentGroupName", "other"}}.dump();
  EXPECT_EQ(ErrorType(Send(std::move(request))), "InvalidSignatureException");
}

TEST_F(EmulatorTest, UnknownTargetIsRejected) {
  EXPECT_EQ(ErrorType(Call("DeleteApplication", {{"applicationName", "shop"}})),
            "UnknownOperationException");
}

TEST_F(EmulatorTest, ApiErrorsCarryTypeAndMessage) {
  http::Response response = Call("GetDeployment", {{"deploymentId", "d-ABCDEF123"}});
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorType(response), "DeploymentDoesNotExistException");
  EXPECT_NE(ErrorMessage(response).find("d-ABCDEF123"), std::string::npos);
}

TEST_F(EmulatorTest, FailCallHookAnswersWithTheError) {
  emulator_->FailNextCalls("GetDeploymentGroup",
                           ApiError{400, "ThrottlingException", "Rate exceeded"}, 1);
  EXPECT_EQ(ErrorType(Call("GetDeploymentGroup", kGroup)), "ThrottlingException");
  EXPECT_EQ(Call("GetDeploymentGroup", kGroup).status, 200);
}

TEST_F(EmulatorTest, DelayedResponseStillRunsTheAction) {
  emulator_->DelayNextResponses("CreateDeployment", std::chrono::milliseconds(600), 1);
  http::Request request = ApiRequest("CreateDeployment", {{"applicationName", "shop"},
                                                          {"deploymentGroupName", "prod"},
                                                          {"revision", S3Revision("v1.zip")}});
  request.total_timeout = std::chrono::milliseconds(200);
  ASSERT_TRUE(http::SignRequest(request, ExampleCredentials(),
                                http::SigV4Options{"us-east-1", "codedeploy"}, Now())
                  .has_value());
  auto response = client_->Send(request);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, http::ErrorKind::kTimeout);
  EXPECT_EQ(emulator_->Dump()["deployments"].size(), 1u);
}

TEST_F(EmulatorTest, HooksAreServedOverHttp) {
  http::Request hook;
  hook.method = http::Method::kPost;
  hook.url = emulator_->Url() + "/_emulator/fail-instance";
  hook.body = json{{"instanceId", "i-1"}, {"lifecycleEvent", "Install"}}.dump();
  http::Response response = Send(hook);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(emulator_->Dump()["instances"]["i-1"]["pendingFailures"], 1);
}

TEST_F(EmulatorTest, HookRejectsAnUnknownInstance) {
  http::Request hook;
  hook.method = http::Method::kPost;
  hook.url = emulator_->Url() + "/_emulator/fail-instance";
  hook.body = json{{"instanceId", "i-404"}}.dump();
  EXPECT_EQ(Send(hook).status, 400);
}

TEST(EmulatorSessionTokenTest, TokenMustComeWithTheKey) {
  json state = BaseState();
  state["credentials"] = {{{"accessKeyId", "ASIATEMPORARYKEY0001"},
                           {"secretAccessKey", "temporary-secret"},
                           {"sessionToken", "session-token-value"}}};
  auto emulator = Emulator::Create(state);
  ASSERT_TRUE(emulator.has_value());
  ASSERT_TRUE((*emulator)->Start(0).has_value());
  auto client = std::move(*http::Client::Create(http::ClientOptions{}));

  auto send = [&](std::string token) {
    http::Request request;
    request.method = http::Method::kPost;
    request.url = (*emulator)->Url() + "/";
    request.headers.Add("Content-Type", "application/x-amz-json-1.1");
    request.headers.Add("X-Amz-Target", "CodeDeploy_20141006.GetDeploymentGroup");
    request.body = kGroup.dump();
    EXPECT_TRUE(http::SignRequest(request,
                                  http::AwsCredentials{"ASIATEMPORARYKEY0001", "temporary-secret",
                                                       std::move(token)},
                                  http::SigV4Options{"us-east-1", "codedeploy"}, Now())
                    .has_value());
    return client->Send(request).value_or(http::Response{});
  };
  EXPECT_EQ(send("session-token-value").status, 200);
  http::Response without = send("");
  EXPECT_EQ(json::parse(without.body).value("__type", ""), "UnrecognizedClientException");
}

}  // namespace
}  // namespace backout::emulators::codedeploy
