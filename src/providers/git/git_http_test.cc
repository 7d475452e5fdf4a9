// The git provider against a remote served over HTTP by `git http-backend`, behind Basic
// authentication, with the credentials the service binding names by reference.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "http/test_pki.h"
#include "http/test_server.h"
#include "providers/git/git_provider.h"
#include "providers/git/test_git.h"
#include "support/git_http_server.h"
#include "support/temp_dir.h"

namespace backout::providers::git {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Git;
using testing::ValuesYaml;
using testing::WriteFile;

constexpr std::string_view kValuesPath = "apps/checkout/values.yaml";
constexpr char kUser[] = "deploy-bot";
constexpr char kToken[] = "tok-8f1c2e9d4b7a";  // the password the server accepts
constexpr char kUserVariable[] = "BACKOUT_TEST_GIT_HTTP_USER";

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00Z"); }

// Resolves a reference the way the config loader does for `credentials`: `env:NAME` reads the
// server's environment, `file:PATH` reads the file without its trailing newline.
std::string Resolve(const std::string& reference) {
  if (reference.starts_with("env:")) {
    const char* value = std::getenv(reference.substr(4).c_str());
    return value == nullptr ? "" : value;
  }
  std::ifstream file(reference.substr(5));
  std::string value((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

// A bare repository `checkout.git` served at http://127.0.0.1:PORT/checkout.git, in which the
// team deployed v40, v41 and v42 (pushed through the file system, as the team's CI would).
// Every log line of the test is captured, so the test can show the token is in none of them.
class GitHttpTest : public ::testing::Test {
 protected:
  GitHttpTest() : clock_(T0()) {
    repos_ = dir_.path() / "repos";
    remote_ = repos_ / "checkout.git";
    clone_ = dir_.path() / "clone";
    fs::create_directories(repos_);
    Git(dir_.path(), {"init", "--bare", "-b", "main", remote_.string()});
    Git(remote_, {"config", "receive.denyNonFastForwards", "true"});
    Git(remote_, {"config", "http.receivepack", "true"});
    Git(dir_.path(), {"clone", remote_.string(), clone_.string()});
    Git(clone_, {"symbolic-ref", "HEAD", "refs/heads/main"});
    for (const char* version : {"v40", "v41", "v42"}) {
      WriteFile(clone_ / kValuesPath, ValuesYaml(version));
      Git(clone_, {"add", "-A"});
      Git(clone_, {"commit", "-q", "-m", std::string("Deploy checkout ") + version});
      Git(clone_, {"push", "-q", "origin", "main"});
    }

    // The secrets as the operator provides them: the user in the environment, the token in a
    // file only the server's user reads.
    ::setenv(kUserVariable, kUser, 1);
    token_file_ = dir_.path() / "git-token";
    std::ofstream(token_file_) << kToken << "\n";
    ::chmod(token_file_.c_str(), 0600);

    log_sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    spdlog::default_logger()->sinks().push_back(log_sink_);
    spdlog::set_level(spdlog::level::debug);
  }

  ~GitHttpTest() override {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), log_sink_), sinks.end());
    spdlog::set_level(spdlog::level::info);
    ::unsetenv(kUserVariable);
  }

  void Serve(const std::string& password = kToken) {
    server_ = std::make_unique<http::testing::LocalServer>();
    Attach(password);
  }

  // Serves over https with a server certificate for 127.0.0.1 from a throwaway CA, whose
  // certificate is written to <temp>/pki/ca.pem.
  void ServeTls() {
    MakePki();
    server_ = std::make_unique<http::testing::LocalServer>(pki_.server_cert_file.string(),
                                                           pki_.server_key_file.string());
    Attach(kToken);
  }

  void MakePki() {
    pki_ = http::testing::MakeTestPki();
    fs::create_directories(dir_.path() / "pki");
    pki_.WriteTo(dir_.path() / "pki");
  }

  void Attach(const std::string& password) {
    backend_ = std::make_unique<backout::testing::GitHttpBackend>(
        server_->server(), backout::testing::GitHttpOptions{
                               .project_root = repos_, .username = kUser, .password = password});
    ASSERT_TRUE(server_->Start());
  }

  std::string Url() const { return server_->Url("/checkout.git"); }

  // The binding as written in the config: credentials by reference, never by value.
  json Settings() const {
    return json{{"kind", "git"},
                {"repository", Url()},
                {"branch", "main"},
                {"path", kValuesPath},
                {"version_key", "image.tag"},
                {"work_dir", (dir_.path() / "work").string()},
                {"author_name", "Backout"},
                {"author_email", "backout@example.com"},
                {"credentials",
                 {{"username", std::string("env:") + kUserVariable},
                  {"password", "file:" + token_file_.string()}}}};
  }

  // The secret values the loader hands the provider, resolved from Settings()'s references.
  SecretValues Secrets() const {
    SecretValues secrets;
    const json settings = Settings();
    for (const auto& [role, reference] : settings.at("credentials").items()) {
      secrets.emplace(role, Resolve(reference.get<std::string>()));
    }
    return secrets;
  }

  std::unique_ptr<Provider> Make(SecretValues secrets) {
    auto provider = GitProvider::Create("checkout", Settings(), secrets, clock_);
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

  // Fails the test when `text` contains the token; `what` names the text.
  void ExpectNoToken(const std::string& text, std::string_view what) const {
    EXPECT_EQ(text.find(kToken), std::string::npos) << what << " contains the token: " << text;
  }

  backout::testing::TempDir dir_;
  core::ManualClock clock_;
  fs::path repos_;
  fs::path remote_;
  fs::path clone_;
  fs::path token_file_;
  http::testing::TestPki pki_;
  std::unique_ptr<http::testing::LocalServer> server_;
  std::unique_ptr<backout::testing::GitHttpBackend> backend_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_sink_;
};

TEST_F(GitHttpTest, RevertsAndPushesWithCredential) {
  Serve();
  SecretValues secrets = Secrets();
  ASSERT_EQ(secrets.at("username"), kUser);
  ASSERT_EQ(secrets.at("password"), kToken);
  auto provider = Make(secrets);
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("v41");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "v41");
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "v41");

  // The remote contains the revert, as the git command prints it.
  EXPECT_EQ(Git(remote_, {"rev-parse", "main"}), result->details.value("commit", ""));
  EXPECT_EQ(Git(remote_, {"show", "main:" + std::string(kValuesPath)}) + "\n", ValuesYaml("v41"));
  std::string message = Git(remote_, {"log", "-1", "--format=%B", "main"});
  EXPECT_NE(message.find("Backout-Incident: INC-7"), std::string::npos) << message;
  EXPECT_NE(message.find("Backout-Approver: lead-1"), std::string::npos) << message;

  // Every request went through the authenticating server, after its challenge.
  EXPECT_GT(backend_->served(), 0);
  EXPECT_GT(backend_->rejected(), 0);

  ExpectNoToken(ToJson(*plan).dump(), "the plan");
  ExpectNoToken(ToJson(*result).dump(), "the execution result and transcript");
  ExpectNoToken(ToJson(*record).dump(), "the read-back");
  ExpectNoToken(log_.str(), "the log");
  ExpectNoToken(Git(remote_, {"log", "--format=%B", "main"}), "the remote's commit messages");
}

TEST_F(GitHttpTest, WrongCredentialNamesUrlAndFix) {
  Serve("another-token-5d1e");
  auto provider = Make(Secrets());
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  const std::string& error = plan.error().message;
  EXPECT_NE(error.find(Url()), std::string::npos) << error;
  EXPECT_NE(error.find("rejected the credentials"), std::string::npos) << error;
  EXPECT_NE(error.find("provider.credentials"), std::string::npos) << error;
  ExpectNoToken(error, "the error");
  EXPECT_EQ(error.find("another-token-5d1e"), std::string::npos) << error;
  ExpectNoToken(log_.str(), "the log");
  EXPECT_EQ(backend_->served(), 0);

  // Nothing reached the remote.
  EXPECT_EQ(Git(remote_, {"log", "-1", "--format=%s", "main"}), "Deploy checkout v42");
}

TEST_F(GitHttpTest, MissingCredentialNamesUrlAndFix) {
  Serve();
  json settings = Settings();
  settings.erase("credentials");
  auto provider = GitProvider::Create("checkout", settings, {}, clock_);
  ASSERT_TRUE(provider.has_value()) << provider.error().message;

  auto live = (*provider)->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  const std::string& error = live.error().message;
  EXPECT_NE(error.find(Url()), std::string::npos) << error;
  EXPECT_NE(error.find("provider.credentials"), std::string::npos) << error;
  EXPECT_EQ(backend_->served(), 0);
}

TEST_F(GitHttpTest, HttpsWithCaFilePushes) {
  ServeTls();
  ASSERT_TRUE(Url().starts_with("https://")) << Url();
  json settings = Settings();
  settings["ca_file"] = pki_.ca_cert_file.string();
  auto provider = GitProvider::Create("checkout", settings, Secrets(), clock_);
  ASSERT_TRUE(provider.has_value()) << provider.error().message;

  auto plan = (*provider)->MakePlan("v41");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  auto result = (*provider)->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(Git(remote_, {"rev-parse", "main"}), result->details.value("commit", ""));
  EXPECT_EQ(Git(remote_, {"show", "main:" + std::string(kValuesPath)}) + "\n", ValuesYaml("v41"));
  ExpectNoToken(ToJson(*result).dump(), "the execution result and transcript");
  ExpectNoToken(log_.str(), "the log");
}

TEST_F(GitHttpTest, HttpsWithoutCaFileNamesFix) {
  ServeTls();
  auto provider = Make(Secrets());
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  const std::string& error = plan.error().message;
  EXPECT_NE(error.find(Url()), std::string::npos) << error;
  EXPECT_NE(error.find("ca_file"), std::string::npos) << error;
  EXPECT_EQ(backend_->served(), 0);
}

TEST_F(GitHttpTest, HttpsWithOtherCaIsRejected) {
  ServeTls();
  http::testing::TestPki other = http::testing::MakeTestPki();
  fs::create_directories(dir_.path() / "other-pki");
  other.WriteTo(dir_.path() / "other-pki");
  json settings = Settings();
  settings["ca_file"] = other.ca_cert_file.string();
  auto provider = GitProvider::Create("checkout", settings, Secrets(), clock_);
  ASSERT_TRUE(provider.has_value()) << provider.error().message;
  auto plan = (*provider)->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  const std::string& error = plan.error().message;
  EXPECT_NE(error.find("not trusted"), std::string::npos) << error;
  EXPECT_NE(error.find(other.ca_cert_file.string()), std::string::npos) << error;
  EXPECT_EQ(backend_->served(), 0);
}

TEST_F(GitHttpTest, CaFileNeedsHttpsRepository) {
  Serve();
  MakePki();
  json settings = Settings();
  settings["ca_file"] = pki_.ca_cert_file.string();
  auto provider = GitProvider::Create("checkout", settings, Secrets(), clock_);
  ASSERT_FALSE(provider.has_value());
  EXPECT_NE(provider.error().message.find("applies only to an https:// repository"),
            std::string::npos)
      << provider.error().message;
}

}  // namespace
}  // namespace backout::providers::git
