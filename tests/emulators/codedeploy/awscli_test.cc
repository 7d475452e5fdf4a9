// Proves the emulator with the real client: /usr/bin/aws (the Debian awscli package, version 2)
// signs every call with SigV4 and parses every response, so a call that succeeds here would be
// understood the same way by AWS's own tooling.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "emulators/codedeploy/emulator.h"
#include "support/temp_dir.h"

namespace backout::emulators::codedeploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAws = "/usr/bin/aws";

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  json Json() const {
    try {
      return json::parse(out);
    } catch (const json::parse_error&) {
      ADD_FAILURE() << "aws printed no JSON: " << out << "\nstderr: " << err;
      return json();
    }
  }
};

double Epoch(std::chrono::system_clock::time_point time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

json S3Revision(const std::string& key) {
  return json{{"revisionType", "S3"},
              {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "zip"}}}};
}

// Application `shop`, group `prod` with two instances, revisions v1 to v3 and `seeded`
// finished deployments of v1, the oldest first, each one minute after the other.
json State(int seeded) {
  auto start = std::chrono::system_clock::now() - std::chrono::hours(2);
  json deployments = json::array();
  for (int i = 0; i < seeded; ++i) {
    deployments.push_back(
        {{"deploymentId", fmt::format("d-SEEDED{:03}", i)},
         {"applicationName", "shop"},
         {"deploymentGroupName", "prod"},
         {"revision", S3Revision("v1.zip")},
         {"status", "Succeeded"},
         {"description", fmt::format("release {}", i)},
         {"createTime", Epoch(start + std::chrono::minutes(i))},
         {"completeTime", Epoch(start + std::chrono::minutes(i) + std::chrono::seconds(30))}});
  }
  return json{{"applications", {"shop"}},
              {"deploymentGroups",
               {{{"applicationName", "shop"},
                 {"deploymentGroupName", "prod"},
                 {"instances", {"i-0aaa00000000000a1", "i-0aaa00000000000a2"}}}}},
              {"timing", {{"queueMs", 20}, {"lifecycleEventMs", 20}}},
              {"revisions",
               {{{"revision", S3Revision("v1.zip")}},
                {{"revision", S3Revision("v2.zip")}},
                {{"revision", S3Revision("v3.zip")}}}},
              {"deployments", deployments}};
}

class AwsCliTest : public ::testing::Test {
 protected:
  void StartWith(const json& state) {
    ASSERT_EQ(::access(kAws, X_OK), 0)
        << kAws << " is missing: install Debian's awscli package (scripts/install-deps.sh)";
    auto emulator = Emulator::Create(state);
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());

    // Empty config and credentials files, so nothing from ~/.aws or a metadata endpoint is read.
    std::ofstream(temp_.path() / "config").close();
    std::ofstream(temp_.path() / "credentials").close();
  }

  // Runs `aws deploy ARGS --endpoint-url URL --region us-east-1 --output json` with a clean
  // environment holding only the given credentials.
  CliResult Deploy(std::vector<std::string> args,
                   std::string secret = std::string(kExampleSecretAccessKey),
                   std::string access_key = std::string(kExampleAccessKeyId),
                   std::string session_token = "") {
    std::vector<std::string> argv{kAws, "deploy"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> common{"--endpoint-url", emulator_->Url(), "--region",
                                    "us-east-1",      "--output",       "json"};
    argv.insert(argv.end(), common.begin(), common.end());
    std::vector<std::string> env{
        "PATH=/usr/bin:/bin",
        "HOME=" + temp_.path().string(),
        "LANG=C.UTF-8",
        "AWS_ACCESS_KEY_ID=" + access_key,
        "AWS_SECRET_ACCESS_KEY=" + secret,
        "AWS_CONFIG_FILE=" + (temp_.path() / "config").string(),
        "AWS_SHARED_CREDENTIALS_FILE=" + (temp_.path() / "credentials").string(),
        "AWS_EC2_METADATA_DISABLED=true",
        "AWS_PAGER=",
    };
    if (!session_token.empty()) env.push_back("AWS_SESSION_TOKEN=" + session_token);
    return Run(argv, env);
  }

  CliResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    std::vector<char*> c_argv;
    for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
    c_argv.push_back(nullptr);
    std::vector<char*> c_env;
    for (const std::string& entry : env) c_env.push_back(const_cast<char*>(entry.c_str()));
    c_env.push_back(nullptr);
    fs::path err_file = temp_.path() / "stderr.txt";

    int out_pipe[2];
    EXPECT_EQ(::pipe(out_pipe), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::close(out_pipe[0]);
      ::close(out_pipe[1]);
      ::execve(argv[0].c_str(), c_argv.data(), c_env.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    CliResult result;
    char buffer[4096];
    ssize_t count;
    while ((count = ::read(out_pipe[0], buffer, sizeof(buffer))) > 0)
      result.out.append(buffer, count);
    ::close(out_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_file);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  // Polls the emulator's state until deployment `id` is finished.
  json WaitFinished(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      json state = emulator_->Dump();
      for (const json& deployment : state["deployments"]) {
        std::string status = deployment["status"];
        if (deployment["deploymentId"] == id &&
            (status == "Succeeded" || status == "Failed" || status == "Stopped")) {
          return deployment;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << id << " did not finish within 10 s";
    return json();
  }

  testing::TempDir temp_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(AwsCliTest, GetDeploymentPrintsTheDeployment) {
  StartWith(State(1));
  CliResult result = Deploy({"get-deployment", "--deployment-id", "d-SEEDED000"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json info = result.Json()["deploymentInfo"];
  EXPECT_EQ(info["deploymentId"], "d-SEEDED000");
  EXPECT_EQ(info["status"], "Succeeded");
  EXPECT_EQ(info["creator"], "user");
  EXPECT_EQ(info["revision"]["s3Location"]["key"], "v1.zip");
  // The CLI parsed the epoch number as a timestamp and prints it in ISO 8601.
  EXPECT_TRUE(info["createTime"].is_string());
}

TEST_F(AwsCliTest, GetDeploymentOfUnknownIdFails) {
  StartWith(State(0));
  CliResult result = Deploy({"get-deployment", "--deployment-id", "d-ABCDEF123"});
  EXPECT_EQ(result.exit_code, 254);
  EXPECT_NE(result.err.find("DeploymentDoesNotExistException"), std::string::npos) << result.err;
}

TEST_F(AwsCliTest, GetDeploymentGroupShowsLastSuccessful) {
  StartWith(State(2));
  CliResult result = Deploy(
      {"get-deployment-group", "--application-name", "shop", "--deployment-group-name", "prod"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json info = result.Json()["deploymentGroupInfo"];
  EXPECT_EQ(info["lastSuccessfulDeployment"]["deploymentId"], "d-SEEDED001");
  EXPECT_EQ(info["lastSuccessfulDeployment"]["status"], "Succeeded");
  EXPECT_EQ(info["deploymentConfigName"], "CodeDeployDefault.OneAtATime");
}

TEST_F(AwsCliTest, ListDeploymentsFollowsNextToken) {
  json state = State(5);
  state["listPageSize"] = 2;
  StartWith(state);
  CliResult result =
      Deploy({"list-deployments", "--application-name", "shop", "--deployment-group-name", "prod"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json expected = {"d-SEEDED004", "d-SEEDED003", "d-SEEDED002", "d-SEEDED001", "d-SEEDED000"};
  EXPECT_EQ(result.Json()["deployments"], expected);
  EXPECT_EQ(emulator_->CallCount("ListDeployments"), 3);
}

TEST_F(AwsCliTest, BatchGetDeploymentsReturnsEach) {
  StartWith(State(2));
  CliResult result =
      Deploy({"batch-get-deployments", "--deployment-ids", "d-SEEDED000", "d-SEEDED001"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.Json()["deploymentsInfo"].size(), 2u);
}

TEST_F(AwsCliTest, DeploymentTargetsListLifecycleEvents) {
  StartWith(State(1));
  CliResult list = Deploy({"list-deployment-targets", "--deployment-id", "d-SEEDED000"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.Json()["targetIds"].size(), 2u);

  CliResult batch = Deploy({"batch-get-deployment-targets", "--deployment-id", "d-SEEDED000",
                            "--target-ids", "i-0aaa00000000000a1"});
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  json target = batch.Json()["deploymentTargets"][0]["instanceTarget"];
  EXPECT_EQ(target["status"], "Succeeded");
  EXPECT_EQ(target["lifecycleEvents"].size(), 7u);
}

TEST_F(AwsCliTest, CreateDeploymentStartsADeployment) {
  StartWith(State(1));
  CliResult created =
      Deploy({"create-deployment", "--application-name", "shop", "--deployment-group-name", "prod",
              "--s3-location", "bucket=releases,key=v2.zip,bundleType=zip", "--description",
              "backout INC-7 rollback", "--file-exists-behavior", "OVERWRITE"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string id = created.Json().value("deploymentId", "");
  ASSERT_FALSE(id.empty());

  CliResult fetched = Deploy({"get-deployment", "--deployment-id", id});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  json info = fetched.Json()["deploymentInfo"];
  EXPECT_EQ(info["description"], "backout INC-7 rollback");
  EXPECT_EQ(info["fileExistsBehavior"], "OVERWRITE");
  EXPECT_EQ(info["revision"]["s3Location"]["key"], "v2.zip");
  EXPECT_EQ(info["previousRevision"]["s3Location"]["key"], "v1.zip");
  EXPECT_EQ(WaitFinished(id)["status"], "Succeeded");
}

TEST_F(AwsCliTest, SecondCreateHitsTheDeploymentLimit) {
  StartWith(State(1));
  ASSERT_TRUE(
      emulator_->Stall({{"applicationName", "shop"}, {"deploymentGroupName", "prod"}}).has_value());
  std::vector<std::string> create{"create-deployment",
                                  "--application-name",
                                  "shop",
                                  "--deployment-group-name",
                                  "prod",
                                  "--s3-location",
                                  "bucket=releases,key=v2.zip,bundleType=zip"};
  ASSERT_EQ(Deploy(create).exit_code, 0);
  CliResult second = Deploy(create);
  EXPECT_EQ(second.exit_code, 254);
  EXPECT_NE(second.err.find("DeploymentLimitExceededException"), std::string::npos) << second.err;
}

TEST_F(AwsCliTest, StopDeploymentRollsBack) {
  StartWith(State(1));
  // The group stalls, so the deployment still runs when the CLI stops it, and so does the
  // rollback until it is released.
  json group{{"applicationName", "shop"}, {"deploymentGroupName", "prod"}};
  ASSERT_TRUE(emulator_->Stall(group).has_value());
  CliResult created =
      Deploy({"create-deployment", "--application-name", "shop", "--deployment-group-name", "prod",
              "--s3-location", "bucket=releases,key=v2.zip,bundleType=zip"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string id = created.Json().value("deploymentId", "");

  CliResult stopped = Deploy({"stop-deployment", "--deployment-id", id, "--auto-rollback-enabled"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.Json()["status"], "Pending");

  json finished = WaitFinished(id);
  EXPECT_EQ(finished["status"], "Stopped");
  std::string rollback_id = finished["rollbackInfo"].value("rollbackDeploymentId", "");
  ASSERT_FALSE(rollback_id.empty());
  ASSERT_TRUE(emulator_->Unstall(group).has_value());
  EXPECT_EQ(WaitFinished(rollback_id)["status"], "Succeeded");

  CliResult rollback = Deploy({"get-deployment", "--deployment-id", rollback_id});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  json info = rollback.Json()["deploymentInfo"];
  EXPECT_EQ(info["creator"], "codeDeployRollback");
  EXPECT_EQ(info["rollbackInfo"]["rollbackTriggeringDeploymentId"], id);
  EXPECT_EQ(info["revision"]["s3Location"]["key"], "v1.zip");
}

TEST_F(AwsCliTest, StopOfFinishedDeploymentFails) {
  StartWith(State(1));
  CliResult result =
      Deploy({"stop-deployment", "--deployment-id", "d-SEEDED000", "--auto-rollback-enabled"});
  EXPECT_EQ(result.exit_code, 254);
  EXPECT_NE(result.err.find("DeploymentAlreadyCompletedException"), std::string::npos)
      << result.err;
}

TEST_F(AwsCliTest, WrongSecretIsRejected) {
  StartWith(State(1));
  CliResult result =
      Deploy({"get-deployment", "--deployment-id", "d-SEEDED000"}, "wrong/secret/key");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("InvalidSignatureException"), std::string::npos) << result.err;
  EXPECT_EQ(emulator_->CallCount("GetDeployment"), 0);
}

TEST_F(AwsCliTest, SessionTokenIsAccepted) {
  json state = State(1);
  state["credentials"] = {{{"accessKeyId", "ASIATEMPORARYKEY0001"},
                           {"secretAccessKey", "temporary/secret"},
                           {"sessionToken", "FwoGZXIvYXdzEXAMPLETOKEN"}}};
  StartWith(state);
  CliResult with_token =
      Deploy({"get-deployment", "--deployment-id", "d-SEEDED000"}, "temporary/secret",
             "ASIATEMPORARYKEY0001", "FwoGZXIvYXdzEXAMPLETOKEN");
  EXPECT_EQ(with_token.exit_code, 0) << with_token.err;

  CliResult without = Deploy({"get-deployment", "--deployment-id", "d-SEEDED000"},
                             "temporary/secret", "ASIATEMPORARYKEY0001");
  EXPECT_NE(without.exit_code, 0);
  EXPECT_NE(without.err.find("UnrecognizedClientException"), std::string::npos) << without.err;
}

}  // namespace
}  // namespace backout::emulators::codedeploy
