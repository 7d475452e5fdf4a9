// Audit rules whose violation is planted the way it happens in production: a rollback done with
// the tool itself, behind Backout's back. Each test expects the finding, remediates it through the
// use cases and expects the check clean. The Kubernetes API is the emulator driven by the real
// kubectl; git remotes and release folders are real, in a temporary folder. The clock is the
// system clock, because the tools stamp their records with it.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "emulator.h"
#include "fixtures.h"
#include "kubectl.h"
#include "providers/git/test_git.h"
#include "providers/registry.h"
#include "providers/releases/releases_settings.h"
#include "providers/releases/test_releases.h"
#include "store/system_clock.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

namespace emu = backout::emulators::kubernetes;
namespace fs = std::filesystem;
using providers::git::testing::Git;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Moves every creationTimestamp in an emulator snapshot `age` into the past. Reconciliation
// matches a tool entry to a change of the same version within 15 minutes, so the deploys a test
// plants must be older than that for a rollback right after them to count as one.
void Backdate(nlohmann::json& value, std::chrono::hours age) {
  if (value.is_object()) {
    for (auto& [key, child] : value.items()) {
      if (key == "creationTimestamp" && child.is_string()) {
        auto time = core::ParseTime(child.get<std::string>());
        if (time) child = core::FormatTime(*time - age);
      } else {
        Backdate(child, age);
      }
    }
  } else if (value.is_array()) {
    for (nlohmann::json& child : value) Backdate(child, age);
  }
}

// Sets the author and committer dates of the git commands run until it is destroyed.
class GitDate {
 public:
  explicit GitDate(core::Time time) {
    const std::string date = fmt::format(
        "@{} +0000",
        std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count());
    ::setenv("GIT_AUTHOR_DATE", date.c_str(), 1);
    ::setenv("GIT_COMMITTER_DATE", date.c_str(), 1);
  }
  ~GitDate() {
    ::unsetenv("GIT_AUTHOR_DATE");
    ::unsetenv("GIT_COMMITTER_DATE");
  }
};

// A control plane over SQLite on the system clock whose only service is the one `service_yaml`
// describes (a YAML list item under `services:`).
class AuditRealPathTest : public ::testing::Test {
 protected:
  void Start(const std::string& service, const std::string& service_yaml) {
    const fs::path dir = temp_.path();
    std::shared_ptr<const Settings> settings;
    ASSERT_NO_FATAL_FAILURE(BuildSettings(service, service_yaml, settings));

    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    auto store = store::OpenStore(fmt::format("sqlite:{}/backout.db", dir.string()),
                                  store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
    plane_ = std::make_unique<ControlPlane>(*store_, clock_, settings);
    ASSERT_TRUE(plane_->BootstrapAdmin().value_or(false));
    ASSERT_TRUE(plane_->RecordPolicy("system").has_value());
    std::string token = ReadFile(dir / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    auto admin = plane_->Authenticate(token);
    ASSERT_TRUE(admin.has_value()) << admin.error().message;
    admin_ = *admin;
    lead_ = MakeUser("lead-1", {core::Role::kEngineeringLead}, {});
    sre_ = MakeUser("sre-1", {core::Role::kDevopsEngineer}, {service});
    auditor_ = MakeUser("audit-1", {core::Role::kAuditor}, {});
  }

  // Builds the settings for a config whose only service is `service_yaml`.
  void BuildSettings(const std::string& service, const std::string& service_yaml,
                     std::shared_ptr<const Settings>& out) {
    const std::string text = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [{1}]}}
  - {{name: audit-1, roles: [auditor]}}
services:
{2})",
                                         temp_.path().string(), service, service_yaml);
    auto config = Config::Parse(text, "test.yaml", temp_.path());
    ASSERT_TRUE(config.has_value()) << config.error().message;
    ProviderMap providers;
    for (const ServiceConfig& configured : config->services) {
      auto provider = providers::Registry::Create(configured.provider.kind, configured.name,
                                                  configured.provider.settings, {}, clock_);
      ASSERT_TRUE(provider.has_value()) << provider.error().message;
      providers.emplace(configured.name,
                        std::shared_ptr<const providers::Provider>(*std::move(provider)));
    }
    auto settings = Settings::Create(*std::move(config), std::move(providers));
    ASSERT_TRUE(settings.has_value()) << settings.error().message;
    out = *settings;
  }

  Caller MakeUser(const std::string& name, std::vector<core::Role> roles,
                  std::vector<std::string> services) {
    auto created = plane_->CreateUser(
        admin_, NewUser{.name = name, .roles = std::move(roles), .services = std::move(services)});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    if (!created) return Caller{};
    auto caller = plane_->Authenticate(created->token);
    EXPECT_TRUE(caller.has_value()) << caller.error().message;
    return caller.value_or(Caller{});
  }

  // Reconciles `service` and returns the ids of the rollbacks it discovered in this run.
  std::vector<std::string> Reconcile(const std::string& service) {
    auto report = plane_->Reconcile(lead_, service);
    EXPECT_TRUE(report.has_value()) << report.error().message;
    return report ? report->discovered_rollbacks : std::vector<std::string>{};
  }

  std::vector<std::string> Rules() {
    auto findings = plane_->AuditCheck(auditor_, AuditRequest{});
    EXPECT_TRUE(findings.has_value()) << findings.error().message;
    if (!findings) return {"<audit check failed>"};
    std::vector<std::string> rules;
    for (const evidence::AuditFinding& finding : *findings) rules.push_back(finding.rule);
    return rules;
  }

  static bool Has(const std::vector<std::string>& rules, std::string_view rule) {
    return std::ranges::find(rules, rule) != rules.end();
  }

  static std::string Join(const std::vector<std::string>& rules) {
    return fmt::format("[{}]", fmt::join(rules, ", "));
  }

  testing::TempDir temp_;
  store::SystemClock clock_;
  // Declared before the control plane, so the plane's providers close their connections to it
  // before it stops.
  std::unique_ptr<emu::Emulator> emulator_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  Caller admin_, lead_, sre_, auditor_;
};

TEST_F(AuditRealPathTest, KubectlUndoIsFoundUntilDocumented) {
  auto started = emu::Emulator::Start(emu::FastEmulatorOptions());
  ASSERT_TRUE(started.has_value()) << started.error();
  emulator_ = std::move(*started);
  emu::Emulator* emulator = emulator_.get();
  const fs::path kubeconfig = temp_.path() / "kubeconfig";
  ASSERT_TRUE(emulator->WriteKubeconfig(kubeconfig));
  for (const char* image : {"example/web:v1", "example/web:v2"}) {
    ASSERT_TRUE(emu::ApplyRevision(*emulator, "default", emu::DeploymentSpec{.images = {image}}));
  }
  nlohmann::json state = emulator->cluster().Snapshot();
  Backdate(state, std::chrono::hours(2));
  emulator->cluster().Restore(state);
  ASSERT_NO_FATAL_FAILURE(Start("web", fmt::format(R"(  - name: web
    provider:
      kind: kubernetes
      kubeconfig: {}
      deployment: web
      soak: 0s
      poll_interval: 100ms
      readiness_timeout: 20s
)",
                                                   kubeconfig.string())));
  EXPECT_TRUE(Reconcile("web").empty());
  EXPECT_FALSE(Has(Rules(), "discovered_not_linked")) << Join(Rules());

  const emu::KubectlResult undo =
      emu::RunKubectl(kubeconfig, temp_.path(), {"rollout", "undo", "deployment/web"});
  ASSERT_EQ(undo.exit_code, 0) << undo.err;
  const emu::KubectlResult status = emu::RunKubectl(
      kubeconfig, temp_.path(), {"rollout", "status", "deployment/web", "--timeout=30s"});
  ASSERT_EQ(status.exit_code, 0) << status.err;

  const std::vector<std::string> found = Reconcile("web");
  ASSERT_EQ(found.size(), 1u);
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "discovered_not_linked")) << Join(rules);

  auto documented = plane_->DocumentDiscoveredRollback(
      lead_, found[0], "sre-1 undid v2 by hand during the outage; agreed on the bridge call");
  ASSERT_TRUE(documented.has_value()) << documented.error().message;
  rules = Rules();
  EXPECT_FALSE(Has(rules, "discovered_not_linked")) << Join(rules);
}

TEST_F(AuditRealPathTest, PushedRevertIsFoundUntilIncidentDocumented) {
  const fs::path remote = temp_.path() / "remote.git";
  const fs::path clone = temp_.path() / "clone";
  Git(temp_.path(), {"init", "-q", "--bare", "-b", "main", remote.string()});
  Git(temp_.path(), {"clone", "-q", remote.string(), clone.string()});
  Git(clone, {"symbolic-ref", "HEAD", "refs/heads/main"});
  std::string last_deploy;
  {
    const GitDate two_hours_ago(clock_.Now() - std::chrono::hours(2));
    for (const char* version : {"v40", "v41", "v42"}) {
      providers::git::testing::WriteFile(clone / "apps/checkout/values.yaml",
                                         providers::git::testing::ValuesYaml(version));
      Git(clone, {"add", "-A"});
      Git(clone, {"commit", "-q", "-m", fmt::format("Deploy checkout {}", version)});
      Git(clone, {"push", "-q", "origin", "main"});
      last_deploy = Git(clone, {"rev-parse", "HEAD"});
    }
  }
  ASSERT_NO_FATAL_FAILURE(
      Start("checkout", fmt::format(R"(  - name: checkout
    provider:
      kind: git
      repository: {0}
      branch: main
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: {1}
)",
                                    remote.string(), (temp_.path() / "work").string())));
  EXPECT_TRUE(Reconcile("checkout").empty());

  Git(clone, {"revert", "--no-edit", last_deploy});
  Git(clone, {"push", "-q", "origin", "main"});
  const std::vector<std::string> found = Reconcile("checkout");
  ASSERT_EQ(found.size(), 1u);
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "discovered_not_linked")) << Join(rules);

  // Linking alone is not enough: the incident must be documented.
  auto incident = plane_->OpenIncident(
      lead_, NewIncident{.service = "checkout", .title = "v42 reverted by hand"});
  ASSERT_TRUE(incident.has_value()) << incident.error().message;
  ASSERT_TRUE(plane_->LinkDiscoveredRollback(lead_, found[0], incident->id).has_value());
  rules = Rules();
  EXPECT_TRUE(Has(rules, "discovered_not_linked")) << Join(rules);

  ASSERT_TRUE(plane_->Assess(lead_, incident->id, {}).has_value());
  auto decided = plane_->Decide(
      lead_, incident->id,
      DecisionRequest{.kind = core::DecisionKind::kNoGo, .reason = "already reverted by hand"});
  ASSERT_TRUE(decided.has_value()) << decided.error().message;
  auto documented =
      plane_->Document(sre_, incident->id, {.root_cause = "v42 broke checkout; reverted in git"});
  ASSERT_TRUE(documented.has_value()) << documented.error().message;
  rules = Rules();
  EXPECT_FALSE(Has(rules, "discovered_not_linked")) << Join(rules);
}

// Not an audit rule: the git provider's own rule, run for real, must not choose the suspect.
TEST_F(AuditRealPathTest, GitProviderRuleNeverTargetsSuspect) {
  const fs::path remote = temp_.path() / "remote.git";
  const fs::path clone = temp_.path() / "clone";
  Git(temp_.path(), {"init", "-q", "--bare", "-b", "main", remote.string()});
  Git(temp_.path(), {"clone", "-q", remote.string(), clone.string()});
  Git(clone, {"symbolic-ref", "HEAD", "refs/heads/main"});
  for (const char* version : {"v4", "v5", "v6"}) {
    providers::git::testing::WriteFile(clone / "apps/checkout/values.yaml",
                                       providers::git::testing::ValuesYaml(version));
    Git(clone, {"add", "-A"});
    Git(clone, {"commit", "-q", "-m", fmt::format("Deploy checkout {}", version)});
    Git(clone, {"push", "-q", "origin", "main"});
  }
  ASSERT_NO_FATAL_FAILURE(
      Start("checkout", fmt::format(R"(  - name: checkout
    provider:
      kind: git
      repository: {0}
      branch: main
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: {1}
)",
                                    remote.string(), (temp_.path() / "work").string())));

  // v5 is recorded and suspected. v6 was pushed by hand without being recorded, so the provider
  // rule (the version before the live commit) picks v5.
  auto v4 = plane_->RecordChange(sre_, NewChange{.service = "checkout", .version = "v4"});
  ASSERT_TRUE(v4.has_value()) << v4.error().message;
  auto v5 = plane_->RecordChange(
      sre_, NewChange{.service = "checkout", .version = "v5", .previous_version = "v4"});
  ASSERT_TRUE(v5.has_value()) << v5.error().message;
  auto incident = plane_->OpenIncident(
      lead_,
      NewIncident{.service = "checkout", .title = "errors after v5", .suspected_change = v5->id});
  ASSERT_TRUE(incident.has_value()) << incident.error().message;

  auto assessed = plane_->Assess(lead_, incident->id, {});
  ASSERT_FALSE(assessed.has_value()) << assessed->assessment->plan.dump();
  EXPECT_EQ(assessed.error().code, core::ErrorCode::kFailedPrecondition);
  const std::string& message = assessed.error().message;
  EXPECT_NE(message.find("rollback target v5"), std::string::npos) << message;
  EXPECT_NE(message.find("suspected change " + v5->id), std::string::npos) << message;
  EXPECT_NE(message.find("--target VERSION"), std::string::npos) << message;

  // The fix the message names: a target from before the suspect.
  auto named = plane_->Assess(lead_, incident->id, AssessRequest{.target_version = "v4"});
  ASSERT_TRUE(named.has_value()) << named.error().message;
  EXPECT_EQ(named->assessment->plan.value("target_version", ""), "v4");
}

// Not an audit rule: two commits pushed in the same second. The provider rule's target, the first
// of them, was deployed before the suspect, the second, in git's first-parent order, so the check
// of a target chosen by rule accepts it as it accepts the same version named by a person.
TEST_F(AuditRealPathTest, SameSecondCommitsKeepGitOrder) {
  const fs::path remote = temp_.path() / "remote.git";
  const fs::path clone = temp_.path() / "clone";
  Git(temp_.path(), {"init", "-q", "--bare", "-b", "main", remote.string()});
  Git(temp_.path(), {"clone", "-q", remote.string(), clone.string()});
  Git(clone, {"symbolic-ref", "HEAD", "refs/heads/main"});
  auto deploy = [&](const char* version) {
    providers::git::testing::WriteFile(clone / "apps/checkout/values.yaml",
                                       providers::git::testing::ValuesYaml(version));
    Git(clone, {"add", "-A"});
    Git(clone, {"commit", "-q", "-m", fmt::format("Deploy checkout {}", version)});
    Git(clone, {"push", "-q", "origin", "main"});
  };
  {
    const GitDate three_hours_ago(clock_.Now() - std::chrono::hours(3));
    deploy("v1");
  }
  {
    const GitDate two_hours_ago(clock_.Now() - std::chrono::hours(2));
    deploy("v2");
    deploy("v3");
  }
  ASSERT_NO_FATAL_FAILURE(
      Start("checkout", fmt::format(R"(  - name: checkout
    provider:
      kind: git
      repository: {0}
      branch: main
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: {1}
)",
                                    remote.string(), (temp_.path() / "work").string())));

  auto report = plane_->Reconcile(lead_, "checkout");
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->discovered_changes.size(), 3u);
  auto v2 = plane_->GetChange(lead_, report->discovered_changes[1]);
  auto v3 = plane_->GetChange(lead_, report->discovered_changes[2]);
  ASSERT_TRUE(v2.has_value()) << v2.error().message;
  ASSERT_TRUE(v3.has_value()) << v3.error().message;
  ASSERT_EQ(v2->version, "v2");
  ASSERT_EQ(v3->version, "v3");
  ASSERT_EQ(v2->time, v3->time);

  auto incident = plane_->OpenIncident(
      lead_,
      NewIncident{.service = "checkout", .title = "errors after v3", .suspected_change = v3->id});
  ASSERT_TRUE(incident.has_value()) << incident.error().message;
  auto chosen = plane_->Assess(lead_, incident->id, {});
  ASSERT_TRUE(chosen.has_value()) << chosen.error().message;
  EXPECT_EQ(chosen->assessment->plan.value("target_version", ""), "v2");
  auto named = plane_->Assess(lead_, incident->id, AssessRequest{.target_version = "v2"});
  ASSERT_TRUE(named.has_value()) << named.error().message;
  EXPECT_EQ(named->assessment->plan.value("target_version", ""), "v2");

  // A person who names the suspect's own version is still rejected.
  auto suspect = plane_->Assess(lead_, incident->id, AssessRequest{.target_version = "v3"});
  ASSERT_FALSE(suspect.has_value());
  EXPECT_EQ(suspect.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(AuditRealPathTest, HandSwitchedCurrentIsFoundUntilDocumented) {
  namespace rel = providers::releases;
  const fs::path root = temp_.path() / "site";
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  rel::testing::MakeRelease(root, "v1", true, now - 7'200, std::string(rel::kDefaultMarker));
  rel::testing::MakeRelease(root, "v2", true, now - 3'600, std::string(rel::kDefaultMarker));
  rel::testing::PointCurrent(root, (root / "releases" / "v2").string());
  ASSERT_NO_FATAL_FAILURE(Start("site", fmt::format(R"(  - name: site
    provider:
      kind: releases
      root: {}
)",
                                                    root.string())));
  EXPECT_TRUE(Reconcile("site").empty());

  // What an operator does by hand: point `current` back at the previous release.
  const std::string command = fmt::format("ln -sfn '{}' '{}'", (root / "releases" / "v1").string(),
                                          (root / "current").string());
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::vector<std::string> found = Reconcile("site");
  ASSERT_EQ(found.size(), 1u);
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "discovered_not_linked")) << Join(rules);

  ASSERT_TRUE(
      plane_->DocumentDiscoveredRollback(lead_, found[0], "v2 broke the login page").has_value());
  rules = Rules();
  EXPECT_FALSE(Has(rules, "discovered_not_linked")) << Join(rules);
}

// A service whose provider cannot read the tool's history is flagged at start, and the flag
// clears once a reload gives it a `history` command.
TEST_F(AuditRealPathTest, UnreconcilableServiceIsFoundUntilHistoryAdded) {
  const fs::path script = temp_.path() / "rollback.sh";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  fs::permissions(script, fs::perms::owner_all);
  const fs::path history = temp_.path() / "history.sh";
  std::ofstream(history) << "#!/bin/sh\nexit 0\n";
  fs::permissions(history, fs::perms::owner_all);
  const std::string legacy = fmt::format(R"(  - name: legacy
    provider:
      kind: command
      run: [{}]
)",
                                         script.string());
  ASSERT_NO_FATAL_FAILURE(Start("legacy", legacy));
  ASSERT_TRUE(plane_->ScheduleReconciliation().has_value());
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "not_reconcilable")) << Join(rules);

  std::shared_ptr<const Settings> fixed;
  ASSERT_NO_FATAL_FAILURE(BuildSettings(
      "legacy", legacy + fmt::format("      history: [{}]\n", history.string()), fixed));
  ASSERT_TRUE(plane_->Reload(fixed, "admin").has_value());
  ASSERT_TRUE(plane_->ScheduleReconciliation().has_value());
  rules = Rules();
  EXPECT_FALSE(Has(rules, "not_reconcilable")) << Join(rules);
}

}  // namespace
}  // namespace backout::app
