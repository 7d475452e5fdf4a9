// Proves the emulator with LaunchDarkly's own generated REST API client
// (launchdarkly-api-typescript, pinned in client/package-lock.json): client/ld_client.js reads
// a flag, turns it off with a semantic patch and lists the audit log, and every answer must be
// what LaunchDarkly documents for those calls.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "emulators/launchdarkly/emulator.h"
#include "support/temp_dir.h"

namespace backout::emulators::launchdarkly {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kClientDir = LAUNCHDARKLY_CLIENT_DIR;
constexpr const char* kToken = "api-0f1e2d3c-node-client";

struct ClientRun {
  int exit_code = -1;
  std::map<std::string, json> steps;  // by step name
  std::string err;
};

json State() {
  json production{{"on", true},
                  {"offVariation", 1},
                  {"fallthrough", {{"variation", 0}}},
                  {"targets", {{{"values", {"qa-user"}}, {"variation", 0}}}},
                  {"prerequisites", json::array()}};
  return json{{"tokens",
               {{{"token", kToken},
                 {"name", "backout"},
                 {"member",
                  {{"email", "oncall@example.com"}, {"firstName", "On"}, {"lastName", "Call"}}}}}},
              {"flags",
               {{{"key", "new-checkout"},
                 {"name", "New checkout"},
                 {"variations", {{{"value", true}}, {{"value", false}}}},
                 {"environments", {{"production", production}}}}}}};
}

class NodeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(fs::path(kClientDir) / "node_modules" / "launchdarkly-api-typescript"))
        << "launchdarkly-api-typescript is not installed in " << kClientDir
        << ": run scripts/install-deps.sh (it runs npm ci there)";
    auto emulator = Emulator::Create(State());
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());
  }

  // Runs `node ld_client.js` against the emulator with a clean environment, so no proxy
  // setting reaches axios.
  ClientRun RunClient(const std::string& token, const std::string& comment) {
    std::string script = (fs::path(kClientDir) / "ld_client.js").string();
    std::vector<std::string> argv{"/usr/bin/node", script,         emulator_->Url(), token,
                                  "default",       "new-checkout", "production",     comment};
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "HOME=" + temp_.path().string(),
                                 "NODE_PATH=" + (fs::path(kClientDir) / "node_modules").string()};
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
      ::chdir(kClientDir);
      ::execve(argv[0].c_str(), c_argv.data(), c_env.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    std::string out;
    char buffer[4096];
    ssize_t count;
    while ((count = ::read(out_pipe[0], buffer, sizeof(buffer))) > 0) out.append(buffer, count);
    ::close(out_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);

    ClientRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_file);
    std::stringstream text;
    text << err.rdbuf();
    run.err = text.str();
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      try {
        json step = json::parse(line);
        run.steps[step.value("step", "")] = step;
      } catch (const json::parse_error&) {
        ADD_FAILURE() << "ld_client.js printed a line that is not JSON: " << line;
      }
    }
    return run;
  }

  backout::testing::TempDir temp_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(NodeClientTest, ReadTurnOffAndAuditLog) {
  ClientRun run = RunClient(kToken, "Backout incident INC-7: executor alice");
  ASSERT_EQ(run.exit_code, 0) << run.err;

  json read = run.steps["read"];
  ASSERT_EQ(read["status"], 200) << read.dump();
  EXPECT_TRUE(read["result"]["on"].get<bool>());
  EXPECT_EQ(read["result"]["offVariation"], 1);
  EXPECT_EQ(read["result"]["targets"][0]["values"][0], "qa-user");

  json off = run.steps["turn-off"];
  ASSERT_EQ(off["status"], 200) << off.dump();
  EXPECT_FALSE(off["result"]["on"].get<bool>());
  EXPECT_EQ(off["result"]["version"], 2);

  json listing = run.steps["audit-log"];
  ASSERT_EQ(listing["status"], 200) << listing.dump();
  ASSERT_EQ(listing["result"].size(), 1u);
  EXPECT_EQ(listing["result"][0]["comment"], "Backout incident INC-7: executor alice");
  EXPECT_EQ(listing["result"][0]["member"], "oncall@example.com");
  EXPECT_EQ(listing["result"][0]["actions"][0], "updateOn");
  EXPECT_EQ(listing["result"][0]["titleVerb"], "turned off the flag");

  json entry = run.steps["audit-entry"];
  ASSERT_EQ(entry["status"], 200) << entry.dump();
  EXPECT_TRUE(entry["result"]["onBefore"].get<bool>());
  EXPECT_FALSE(entry["result"]["onAfter"].get<bool>());
  EXPECT_EQ(entry["result"]["token"], "backout");
}

TEST_F(NodeClientTest, ApprovalRequiredIs405ForClient) {
  ASSERT_TRUE(emulator_->SetApprovalRequired("default", "production", true).has_value());
  ClientRun run = RunClient(kToken, "Backout incident INC-8");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json off = run.steps["turn-off"];
  EXPECT_EQ(off["status"], 405);
  EXPECT_EQ(off["error"]["code"], "method_not_allowed");
  EXPECT_EQ(run.steps["audit-log"]["result"].size(), 0u);
}

TEST_F(NodeClientTest, RateLimitShowsRetryAfterToClient) {
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", "", ApiError{429, "rate_limited", "rate limited", 3}, 1});
  ClientRun run = RunClient(kToken, "Backout incident INC-9");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json off = run.steps["turn-off"];
  EXPECT_EQ(off["status"], 429);
  EXPECT_EQ(off["retryAfter"], "3");
}

TEST_F(NodeClientTest, WrongTokenIs401ForClient) {
  ClientRun run = RunClient("api-not-a-real-token", "x");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.steps["read"]["status"], 401);
  EXPECT_EQ(run.steps["read"]["error"]["code"], "unauthorized");
}

}  // namespace
}  // namespace backout::emulators::launchdarkly
