// One signed CodeDeploy call by Backout vs the same call by /usr/bin/aws, both against the
// CodeDeploy emulator on 127.0.0.1 in this process, measured in the same run:
//   Backout: GetDeployment through the provider's API client (SigV4, libcurl), both with a new
//            client and connection per call (cold) and on one reused client (warm);
//   peer:    `aws deploy get-deployment`, a new process per call as an operator runs it.
// The ratio uses the cold figure, the fairer one against a CLI that starts from nothing.
// Usage: codedeploy_bench [--calls N] [--cli-runs M]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "emulators/codedeploy/emulator.h"
#include "providers/codedeploy/api_client.h"

extern char** environ;

namespace {

using namespace backout;
using nlohmann::json;
using Seconds = std::chrono::duration<double>;

constexpr const char* kAws = "/usr/bin/aws";
constexpr const char* kDeploymentId = "d-BENCH0001";

class SystemClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

json State() {
  double now = Seconds(std::chrono::system_clock::now().time_since_epoch()).count();
  json revision{{"revisionType", "S3"},
                {"s3Location", {{"bucket", "releases"}, {"key", "v1.zip"}, {"bundleType", "zip"}}}};
  return json{{"applications", {"shop"}},
              {"deploymentGroups",
               {{{"applicationName", "shop"},
                 {"deploymentGroupName", "prod"},
                 {"instances", {"i-1", "i-2", "i-3"}}}}},
              {"deployments",
               {{{"deploymentId", kDeploymentId},
                 {"applicationName", "shop"},
                 {"deploymentGroupName", "prod"},
                 {"revision", revision},
                 {"status", "Succeeded"},
                 {"createTime", now - 600}}}}};
}

providers::codedeploy::ApiClientOptions ClientOptions(const std::string& endpoint) {
  return providers::codedeploy::ApiClientOptions{
      endpoint, "us-east-1",
      http::AwsCredentials{std::string(emulators::codedeploy::kExampleAccessKeyId),
                           std::string(emulators::codedeploy::kExampleSecretAccessKey), ""},
      std::chrono::milliseconds(10'000), "bench.codedeploy"};
}

// Mean seconds per GetDeployment; a new client (and so a new connection) per call when `cold`.
double BackoutSecondsPerCall(const std::string& endpoint, int calls, bool cold) {
  SystemClock clock;
  auto shared = providers::codedeploy::ApiClient::Create(ClientOptions(endpoint), clock);
  if (!shared) {
    std::fprintf(stderr, "codedeploy_bench: %s\n", shared.error().message.c_str());
    std::exit(1);
  }
  json input{{"deploymentId", kDeploymentId}};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    std::unique_ptr<providers::codedeploy::ApiClient> fresh;
    if (cold)
      fresh = std::move(*providers::codedeploy::ApiClient::Create(ClientOptions(endpoint), clock));
    const auto& client = cold ? fresh : *shared;
    auto output = client->Call("GetDeployment", input, true, nullptr);
    if (!output || (*output)["deploymentInfo"]["deploymentId"] != kDeploymentId) {
      std::fprintf(stderr, "codedeploy_bench: Backout's GetDeployment failed: %s\n",
                   output ? "unexpected output" : output.error().Describe().c_str());
      std::exit(1);
    }
  }
  return Seconds(std::chrono::steady_clock::now() - start).count() / calls;
}

// Mean seconds per `aws deploy get-deployment`, run with a clean environment that reads no
// ~/.aws files and no metadata endpoint.
double CliSecondsPerCall(const std::string& endpoint, int runs) {
  std::filesystem::path home =
      std::filesystem::temp_directory_path() / fmt::format("codedeploy-bench-{}", ::getpid());
  std::filesystem::create_directories(home);
  std::vector<std::string> env{
      "PATH=/usr/bin:/bin",
      "HOME=" + home.string(),
      "LANG=C.UTF-8",
      fmt::format("AWS_ACCESS_KEY_ID={}", emulators::codedeploy::kExampleAccessKeyId),
      fmt::format("AWS_SECRET_ACCESS_KEY={}", emulators::codedeploy::kExampleSecretAccessKey),
      "AWS_CONFIG_FILE=/dev/null",
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
      "AWS_EC2_METADATA_DISABLED=true",
      "AWS_PAGER=",
  };
  std::vector<std::string> args{
      kAws,     "deploy",   "get-deployment", "--deployment-id", kDeploymentId, "--endpoint-url",
      endpoint, "--region", "us-east-1",      "--output",        "json"};
  std::vector<char*> c_args;
  for (std::string& arg : args) c_args.push_back(arg.data());
  c_args.push_back(nullptr);
  std::vector<char*> c_env;
  for (std::string& entry : env) c_env.push_back(entry.data());
  c_env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    pid_t pid = 0;
    if (posix_spawn(&pid, kAws, &actions, nullptr, c_args.data(), c_env.data()) != 0) {
      std::fprintf(stderr, "codedeploy_bench: cannot start %s: %s\n", kAws, std::strerror(errno));
      std::exit(1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "codedeploy_bench: %s exited with status %d\n", kAws,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      std::exit(1);
    }
  }
  double seconds = Seconds(std::chrono::steady_clock::now() - start).count() / runs;
  posix_spawn_file_actions_destroy(&actions);
  std::filesystem::remove_all(home);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 200;
  int cli_runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--calls") calls = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--cli-runs") cli_runs = std::max(1, std::atoi(argv[i + 1]));
  }
  if (::access(kAws, X_OK) != 0) {
    std::fprintf(stderr, "codedeploy_bench: %s is missing; install Debian's awscli package\n",
                 kAws);
    return 1;
  }
  spdlog::set_level(spdlog::level::warn);

  auto emulator = emulators::codedeploy::Emulator::Create(State());
  if (!emulator || !(*emulator)->Start(0)) {
    std::fprintf(stderr, "codedeploy_bench: the emulator did not start\n");
    return 1;
  }
  std::string endpoint = (*emulator)->Url();

  double cli = CliSecondsPerCall(endpoint, cli_runs);
  double cold = BackoutSecondsPerCall(endpoint, calls, true);
  double warm = BackoutSecondsPerCall(endpoint, calls, false);
  std::printf("codedeploy GetDeployment, signed, against the emulator on 127.0.0.1:\n");
  std::printf("  backout (new client per call): %8.3f ms/call over %d calls\n", cold * 1e3, calls);
  std::printf("  backout (reused client):       %8.3f ms/call over %d calls\n", warm * 1e3, calls);
  std::printf("  /usr/bin/aws deploy:           %8.3f ms/call over %d runs\n", cli * 1e3, cli_runs);
  std::printf("  ratio aws/backout (cold): %.1fx (target >= 10x); warm: %.1fx\n", cli / cold,
              cli / warm);
  (*emulator)->Stop();
  return 0;
}
