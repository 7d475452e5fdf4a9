#include "deployment.h"

#include <signal.h>

#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace backout::integration {
namespace {

// A string that appears nowhere else: a readable prefix and 128 random bits.
std::string Canary(const std::string& prefix) {
  std::random_device random;
  return fmt::format("{}-{:08x}{:08x}{:08x}{:08x}", prefix, random(), random(), random(), random());
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

constexpr auto kExecutable = std::filesystem::perms::owner_all;

}  // namespace

Deployment::Deployment(DeploymentOptions options) : options_(std::move(options)) {
  database_ = options_.database.empty() ? "sqlite:" + (folder() / "backout.db").string()
                                        : options_.database;
  port_ = FreeLoopbackPort();
  secret_environment_["BACKOUT_TEST_METRICS_TOKEN"] = Canary("canary-metrics-token");
  secret_environment_["BACKOUT_TEST_RUNBOOK_KEY"] = Canary("canary-runbook-key");
  file_secrets_.push_back(Canary("canary-check-password"));
  WriteScripts();
  WriteConfig();
  server_ =
      std::make_unique<ServerProcess>(folder() / "backout.yaml", server_log(), secret_environment_);
}

Deployment::~Deployment() = default;

void Deployment::WriteScripts() {
  const std::string dir = folder().string();
  WriteFile(version_file(), "v2\n");

  // The rollback runbook appends one line per run, so the tests can count runs, then switches
  // the version the status script reports. It fails for the target version "broken".
  std::string rollback = fmt::format(
      "#!/bin/sh\n"
      "set -eu\n"
      "if [ -z \"${{RUNBOOK_API_KEY:-}}\" ]; then echo 'RUNBOOK_API_KEY is not set' >&2; exit 3; "
      "fi\n"
      "echo \"rollback to ${{BACKOUT_TARGET_VERSION}} by ${{BACKOUT_EXECUTOR}} approved by "
      "${{BACKOUT_APPROVER:-nobody}}\" >> '{0}/runbook.log'\n"
      "if [ \"${{BACKOUT_TARGET_VERSION}}\" = broken ]; then echo 'no release broken' >&2; exit 4; "
      "fi\n",
      dir);
  if (options_.runbook_sleep_seconds > 0) {
    rollback += fmt::format("sleep {}\n", options_.runbook_sleep_seconds);
  }
  rollback += fmt::format(
      "printf '%s\\n' \"${{BACKOUT_TARGET_VERSION}}\" > '{0}/version.tmp'\n"
      "mv '{0}/version.tmp' '{0}/version'\n"
      "echo \"checkout now runs ${{BACKOUT_TARGET_VERSION}}\"\n",
      dir);
  WriteFile(folder() / "rollback.sh", rollback, kExecutable);

  WriteFile(folder() / "status.sh", fmt::format("#!/bin/sh\ncat '{}/version'\n", dir), kExecutable);

  // The smoke check passes when the password arrived and checkout runs v1.
  WriteFile(folder() / "smoke-check.sh",
            fmt::format("#!/bin/sh\n"
                        "if [ -z \"${{CHECK_PASSWORD:-}}\" ]; then echo 'no password' >&2; exit 3; "
                        "fi\n"
                        "grep -qx v1 '{}/version'\n",
                        dir),
            kExecutable);
  WriteFile(folder() / "check-password", file_secrets_[0] + "\n");
}

void Deployment::WriteConfig() {
  const std::string dir = folder().string();
  const std::string status =
      options_.with_status ? fmt::format("      status: ['{}/status.sh']\n", dir) : "";
  const std::string checks = !options_.checkout_checks.empty()
                                 ? options_.checkout_checks
                                 : fmt::format(
                                       "      - name: smoke\n"
                                       "        kind: command\n"
                                       "        run: ['{0}/smoke-check.sh']\n"
                                       "        timeout: 30s\n"
                                       "        env:\n"
                                       "          CHECK_PASSWORD: file:{0}/check-password\n",
                                       dir);
  const std::string config = fmt::format(
      "listen: 127.0.0.1:{port}\n"
      "database: {database}\n"
      "data_dir: {dir}/data\n"
      "metrics:\n"
      "  token: env:BACKOUT_TEST_METRICS_TOKEN\n"
      "users:\n"
      "  - {{name: lead-1, roles: [engineering-lead]}}\n"
      "  - {{name: lead-2, roles: [engineering-lead, devops-engineer], services: [checkout]}}\n"
      "  - {{name: sre-1, roles: [devops-engineer], services: [checkout]}}\n"
      "  - {{name: sre-2, roles: [devops-engineer], services: [checkout, payments]}}\n"
      "  - {{name: ci-1, roles: [ci]}}\n"
      "services:\n"
      "  - name: checkout\n"
      "    environment: production\n"
      "    customer_facing: true\n"
      "    depends_on: [payments]\n"
      "    provider:\n"
      "      kind: command\n"
      "      run: ['{dir}/rollback.sh']\n"
      "{status}"
      "      timeout: 60s\n"
      "      env:\n"
      "        RUNBOOK_API_KEY: env:BACKOUT_TEST_RUNBOOK_KEY\n"
      "    checks:\n"
      "{checks}"
      "  - name: payments\n"
      "    provider:\n"
      "      kind: command\n"
      "      run: ['{dir}/rollback.sh']\n",
      fmt::arg("port", port_), fmt::arg("database", database_), fmt::arg("dir", dir),
      fmt::arg("status", status), fmt::arg("checks", checks));
  WriteFile(folder() / "backout.yaml", config);
}

bool Deployment::Start() { return server_->Start(port_); }

void Deployment::Stop() { server_->Stop(SIGTERM); }

void Deployment::Kill() { server_->Stop(SIGKILL); }

std::string Deployment::url() const { return fmt::format("http://127.0.0.1:{}", port_); }

std::string Deployment::AdminToken() const { return Trim(ReadFile(data_dir() / "admin.token")); }

bool Deployment::Grant(const std::string& name, const std::vector<std::string>& roles,
                       const std::vector<std::string>& services) {
  std::vector<std::string> args = {"user", "create", name};
  for (const std::string& role : roles) {
    args.insert(args.end(), {"--role", role});
  }
  for (const std::string& service : services) {
    args.insert(args.end(), {"--service", service});
  }
  const CliResult result = Cli("admin", args);
  const std::string token =
      result.Json().is_object() ? result.Json().value("token", std::string()) : "";
  if (result.exit_code != 0 || token.empty()) {
    return false;
  }
  tokens_[name] = token;
  return true;
}

CliResult Deployment::Cli(const std::string& user, std::vector<std::string> args) {
  args.insert(args.end(), {"-o", "json"});
  const std::string token = user == "admin" ? AdminToken() : tokens_.at(user);
  return RunCli(args, {{"BACKOUT_URL", url()}, {"BACKOUT_TOKEN", token}}, folder());
}

CliResult Deployment::RawCli(std::vector<std::string> args,
                             const std::map<std::string, std::string>& environment) {
  std::map<std::string, std::string> merged = {{"BACKOUT_URL", url()}, {"BACKOUT_TOKEN", ""}};
  for (const auto& [name, value] : environment) {
    merged[name] = value;
  }
  return RunCli(args, merged, folder());
}

std::vector<std::string> Deployment::Secrets() const {
  std::vector<std::string> secrets;
  for (const auto& [name, value] : secret_environment_) {
    secrets.push_back(value);
  }
  secrets.insert(secrets.end(), file_secrets_.begin(), file_secrets_.end());
  for (const auto& [user, token] : tokens_) {
    secrets.push_back(token);
  }
  if (const std::string admin = AdminToken(); !admin.empty()) {
    secrets.push_back(admin);
  }
  return secrets;
}

std::string JsonId(const nlohmann::json& value, const char* key) {
  if (!value.is_object() || !value.contains(key)) {
    return "";
  }
  const nlohmann::json& id = value[key];
  if (id.is_string()) {
    return id.get<std::string>();
  }
  return id.is_number_integer() ? id.dump() : "";
}

}  // namespace backout::integration
