// The git provider against a remote served over ssh by a real OpenSSH server on 127.0.0.1, with
// the private key that the service binding names by reference and the server's host key
// checked against the binding's known_hosts file.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "providers/git/git_provider.h"
#include "providers/git/git_settings.h"
#include "providers/git/test_git.h"
#include "support/sshd_server.h"
#include "support/temp_dir.h"

namespace backout::providers::git {
namespace {

namespace fs = std::filesystem;
using backout::testing::GenerateSshKey;
using backout::testing::SshServer;
using nlohmann::json;
using testing::Git;
using testing::ValuesYaml;
using testing::WriteFile;

constexpr std::string_view kValuesPath = "apps/checkout/values.yaml";
constexpr char kPassphrase[] = "pass-3e7b91c4d2";
constexpr char kPassphraseVariable[] = "BACKOUT_TEST_GIT_SSH_PASSPHRASE";

core::Time T0() { return *core::ParseTime("2026-03-01T12:00:00Z"); }

std::string ReadText(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

size_t CountOccurrences(const std::string& text, std::string_view part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

// Resolves a reference the way the config loader does for `credentials`: `env:NAME` reads the
// server's environment, `file:PATH` reads the file without its trailing newline.
std::string Resolve(const std::string& reference) {
  if (reference.starts_with("env:")) {
    const char* value = std::getenv(reference.substr(4).c_str());
    return value == nullptr ? "" : value;
  }
  std::string value = ReadText(reference.substr(5));
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

// A bare repository `checkout.git`, which refuses non-fast-forward pushes, in which the team
// deployed v40, v41 and v42 through the file system. A fresh sshd serves it to the client key
// <temp>/keys/client, and <temp>/known_hosts lists the server's host key. Every log line of the
// test is captured, so the test can show that the key and its passphrase are in none of them.
class GitSshTest : public ::testing::Test {
 protected:
  GitSshTest() : clock_(T0()) {}

  void SetUp() override {
    if (!fs::exists(backout::testing::kSshdPath)) {
      GTEST_SKIP() << backout::testing::kSshdPath
                   << " is missing, so no ssh server can start; install openssh-server "
                      "(scripts/install-deps.sh does)";
    }
    remote_ = dir_.path() / "repos" / "checkout.git";
    clone_ = dir_.path() / "clone";
    fs::create_directories(remote_.parent_path());
    Git(dir_.path(), {"init", "--bare", "-b", "main", remote_.string()});
    Git(remote_, {"config", "receive.denyNonFastForwards", "true"});
    Git(dir_.path(), {"clone", remote_.string(), clone_.string()});
    Git(clone_, {"symbolic-ref", "HEAD", "refs/heads/main"});
    for (const char* version : {"v40", "v41", "v42"}) {
      WriteFile(clone_ / kValuesPath, ValuesYaml(version));
      Git(clone_, {"add", "-A"});
      Git(clone_, {"commit", "-q", "-m", std::string("Deploy checkout ") + version});
      Git(clone_, {"push", "-q", "origin", "main"});
    }

    fs::create_directories(dir_.path() / "keys");
    fs::create_directories(dir_.path() / "sshd");
    client_key_ = dir_.path() / "keys" / "client";
    passphrase_key_ = dir_.path() / "keys" / "client-with-passphrase";
    ASSERT_TRUE(GenerateSshKey(client_key_).has_value());
    auto generated = GenerateSshKey(passphrase_key_, kPassphrase);
    ASSERT_TRUE(generated.has_value()) << generated.error();
    auto server = SshServer::Start(
        {.dir = dir_.path() / "sshd",
         .authorized_keys = {client_key_.string() + ".pub", passphrase_key_.string() + ".pub"}});
    ASSERT_TRUE(server.has_value()) << server.error();
    server_ = std::move(*server);
    // The ssh command logs in with the key, so a later failure lies with the provider.
    auto login = server_->CheckLogin(client_key_);
    ASSERT_TRUE(login.has_value()) << login.error();
    logins_before_ = server_->AcceptedLogins();

    known_hosts_ = dir_.path() / "known_hosts";
    std::ofstream(known_hosts_) << "# the remote of the checkout service\n"
                                << server_->KnownHostsLine() << "\n";
    ::setenv(kPassphraseVariable, kPassphrase, 1);

    log_sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    spdlog::default_logger()->sinks().push_back(log_sink_);
    spdlog::set_level(spdlog::level::debug);
  }

  void TearDown() override {
    if (log_sink_) {
      auto& sinks = spdlog::default_logger()->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), log_sink_), sinks.end());
      spdlog::set_level(spdlog::level::info);
    }
    ::unsetenv(kPassphraseVariable);
    if (home_changed_) {
      if (saved_home_) {
        ::setenv("HOME", saved_home_->c_str(), 1);
      } else {
        ::unsetenv("HOME");
      }
    }
    server_.reset();  // stops sshd by its PID
  }

  // Points HOME at `home` until the test ends.
  void SetHome(const fs::path& home) {
    if (!home_changed_) {
      const char* current = std::getenv("HOME");
      if (current != nullptr) saved_home_ = current;
      home_changed_ = true;
    }
    ::setenv("HOME", home.c_str(), 1);
  }

  std::string Url() const { return server_->Url(remote_); }

  // The binding as written in the config: the key by reference, never by value.
  json Settings(const fs::path& key) const {
    json credentials = {{"ssh_key", "file:" + key.string()}};
    if (key == passphrase_key_) {
      credentials["ssh_passphrase"] = std::string("env:") + kPassphraseVariable;
    }
    return json{{"kind", "git"},
                {"repository", Url()},
                {"branch", "main"},
                {"path", kValuesPath},
                {"version_key", "image.tag"},
                {"work_dir", (dir_.path() / "work").string()},
                {"author_name", "Backout"},
                {"author_email", "backout@example.com"},
                {"known_hosts", known_hosts_.string()},
                {"credentials", credentials}};
  }

  // The secret values the loader hands the provider, resolved from the settings' references.
  static SecretValues Secrets(const json& settings) {
    SecretValues secrets;
    for (const auto& [role, reference] : settings.at("credentials").items()) {
      secrets.emplace(role, Resolve(reference.get<std::string>()));
    }
    return secrets;
  }

  std::unique_ptr<Provider> Make(const json& settings) {
    auto provider = GitProvider::Create("checkout", settings, Secrets(settings), clock_);
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

  // Fails the test when `text` contains the passphrase or any line of a private key's body.
  // `label` names the text in the failure message.
  void ExpectNoSecret(const std::string& text, std::string_view label) const {
    EXPECT_EQ(text.find(kPassphrase), std::string::npos) << label << " contains the passphrase";
    EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << label << " contains a private key";
    for (const fs::path& key : {client_key_, passphrase_key_}) {
      std::istringstream lines(ReadText(key));
      for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line.starts_with("-----")) continue;
        EXPECT_EQ(text.find(line), std::string::npos)
            << label << " contains a line of " << key.string();
      }
    }
  }

  std::string RemoteHeadSubject() const {
    return Git(remote_, {"log", "-1", "--format=%s", "main"});
  }

  // Runs plan and execute to v41 and checks the revert on the remote with the git command.
  void ExpectRevertPushed(const json& settings) {
    auto provider = Make(settings);
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

    EXPECT_EQ(Git(remote_, {"rev-parse", "main"}), result->details.value("commit", ""));
    EXPECT_EQ(Git(remote_, {"show", "main:" + std::string(kValuesPath)}) + "\n", ValuesYaml("v41"));
    std::string message = Git(remote_, {"log", "-1", "--format=%B", "main"});
    EXPECT_NE(message.find("Backout-Incident: INC-7"), std::string::npos) << message;
    EXPECT_NE(message.find("Backout-Approver: lead-1"), std::string::npos) << message;
    EXPECT_EQ(Git(remote_, {"rev-list", "--count", "main"}), "4");
    EXPECT_GT(server_->AcceptedLogins(), logins_before_);

    ExpectNoSecret(ToJson(*plan).dump(), "the plan");
    ExpectNoSecret(ToJson(*result).dump(), "the execution result and transcript");
    ExpectNoSecret(ToJson(*record).dump(), "the read-back");
    ExpectNoSecret(log_.str(), "the log");
  }

  // Checks that MakePlan fails before sshd accepted a login, and returns the error.
  std::string ExpectPlanRejected(const json& settings) {
    auto provider = Make(settings);
    if (provider == nullptr) return "";
    auto plan = provider->MakePlan("v41");
    EXPECT_FALSE(plan.has_value());
    if (plan.has_value()) return "";
    const std::string& error = plan.error().message;
    EXPECT_NE(error.find(DisplayUrl(Url())), std::string::npos) << error;
    ExpectNoSecret(error, "the error");
    ExpectNoSecret(log_.str(), "the log");
    EXPECT_EQ(server_->AcceptedLogins(), logins_before_);
    EXPECT_EQ(RemoteHeadSubject(), "Deploy checkout v42");
    return error;
  }

  backout::testing::TempDir dir_;
  core::ManualClock clock_;
  fs::path remote_;
  fs::path clone_;
  fs::path client_key_;
  fs::path passphrase_key_;
  fs::path known_hosts_;
  std::unique_ptr<SshServer> server_;
  int logins_before_ = 0;
  bool home_changed_ = false;
  std::optional<std::string> saved_home_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_sink_;
};

TEST_F(GitSshTest, RevertsAndPushesWithKey) {
  const json settings = Settings(client_key_);
  ASSERT_TRUE(Secrets(settings).at("ssh_key").starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
  ExpectRevertPushed(settings);
}

TEST_F(GitSshTest, PassphraseKeyPushes) {
  const json settings = Settings(passphrase_key_);
  ASSERT_EQ(Secrets(settings).at("ssh_passphrase"), kPassphrase);
  ExpectRevertPushed(settings);
}

TEST_F(GitSshTest, HashedKnownHostsAccepted) {
  auto hashed =
      std::system(("ssh-keygen -q -H -f '" + known_hosts_.string() + "' >/dev/null 2>&1").c_str());
  ASSERT_EQ(hashed, 0);
  ASSERT_EQ(ReadText(known_hosts_).find("127.0.0.1"), std::string::npos);
  ExpectRevertPushed(Settings(client_key_));
}

TEST_F(GitSshTest, WrongKeyRejectedNothingPushed) {
  const fs::path other_key = dir_.path() / "keys" / "not-authorized";
  ASSERT_TRUE(GenerateSshKey(other_key).has_value());
  const size_t connections_before =
      CountOccurrences(ReadText(server_->log_file()), "Connection from 127.0.0.1");
  const std::string error = ExpectPlanRejected(Settings(other_key));
  // The plan fetches over one connection, which offers the key once.
  const std::string sshd_log = ReadText(server_->log_file());
  EXPECT_EQ(CountOccurrences(sshd_log, "Connection from 127.0.0.1") - connections_before, 1u)
      << sshd_log;
  EXPECT_EQ(CountOccurrences(sshd_log, "Failed publickey"), 1u) << sshd_log;
  EXPECT_NE(error.find("rejected the credentials"), std::string::npos) << error;
  EXPECT_NE(error.find("ssh_key"), std::string::npos) << error;
  std::string other_body = ReadText(other_key);
  EXPECT_EQ(error.find(other_body.substr(40, 30)), std::string::npos) << error;

  // A plan made with the authorized key, executed with the other key, pushes nothing.
  auto planner = Make(Settings(client_key_));
  ASSERT_NE(planner, nullptr);
  auto plan = planner->MakePlan("v41");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  const int logins = server_->AcceptedLogins();
  auto executor = Make(Settings(other_key));
  ASSERT_NE(executor, nullptr);
  auto result = executor->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("rejected the credentials"), std::string::npos) << result->message;
  EXPECT_EQ(server_->AcceptedLogins(), logins);
  EXPECT_EQ(RemoteHeadSubject(), "Deploy checkout v42");
  ExpectNoSecret(ToJson(*result).dump(), "the execution result and transcript");
  ExpectNoSecret(log_.str(), "the log");
}

// The job runner retries only kUnavailable and kTimeout, and a rejected key fails again until
// the binding is fixed, so the error must be of another code.
TEST_F(GitSshTest, WrongKeyNotTransient) {
  const fs::path other_key = dir_.path() / "keys" / "not-authorized";
  ASSERT_TRUE(GenerateSshKey(other_key).has_value());
  auto provider = Make(Settings(other_key));
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("v41");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(core::ErrorCodeName(plan.error().code), "failed_precondition") << plan.error().message;
  auto live = provider->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(core::ErrorCodeName(live.error().code), "failed_precondition") << live.error().message;
}

TEST_F(GitSshTest, WrongPassphraseNamesFix) {
  json settings = Settings(passphrase_key_);
  settings["credentials"]["ssh_passphrase"] = "env:BACKOUT_TEST_GIT_SSH_WRONG_PASSPHRASE";
  ::setenv("BACKOUT_TEST_GIT_SSH_WRONG_PASSPHRASE", "wrong-9c1d", 1);
  const std::string error = ExpectPlanRejected(settings);
  ::unsetenv("BACKOUT_TEST_GIT_SSH_WRONG_PASSPHRASE");
  EXPECT_NE(error.find("ssh_passphrase"), std::string::npos) << error;
  EXPECT_EQ(error.find("wrong-9c1d"), std::string::npos) << error;
}

TEST_F(GitSshTest, UnknownHostKeyRejected) {
  const fs::path other_host_key = dir_.path() / "keys" / "other-host";
  ASSERT_TRUE(GenerateSshKey(other_host_key).has_value());
  std::ofstream(known_hosts_) << "git.example.com " << ReadText(other_host_key.string() + ".pub");
  // The binding's file decides even when $HOME/.ssh/known_hosts, which libgit2 reads, lists the
  // key.
  const fs::path home = dir_.path() / "home";
  fs::create_directories(home / ".ssh");
  std::ofstream(home / ".ssh" / "known_hosts") << server_->KnownHostsLine() << "\n";
  SetHome(home);

  const std::string error = ExpectPlanRejected(Settings(client_key_));
  const std::string host = "[127.0.0.1]:" + std::to_string(server_->port());
  EXPECT_NE(error.find("the ssh host key of " + host + " is unknown"), std::string::npos) << error;
  EXPECT_NE(error.find(known_hosts_.string() + " lists no key for it"), std::string::npos) << error;
  EXPECT_NE(error.find("ssh-ed25519 SHA256:"), std::string::npos) << error;
  EXPECT_NE(error.find("ssh-keyscan -p " + std::to_string(server_->port())), std::string::npos)
      << error;
}

TEST_F(GitSshTest, ChangedHostKeyRejected) {
  const fs::path other_host_key = dir_.path() / "keys" / "other-host";
  ASSERT_TRUE(GenerateSshKey(other_host_key).has_value());
  std::ofstream(known_hosts_) << "# the remote of the checkout service\n"
                              << "[127.0.0.1]:" << server_->port() << " "
                              << ReadText(other_host_key.string() + ".pub");
  const std::string error = ExpectPlanRejected(Settings(client_key_));
  const std::string host = "[127.0.0.1]:" + std::to_string(server_->port());
  EXPECT_NE(error.find("the ssh host key of " + host + " differs from the key on line 2 of " +
                       known_hosts_.string()),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("replace that line"), std::string::npos) << error;
}

// Without known_hosts, libgit2 1.5.1 checks the key against $HOME/.ssh/known_hosts.
TEST_F(GitSshTest, HomeKnownHostsWithoutSetting) {
  const fs::path home = dir_.path() / "home";
  fs::create_directories(home / ".ssh");
  SetHome(home);
  json settings = Settings(client_key_);
  settings.erase("known_hosts");

  const std::string error = ExpectPlanRejected(settings);
  EXPECT_NE(error.find("is not in " + home.string() + "/.ssh/known_hosts"), std::string::npos)
      << error;
  EXPECT_NE(error.find("set the provider's known_hosts"), std::string::npos) << error;

  std::ofstream(home / ".ssh" / "known_hosts") << server_->KnownHostsLine() << "\n";
  auto provider = Make(settings);
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("v41");
  EXPECT_TRUE(plan.has_value()) << plan.error().message;
}

// libssh2 1.10 cannot parse a $HOME/.ssh/known_hosts with a malformed line, and libgit2 1.5.1
// reads that file for every connection, before it checks the host key.
TEST_F(GitSshTest, BrokenHomeKnownHostsNamesFile) {
  const fs::path home = dir_.path() / "home";
  const fs::path home_known_hosts = home / ".ssh" / "known_hosts";
  fs::create_directories(home / ".ssh");
  std::ofstream(home_known_hosts) << server_->KnownHostsLine() << "\n"
                                  << "garbage\n";
  SetHome(home);
  json without_setting = Settings(client_key_);
  without_setting.erase("known_hosts");

  std::string error = ExpectPlanRejected(without_setting);
  EXPECT_NE(error.find("could not read " + home_known_hosts.string()), std::string::npos) << error;
  EXPECT_NE(error.find("repair or remove the lines of " + home_known_hosts.string()),
            std::string::npos)
      << error;
  EXPECT_EQ(error.find("check the URL, the network"), std::string::npos) << error;

  // NOTE: the binding's own known_hosts does not help, because libgit2 still reads the file.
  error = ExpectPlanRejected(Settings(client_key_));
  EXPECT_NE(error.find("could not read " + home_known_hosts.string()), std::string::npos) << error;
  EXPECT_NE(error.find("even though the binding sets known_hosts"), std::string::npos) << error;

  std::ofstream(home_known_hosts) << server_->KnownHostsLine() << "\n";
  ExpectRevertPushed(without_setting);
}

// Settings checks that need no server.
class GitSshSettings : public ::testing::Test {
 protected:
  json Settings(const std::string& repository) const {
    return json{{"kind", "git"},
                {"repository", repository},
                {"path", std::string(kValuesPath)},
                {"version_key", "image.tag"},
                {"work_dir", (dir_.path() / "work").string()},
                {"known_hosts", (dir_.path() / "known_hosts").string()}};
  }

  std::string Error(const json& settings) const {
    auto parsed = ParseGitSettings("checkout", settings, {});
    EXPECT_FALSE(parsed.has_value());
    return parsed ? "" : parsed.error().message;
  }

  // Parses the settings of an ssh repository with `key` as the resolved ssh_key secret and, when
  // `passphrase` is not empty, an ssh_passphrase.
  core::Result<GitSettings> ParseWithKey(const std::string& key,
                                         const std::string& passphrase = "") const {
    json settings = Settings("ssh://git@git.example.com/deploy.git");
    settings.erase("known_hosts");
    settings["credentials"] = {{"ssh_key", "file:/etc/backout/git-key"}};
    SecretValues secrets{{"ssh_key", key}};
    if (!passphrase.empty()) {
      settings["credentials"]["ssh_passphrase"] = "env:GIT_SSH_PASSPHRASE";
      secrets.emplace("ssh_passphrase", passphrase);
    }
    return ParseGitSettings("checkout", settings, secrets);
  }

  // Returns the error of ParseWithKey and checks that it contains no line of `key`.
  std::string KeyError(const std::string& key, const std::string& passphrase = "") const {
    auto parsed = ParseWithKey(key, passphrase);
    EXPECT_FALSE(parsed.has_value());
    if (parsed) return "";
    const std::string& error = parsed.error().message;
    EXPECT_NE(error.find("ssh_key"), std::string::npos) << error;
    std::istringstream lines(key);
    for (std::string line; std::getline(lines, line);) {
      if (line.size() < 12 || line.starts_with("-----")) continue;
      EXPECT_EQ(error.find(line), std::string::npos) << "the error contains a line of the key";
    }
    return error;
  }

  backout::testing::TempDir dir_;
};

TEST_F(GitSshSettings, SshKeyGarbageRejected) {
  const std::string error = KeyError("this is not a key\n");
  EXPECT_NE(error.find("contains no private key block"), std::string::npos) << error;
  EXPECT_NE(error.find("'credentials'"), std::string::npos) << error;
}

TEST_F(GitSshSettings, SshPublicKeyRejected) {
  const fs::path key = dir_.path() / "client";
  ASSERT_TRUE(GenerateSshKey(key).has_value());
  const std::string error = KeyError(ReadText(key.string() + ".pub"));
  EXPECT_NE(error.find("is a public key"), std::string::npos) << error;
  EXPECT_NE(error.find("without .pub"), std::string::npos) << error;
}

TEST_F(GitSshSettings, DamagedOpenSshKeyRejected) {
  const fs::path key = dir_.path() / "client";
  ASSERT_TRUE(GenerateSshKey(key).has_value());
  std::string text = ReadText(key);
  const size_t body = text.find('\n') + 1;
  text.replace(body, 8, "AAAAAAAA");  // breaks the openssh-key-v1 magic
  const std::string error = KeyError(text);
  EXPECT_NE(error.find("damaged or cut short"), std::string::npos) << error;
}

TEST_F(GitSshSettings, EncryptedKeyNeedsPassphrase) {
  const fs::path openssh_key = dir_.path() / "openssh";
  ASSERT_TRUE(GenerateSshKey(openssh_key, kPassphrase).has_value());
  const std::string openssh = ReadText(openssh_key);
  std::string error = KeyError(openssh);
  EXPECT_NE(error.find("is encrypted"), std::string::npos) << error;
  EXPECT_NE(error.find("add ssh_passphrase"), std::string::npos) << error;
  auto accepted = ParseWithKey(openssh, kPassphrase);
  EXPECT_TRUE(accepted.has_value()) << accepted.error().message;

  const fs::path pem_key = dir_.path() / "pem";
  const std::string keygen = "ssh-keygen -q -t ecdsa -m PEM -N '" + std::string(kPassphrase) +
                             "' -f '" + pem_key.string() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(keygen.c_str()), 0);
  const std::string pem = ReadText(pem_key);
  ASSERT_NE(pem.find("Proc-Type: 4,ENCRYPTED"), std::string::npos) << "ssh-keygen wrote no PEM";
  error = KeyError(pem);
  EXPECT_NE(error.find("is encrypted"), std::string::npos) << error;
  accepted = ParseWithKey(pem, kPassphrase);
  EXPECT_TRUE(accepted.has_value()) << accepted.error().message;

  const std::string pkcs8 =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQww\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  error = KeyError(pkcs8);
  EXPECT_NE(error.find("is encrypted"), std::string::npos) << error;
}

TEST_F(GitSshSettings, UnencryptedKeysAccepted) {
  const fs::path openssh_key = dir_.path() / "openssh";
  ASSERT_TRUE(GenerateSshKey(openssh_key).has_value());
  auto openssh = ParseWithKey(ReadText(openssh_key));
  EXPECT_TRUE(openssh.has_value()) << openssh.error().message;

  const fs::path pem_key = dir_.path() / "pem";
  const std::string keygen =
      "ssh-keygen -q -t ecdsa -m PEM -N '' -f '" + pem_key.string() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(keygen.c_str()), 0);
  auto pem = ParseWithKey(ReadText(pem_key));
  EXPECT_TRUE(pem.has_value()) << pem.error().message;
}

TEST_F(GitSshSettings, KnownHostsReadsPortOfUrl) {
  std::ofstream(dir_.path() / "known_hosts")
      << "[git.example.com]:2222 ssh-ed25519 "
         "AAAAC3NzaC1lZDI1NTE5AAAAINrS+7CLXRid3UOKY2/BUiFR3o0904QqE/XfCQyBpjOw\n";
  struct Case {
    std::string repository;
    int port;
  };
  const Case cases[] = {
      {"ssh://git@git.example.com:2222/deploy.git", 2222}, {"ssh://git.example.com/deploy.git", 22},
      {"ssh://git@[::1]:2200/deploy.git", 2200},           {"git@git.example.com:deploy.git", 22},
      {"[git@git.example.com:2022]:deploy.git", 2022},
  };
  for (const Case& c : cases) {
    auto parsed = ParseGitSettings("checkout", Settings(c.repository), {});
    ASSERT_TRUE(parsed.has_value()) << c.repository << ": " << parsed.error().message;
    EXPECT_EQ(parsed->ssh_port, c.port) << c.repository;
    EXPECT_EQ(parsed->known_host_keys.size(), 1u);
  }
  std::string error = Error(Settings("ssh://git@git.example.com:99999/deploy.git"));
  EXPECT_NE(error.find("invalid port"), std::string::npos) << error;
}

TEST_F(GitSshSettings, KnownHostsNeedsSshRepository) {
  std::ofstream(dir_.path() / "known_hosts")
      << "git.example.com ssh-ed25519 "
         "AAAAC3NzaC1lZDI1NTE5AAAAINrS+7CLXRid3UOKY2/BUiFR3o0904QqE/XfCQyBpjOw\n";
  std::string error = Error(Settings("https://git.example.com/deploy.git"));
  EXPECT_NE(error.find("'known_hosts': applies only to an ssh repository"), std::string::npos)
      << error;
}

TEST_F(GitSshSettings, KnownHostsFileErrorsNameFile) {
  const std::string path = (dir_.path() / "known_hosts").string();
  std::string missing = Error(Settings("ssh://git@git.example.com/deploy.git"));
  EXPECT_NE(missing.find(path + " cannot be read"), std::string::npos) << missing;

  std::ofstream(path) << "# no hosts yet\n";
  std::string empty = Error(Settings("ssh://git@git.example.com/deploy.git"));
  EXPECT_NE(empty.find(path + " lists no host key"), std::string::npos) << empty;

  std::ofstream(path) << "git.example.com ssh-ed25519\n";
  std::string malformed = Error(Settings("ssh://git@git.example.com/deploy.git"));
  EXPECT_NE(malformed.find(path + " line 1: the line has fewer than three fields"),
            std::string::npos)
      << malformed;
}

}  // namespace
}  // namespace backout::providers::git
