#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "support/temp_dir.h"

namespace backout::integration {

// How the test deployment is built.
struct DeploymentOptions {
  // Store URL; empty uses sqlite:<folder>/backout.db.
  std::string database;
  // Whether the checkout runbook has a `status` command (it reads back the deployed version).
  bool with_status = true;
  // Seconds the rollback runbook sleeps after appending its line and before switching versions.
  int runbook_sleep_seconds = 0;
  // When set, the items of checkout's `checks` list (YAML indented by 6 spaces) instead of the
  // default command smoke check.
  std::string checkout_checks;
};

// One Backout server with the `checkout` service bound to a `command` provider whose runbook,
// status and smoke-check scripts live in a temporary folder. The config's roster allows:
//   lead-1  engineering-lead
//   lead-2  engineering-lead and devops-engineer on checkout (to test separation of duties)
//   sre-1   devops-engineer on checkout
//   sre-2   devops-engineer on checkout and payments
//   ci-1    ci
// Each test makes the grants it needs through `backout user create` (Grant).
// Every secret in the config is a unique canary string, listed by Secrets().
class Deployment {
 public:
  explicit Deployment(DeploymentOptions options = {});
  ~Deployment();

  // Starts the server (again, after Stop or Kill) on the same port and data.
  bool Start();
  // Stops with SIGTERM, or kills with SIGKILL.
  void Stop();
  void Kill();

  // The bootstrap admin's token from <data_dir>/admin.token.
  std::string AdminToken() const;

  // Grants `name` the roles and services with `backout user create` as admin and remembers the
  // printed token; returns false when the CLI fails.
  bool Grant(const std::string& name, const std::vector<std::string>& roles,
             const std::vector<std::string>& services);

  // Runs the CLI as `user` ("admin" or a granted user) against this server with `-o json`.
  CliResult Cli(const std::string& user, std::vector<std::string> args);

  // Runs the CLI with no token and no output format added.
  CliResult RawCli(std::vector<std::string> args,
                   const std::map<std::string, std::string>& environment = {});

  const std::filesystem::path& folder() const { return folder_.path(); }
  std::filesystem::path data_dir() const { return folder() / "data"; }
  std::filesystem::path server_log() const { return folder() / "server.log"; }
  std::filesystem::path runbook_log() const { return folder() / "runbook.log"; }
  std::filesystem::path version_file() const { return folder() / "version"; }
  const std::string& database() const { return database_; }
  std::string url() const;

  // Every secret the config references and every token issued so far.
  std::vector<std::string> Secrets() const;

 private:
  void WriteScripts();
  void WriteConfig();

  DeploymentOptions options_;
  testing::TempDir folder_;
  std::string database_;
  int port_ = 0;
  std::map<std::string, std::string> secret_environment_;  // env variable → canary value
  std::vector<std::string> file_secrets_;                  // canaries stored in secret files
  std::map<std::string, std::string> tokens_;              // user → token
  std::unique_ptr<ServerProcess> server_;
};

// Extracts an id field from a CLI JSON answer ("id", or a nested path), "" when absent.
std::string JsonId(const nlohmann::json& value, const char* key = "id");

}  // namespace backout::integration
