// Evidence export and audit checks through the real use cases, job runner and command provider.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_runner.h"
#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "evidence/population.h"
#include "providers/registry.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using std::chrono::hours;

void WriteFile(const std::filesystem::path& path, const std::string& text, bool executable) {
  std::ofstream(path) << text;
  if (executable) ::chmod(path.c_str(), 0755);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// decision.json of an incident bundle, parsed.
nlohmann::json DecisionJson(const std::string& bundle) {
  auto files = evidence::ReadTarGz(bundle);
  EXPECT_TRUE(files.has_value()) << files.error().message;
  if (!files) return nullptr;
  for (const evidence::ArchiveFile& file : *files) {
    if (file.path == "decision.json") return nlohmann::json::parse(file.content);
  }
  ADD_FAILURE() << "the bundle has no decision.json";
  return nullptr;
}

// A control plane over SQLite with one service, checkout, whose runbook and checks are shell
// scripts, on a manual clock so tests can move time.
class EvidenceUseCaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& dir = temp_.path();
    WriteFile(dir / "live", "v2\n", false);
    WriteFile(dir / "rollback.sh",
              fmt::format("#!/bin/sh\necho \"$BACKOUT_TARGET_VERSION\" > {0}/live\n", dir.string()),
              true);
    WriteFile(dir / "status.sh", fmt::format("#!/bin/sh\ncat {}/live\n", dir.string()), true);
    WriteFile(dir / "check.sh", "#!/bin/sh\nexit 0\n", true);
    config_text_ = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: lead-2, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [checkout]}}
  - {{name: audit-1, roles: [auditor]}}
  - {{name: ci-bot, roles: [ci]}}
services:
  - name: checkout
    provider:
      kind: command
      run: [{0}/rollback.sh]
      status: [{0}/status.sh]
      output_dir: {0}
    checks:
      - name: smoke
        kind: command
        run: [{0}/check.sh]
)",
                               dir.string());
    ASSERT_NO_FATAL_FAILURE(Configure(config_text_));

    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    signer_ = *signer;
    auto store = store::OpenStore(fmt::format("sqlite:{}/backout.db", dir.string()),
                                  store::StoreOptions{.clock = &clock_, .signer = signer_});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
    plane_ = std::make_unique<ControlPlane>(*store_, clock_, settings_);
    plane_->SetEvidenceSigner(signer_);
    ASSERT_TRUE(plane_->BootstrapAdmin().value_or(false));
    ASSERT_TRUE(plane_->RecordPolicy("system").has_value());
    auto admin = plane_->Authenticate(Trim(ReadFile(dir / "data" / "admin.token")));
    ASSERT_TRUE(admin.has_value()) << admin.error().message;
    admin_ = *admin;
    lead_ = MakeUser("lead-1", {core::Role::kEngineeringLead}, {});
    lead2_ = MakeUser("lead-2", {core::Role::kEngineeringLead}, {});
    sre_ = MakeUser("sre-1", {core::Role::kDevopsEngineer}, {"checkout"});
    auditor_ = MakeUser("audit-1", {core::Role::kAuditor}, {});
    ci_ = MakeUser("ci-bot", {core::Role::kCi}, {});
    runner_ = std::make_unique<JobRunner>(
        *plane_, JobRunnerOptions{.owner = "test-worker",
                                  .readiness_attempts = 1,
                                  .readiness_interval = std::chrono::milliseconds(0)});
  }

  void Configure(const std::string& text) {
    auto config = Config::Parse(text, "test.yaml", temp_.path());
    ASSERT_TRUE(config.has_value()) << config.error().message;
    ProviderMap providers;
    for (const ServiceConfig& service : config->services) {
      auto provider = providers::Registry::Create(service.provider.kind, service.name,
                                                  service.provider.settings, {}, clock_);
      ASSERT_TRUE(provider.has_value()) << provider.error().message;
      providers.emplace(service.name,
                        std::shared_ptr<const providers::Provider>(*std::move(provider)));
    }
    auto settings = Settings::Create(*std::move(config), std::move(providers));
    ASSERT_TRUE(settings.has_value()) << settings.error().message;
    settings_ = *settings;
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

  void Tick(std::chrono::microseconds step = std::chrono::seconds(1)) { clock_.Advance(step); }

  std::string OpenWithChanges() {
    auto v1 = plane_->RecordChange(ci_, NewChange{.service = "checkout", .version = "v1"});
    EXPECT_TRUE(v1.has_value()) << v1.error().message;
    EXPECT_TRUE(plane_->VerifyChange(ci_, v1->id, ChangeVerification{.passed = true}));
    Tick();
    auto v2 = plane_->RecordChange(
        ci_, NewChange{.service = "checkout", .version = "v2", .previous_version = "v1"});
    EXPECT_TRUE(v2.has_value());
    Tick();
    auto incident = plane_->OpenIncident(lead_, NewIncident{.service = "checkout",
                                                            .severity = core::Severity::kSev2,
                                                            .title = "errors after v2",
                                                            .suspected_change = v2->id,
                                                            .external_ticket = "OPS-7"});
    EXPECT_TRUE(incident.has_value()) << incident.error().message;
    Tick();
    return incident ? incident->id : "";
  }

  // Opens, assesses, approves and rolls back; returns the incident id.
  std::string RolledBack() {
    const std::string id = OpenWithChanges();
    EXPECT_TRUE(plane_->Assess(lead_, id, {}).has_value());
    Tick();
    auto decided = plane_->Decide(
        lead_, id, DecisionRequest{.kind = core::DecisionKind::kGo, .reason = "v2 is broken"});
    EXPECT_TRUE(decided.has_value()) << decided.error().message;
    Tick();
    auto rollback = plane_->RequestRollback(sre_, id, {});
    EXPECT_TRUE(rollback.has_value()) << rollback.error().message;
    RunJobs();
    Tick();
    return id;
  }

  // Goes on to validation, documentation, review and an action item.
  void FollowUp(const std::string& id) {
    ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
    RunJobs();
    Tick();
    ASSERT_TRUE(plane_->Document(sre_, id, {.root_cause = "bad pool size"}).has_value());
    ASSERT_TRUE(plane_->WriteReview(lead_, id, std::nullopt).has_value());
    ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "completed"}).has_value());
    ASSERT_TRUE(plane_
                    ->AddActionItem(lead_, id,
                                    NewActionItem{.title = "add a canary",
                                                  .owner = "sre-1",
                                                  .due = core::ParseDate("2027-01-31").value()})
                    .has_value());
    Tick();
  }

  void RunJobs() {
    while (true) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  // The rules of the open findings as of `at` (now when empty).
  std::vector<std::string> Rules(std::optional<core::Time> at = std::nullopt) {
    auto findings = plane_->AuditCheck(auditor_, AuditRequest{.at = at});
    EXPECT_TRUE(findings.has_value()) << findings.error().message;
    std::vector<std::string> rules;
    if (!findings) return {"<audit check failed>"};
    for (const evidence::AuditFinding& finding : *findings) {
      rules.push_back(finding.rule);
    }
    return rules;
  }

  static bool Has(const std::vector<std::string>& rules, std::string_view rule) {
    return std::find(rules.begin(), rules.end(), rule) != rules.end();
  }

  static std::string Join(const std::vector<std::string>& rules) {
    return fmt::format("[{}]", fmt::join(rules, ", "));
  }

  // Replaces the configuration the way a reload does, and records the new policy.
  void Reload(const std::string& text) {
    ASSERT_NO_FATAL_FAILURE(Configure(text));
    ASSERT_TRUE(plane_->Reload(settings_, "admin").has_value());
  }

  // Rewrites the stored incident through `edit`, as a record imported from elsewhere would be.
  void EditIncident(const std::string& id, const std::function<void(nlohmann::json&)>& edit) {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto object = tx.Get("incident", id);
      if (!object) return std::unexpected(object.error());
      edit((*object)->body);
      return tx.Put(**object);
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  core::Time Now() const { return clock_.Now(); }

  testing::TempDir temp_;
  core::ManualClock clock_{core::ParseTime("2026-12-04T10:00:00Z").value()};
  std::string config_text_;
  std::shared_ptr<const Settings> settings_;
  std::shared_ptr<ledger::Signer> signer_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<JobRunner> runner_;
  Caller admin_, lead_, lead2_, sre_, auditor_, ci_;
};

TEST_F(EvidenceUseCaseTest, ExportOfDocumentedIncidentVerifies) {
  const std::string id = RolledBack();
  ASSERT_NO_FATAL_FAILURE(FollowUp(id));
  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyBundle(*bundle, {.trusted_key = signer_->public_key()});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->items.size(), 4u);
  for (const evidence::EvidenceItem& item : report->items) {
    EXPECT_TRUE(item.present) << item.number << " " << item.name << ": " << item.detail;
  }
}

TEST_F(EvidenceUseCaseTest, ReExportAfterOtherWorkIsIdentical) {
  const std::string id = RolledBack();
  ASSERT_NO_FATAL_FAILURE(FollowUp(id));
  auto first = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  Tick(hours(2));
  ASSERT_FALSE(OpenWithChanges().empty());
  auto second = plane_->ExportEvidence(lead_, id);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*first, *second);
}

TEST_F(EvidenceUseCaseTest, ExportWithoutValidationShowsItemThreeMissing) {
  const std::string id = RolledBack();
  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyBundle(*bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->items.size(), 4u);
  EXPECT_FALSE(report->items[2].present);
  EXPECT_TRUE(report->items[3].present) << report->items[3].detail;
}

// A failing smoke check makes the next validation find the service not recovered.
void FailChecks(const std::filesystem::path& dir) {
  WriteFile(dir / "check.sh", "#!/bin/sh\nexit 1\n", true);
}

TEST_F(EvidenceUseCaseTest, LaterNoGoKeepsRollbackAuthorized) {
  const std::string id = RolledBack();
  FailChecks(temp_.path());
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  auto no_go = plane_->Decide(
      lead_, id, DecisionRequest{.kind = core::DecisionKind::kNoGo, .reason = "fix forward"});
  ASSERT_TRUE(no_go.has_value()) << no_go.error().message;
  ASSERT_EQ(no_go->state, core::IncidentState::kDocumenting);

  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyBundle(*bundle, {.trusted_key = signer_->public_key()});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->items.size(), 4u);
  const evidence::EvidenceItem& authorization = report->items[0];
  EXPECT_TRUE(authorization.present) << authorization.detail;
  EXPECT_NE(authorization.detail.find("go by lead-1"), std::string::npos) << authorization.detail;
  EXPECT_NE(authorization.detail.find("later decisions: no_go by lead-1"), std::string::npos)
      << authorization.detail;
  EXPECT_TRUE(report->items[1].present) << report->items[1].detail;
  EXPECT_FALSE(report->items[2].present) << "the service was not recovered";

  const nlohmann::json decision = DecisionJson(*bundle);
  EXPECT_FALSE(decision["go"].get<bool>());
  EXPECT_TRUE(decision["approved_digest_matches_assessment"].get<bool>()) << decision.dump(2);
  ASSERT_EQ(decision["rollback_authorizations"].size(), 1u) << decision.dump(2);
  const nlohmann::json& rollback = decision["rollback_authorizations"][0];
  EXPECT_TRUE(rollback["authorized"].get<bool>()) << rollback.dump(2);
  EXPECT_TRUE(rollback["approved_digest_matches_plan"].get<bool>()) << rollback.dump(2);
  EXPECT_EQ(rollback["authorized_by"]["kind"], "go");
  ASSERT_EQ(decision["later_decisions"].size(), 1u) << decision.dump(2);
  EXPECT_EQ(decision["later_decisions"][0]["kind"], "no_go");

  // The no-go ended the rollback attempts after the validation, so the audit has no
  // not_recovered finding, and no finding advises a validation that documenting rejects.
  auto findings = plane_->AuditCheck(auditor_, AuditRequest{.at = Now() + hours(24 * 8)});
  ASSERT_TRUE(findings.has_value()) << findings.error().message;
  for (const evidence::AuditFinding& finding : *findings) {
    EXPECT_NE(finding.rule, "not_recovered") << finding.message;
    EXPECT_EQ(finding.message.find("incident validate"), std::string::npos) << finding.message;
    if (finding.rule == "undocumented") {
      EXPECT_NE(finding.message.find("run `backout incident document " + id + "`"),
                std::string::npos)
          << finding.message;
    }
  }
}

// Between the failed validation and the next decision the incident is assessing, which rejects a
// validation, so the not_recovered finding advises what assessing accepts.
TEST_F(EvidenceUseCaseTest, NotRecoveredAdviceFollowsState) {
  const std::string id = RolledBack();
  auto findings = plane_->AuditCheck(auditor_, AuditRequest{});
  ASSERT_TRUE(findings.has_value()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u) << Join(Rules());
  EXPECT_EQ((*findings)[0].rule, "not_recovered");
  EXPECT_NE((*findings)[0].message.find("run `backout incident validate " + id + "`"),
            std::string::npos)
      << (*findings)[0].message;

  FailChecks(temp_.path());
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  findings = plane_->AuditCheck(auditor_, AuditRequest{});
  ASSERT_TRUE(findings.has_value()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u) << Join(Rules());
  const std::string& message = (*findings)[0].message;
  EXPECT_EQ((*findings)[0].rule, "not_recovered");
  EXPECT_NE(message.find("found not_recovered"), std::string::npos) << message;
  EXPECT_NE(message.find("is assessing, which does not accept validate yet"), std::string::npos)
      << message;
  EXPECT_NE(message.find("`backout incident decide " + id + " --no-go --reason TEXT`"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("; run `backout incident validate"), std::string::npos) << message;
  EXPECT_NE(message.find("once it is validating, run `backout incident validate " + id + "`"),
            std::string::npos)
      << message;
}

// A decision made before any rollback is the only one to judge: a no-go after a go leaves
// nothing executed and nothing authorized.
TEST_F(EvidenceUseCaseTest, NoGoBeforeRollbackLeavesNothingAuthorized) {
  const std::string id = OpenWithChanges();
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  Tick();
  ASSERT_TRUE(plane_->Decide(lead_, id, DecisionRequest{.reason = "v2 is broken"}).has_value());
  Tick();
  ASSERT_TRUE(
      plane_
          ->Decide(lead_, id,
                   DecisionRequest{.kind = core::DecisionKind::kNoGo, .reason = "the fix is ready"})
          .has_value());
  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyBundle(*bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_FALSE(report->items[0].present);
  EXPECT_NE(report->items[0].detail.find("no rollback was executed, and the latest decision is "
                                         "the no_go by lead-1"),
            std::string::npos)
      << report->items[0].detail;
  const nlohmann::json decision = DecisionJson(*bundle);
  EXPECT_TRUE(decision["rollback_authorizations"].empty()) << decision.dump(2);
  EXPECT_TRUE(decision["later_decisions"].empty()) << decision.dump(2);
  const auto rules = Rules(Now() + hours(24 * 10));
  EXPECT_TRUE(rules.empty()) << Join(rules);
}

// Two rollbacks, each after its own go on its own assessment: each is judged by its own go, and
// the first one's failed validation is settled by the second one's recovery.
TEST_F(EvidenceUseCaseTest, EachRollbackJudgedByItsOwnGo) {
  const std::string id = RolledBack();
  FailChecks(temp_.path());
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  WriteFile(temp_.path() / "check.sh", "#!/bin/sh\nexit 0\n", true);
  WriteFile(temp_.path() / "live", "v2\n", false);  // the tool rolled forward again meanwhile
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  Tick();
  ASSERT_TRUE(plane_->Decide(lead2_, id, DecisionRequest{.reason = "try again"}).has_value());
  Tick();
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  RunJobs();
  Tick();
  ASSERT_NO_FATAL_FAILURE(FollowUp(id));

  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyBundle(*bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  for (const evidence::EvidenceItem& item : report->items) {
    EXPECT_TRUE(item.present) << item.number << " " << item.name << ": " << item.detail;
  }
  const nlohmann::json decision = DecisionJson(*bundle);
  ASSERT_EQ(decision["rollback_authorizations"].size(), 2u) << decision.dump(2);
  const nlohmann::json& first = decision["rollback_authorizations"][0];
  const nlohmann::json& second = decision["rollback_authorizations"][1];
  EXPECT_TRUE(first["authorized"].get<bool>()) << first.dump(2);
  EXPECT_TRUE(second["authorized"].get<bool>()) << second.dump(2);
  EXPECT_EQ(first["authorized_by"]["decider"], "lead-1");
  EXPECT_EQ(second["authorized_by"]["decider"], "lead-2");
  EXPECT_NE(first["authorized_by"]["approved_digest"], second["authorized_by"]["approved_digest"]);
  EXPECT_TRUE(decision["approved_digest_matches_assessment"].get<bool>());
  EXPECT_TRUE(decision["later_decisions"].empty()) << decision.dump(2);

  const auto rules = Rules(Now() + hours(24 * 10));
  EXPECT_TRUE(rules.empty()) << Join(rules);
}

TEST_F(EvidenceUseCaseTest, ExecutorMayNotExport) {
  const std::string id = RolledBack();
  auto bundle = plane_->ExportEvidence(sre_, id);
  ASSERT_FALSE(bundle.has_value());
  EXPECT_EQ(bundle.error().code, core::ErrorCode::kPermissionDenied);
}

TEST_F(EvidenceUseCaseTest, AuditOfCompleteIncidentIsClean) {
  const std::string id = RolledBack();
  ASSERT_NO_FATAL_FAILURE(FollowUp(id));
  const auto rules = Rules(Now() + hours(24 * 10));
  EXPECT_TRUE(rules.empty()) << Join(rules);
}

TEST_F(EvidenceUseCaseTest, AuditFindsMissingValidationUntilValidated) {
  const std::string id = RolledBack();
  EXPECT_TRUE(Has(Rules(), "not_recovered")) << Join(Rules());
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  EXPECT_FALSE(Has(Rules(), "not_recovered")) << Join(Rules());
}

// An interrupted rollback that a person confirmed as happened acted on the service, so it needs
// a `recovered` validation like any other.
TEST_F(EvidenceUseCaseTest, AuditFindsConfirmedRollbackNotValidated) {
  const std::string id = RolledBack();
  for (const bool happened : {true, false}) {
    EditIncident(id, [&](nlohmann::json& body) {
      nlohmann::json& rollback = body["rollbacks"][0];
      rollback["outcome"] = "interrupted";
      rollback["confirmation"] = {{"happened", happened},
                                  {"confirmed_by", "sre-1"},
                                  {"confirmed_at", core::FormatTime(Now())},
                                  {"reason", "the runbook log shows the switch"}};
    });
    auto findings = plane_->AuditCheck(auditor_, AuditRequest{});
    ASSERT_TRUE(findings.has_value()) << findings.error().message;
    const evidence::AuditFinding* found = nullptr;
    for (const evidence::AuditFinding& finding : *findings) {
      if (finding.rule == "not_recovered" && finding.incident == id) found = &finding;
    }
    if (!happened) {
      EXPECT_EQ(found, nullptr) << "a rollback confirmed as not happened needs no validation";
      continue;
    }
    ASSERT_NE(found, nullptr) << Join(Rules());
    EXPECT_NE(found->message.find("sre-1 confirmed that it happened"), std::string::npos)
        << found->message;
  }
}

TEST_F(EvidenceUseCaseTest, AuditFindsUndocumentedAfterSevenDays) {
  const std::string id = RolledBack();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  EXPECT_FALSE(Has(Rules(Now() + hours(24 * 6)), "undocumented"));
  const core::Time later = Now() + hours(24 * 8);
  auto rules = Rules(later);
  EXPECT_TRUE(Has(rules, "undocumented")) << Join(rules);
  EXPECT_TRUE(Has(rules, "missing_review")) << Join(rules);

  ASSERT_TRUE(plane_->Document(sre_, id, {.root_cause = "bad pool size"}).has_value());
  ASSERT_TRUE(plane_->WriteReview(lead_, id, std::nullopt).has_value());
  rules = Rules(later);
  EXPECT_TRUE(Has(rules, "missing_review")) << "a draft review does not count: " << Join(rules);
  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "completed"}).has_value());
  rules = Rules(later);
  EXPECT_FALSE(Has(rules, "undocumented")) << Join(rules);
  EXPECT_FALSE(Has(rules, "missing_review")) << Join(rules);
}

TEST_F(EvidenceUseCaseTest, AuditFindsBreakGlassWithoutApprovalAfterWindow) {
  const std::string id = OpenWithChanges();
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  const core::Time broke_glass = Now();
  ASSERT_TRUE(plane_
                  ->RequestRollback(
                      sre_, id, RollbackRequest{.emergency = true, .reason = "lead unreachable"})
                  .has_value());
  RunJobs();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  Tick();
  RunJobs();

  EXPECT_FALSE(Has(Rules(broke_glass + hours(1)), "emergency_without_approval"));
  auto rules = Rules(broke_glass + hours(25));
  EXPECT_TRUE(Has(rules, "emergency_without_approval")) << Join(rules);

  Tick(hours(1));
  ASSERT_TRUE(plane_->Decide(lead2_, id, {.reason = "right call", .retroactive = true}));
  rules = Rules(broke_glass + hours(25));
  EXPECT_FALSE(Has(rules, "emergency_without_approval")) << Join(rules);
  EXPECT_FALSE(Has(rules, "decision_after_start")) << Join(rules);
}

TEST_F(EvidenceUseCaseTest, AuditFindsApproverWhoExecuted) {
  std::string both_config = config_text_;
  both_config.replace(both_config.find("  - {name: ci-bot"), 0,
                      "  - {name: both, roles: [engineering-lead, devops-engineer], "
                      "services: [checkout]}\n");
  Reload(both_config + "policy:\n  separation_of_duties: false\n");
  const Caller both =
      MakeUser("both", {core::Role::kEngineeringLead, core::Role::kDevopsEngineer}, {"checkout"});
  const std::string id = OpenWithChanges();
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  ASSERT_TRUE(plane_->Decide(both, id, {.reason = "v2 is broken"}).has_value());
  Tick();
  auto rollback = plane_->RequestRollback(both, id, {});
  ASSERT_TRUE(rollback.has_value()) << rollback.error().message;
  RunJobs();
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "approver_is_executor")) << Join(rules);
}

// The API refuses a rollback by an executor without the role or the service grant, so the
// violation is planted in the stored record, as a record imported from elsewhere would carry it.
TEST_F(EvidenceUseCaseTest, AuditJudgesExecutorByPolicyOfTheTime) {
  const std::string id = RolledBack();
  EXPECT_FALSE(Has(Rules(), "unauthorized_executor"));
  EditIncident(id, [](nlohmann::json& body) { body["rollbacks"][0]["executor"] = "mallory"; });
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "unauthorized_executor")) << Join(rules);
}

// The API refuses a non-emergency rollback before its go decision, so the decision time is moved
// in the stored record.
TEST_F(EvidenceUseCaseTest, AuditFindsDecisionAfterStart) {
  const std::string id = RolledBack();
  EXPECT_FALSE(Has(Rules(), "decision_after_start"));
  EditIncident(id, [&](nlohmann::json& body) {
    body["decisions"][0]["time"] = core::FormatTime(Now() + hours(1));
  });
  auto rules = Rules(Now() + hours(2));
  EXPECT_TRUE(Has(rules, "decision_after_start")) << Join(rules);
}

// The decision in force when a rollback started is the one that counts: a no-go between the go and
// the start withdraws the approval, and a no-go after the start changes nothing.
TEST_F(EvidenceUseCaseTest, AuditJudgesDecisionInForceAtStart) {
  const std::string id = RolledBack();
  auto no_go_at = [&](std::chrono::milliseconds after_go) {
    EditIncident(id, [&](nlohmann::json& body) {
      nlohmann::json no_go = body["decisions"][0];
      const core::Time go_time = core::ParseTime(no_go["time"].get<std::string>()).value();
      no_go["kind"] = "no_go";
      no_go["time"] = core::FormatTime(go_time + after_go);
      body["decisions"] = nlohmann::json::array({body["decisions"][0], no_go});
    });
  };

  no_go_at(std::chrono::milliseconds(500));
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "decision_after_start")) << Join(rules);

  no_go_at(std::chrono::hours(1));
  rules = Rules(Now() + hours(2));
  EXPECT_FALSE(Has(rules, "decision_after_start")) << Join(rules);
}

TEST_F(EvidenceUseCaseTest, AuditFindsOverdueActionItemUntilDone) {
  const std::string id = RolledBack();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  ASSERT_TRUE(plane_->Document(sre_, id, {.root_cause = "bad pool size"}).has_value());
  auto item = plane_->AddActionItem(
      lead_, id,
      NewActionItem{
          .title = "add a canary", .owner = "sre-1", .due = core::ParseDate("2026-12-05").value()});
  ASSERT_TRUE(item.has_value()) << item.error().message;
  const core::Time later = core::ParseTime("2026-12-07T00:00:00Z").value();
  EXPECT_FALSE(Has(Rules(), "overdue_action_item"));
  EXPECT_TRUE(Has(Rules(later), "overdue_action_item")) << Join(Rules(later));
  ASSERT_TRUE(
      plane_->CompleteActionItem(sre_, item->id, ActionItemCompletion{.evidence = "https://pr/1"}));
  EXPECT_FALSE(Has(Rules(later), "overdue_action_item")) << Join(Rules(later));
}

// A no-go decision ends the incident without a rollback; its action items are still audited.
TEST_F(EvidenceUseCaseTest, AuditFindsOverdueActionItemWithoutRollback) {
  const std::string id = OpenWithChanges();
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  Tick();
  auto decided = plane_->Decide(
      lead_, id, DecisionRequest{.kind = core::DecisionKind::kNoGo, .reason = "forward fix"});
  ASSERT_TRUE(decided.has_value()) << decided.error().message;
  auto item = plane_->AddActionItem(
      lead_, id,
      NewActionItem{
          .title = "ship the fix", .owner = "sre-1", .due = core::ParseDate("2026-12-05").value()});
  ASSERT_TRUE(item.has_value()) << item.error().message;
  const core::Time later = core::ParseTime("2026-12-07T00:00:00Z").value();
  EXPECT_FALSE(Has(Rules(), "overdue_action_item"));
  EXPECT_TRUE(Has(Rules(later), "overdue_action_item")) << Join(Rules(later));
  ASSERT_TRUE(
      plane_->CompleteActionItem(sre_, item->id, ActionItemCompletion{.evidence = "https://pr/2"}));
  EXPECT_FALSE(Has(Rules(later), "overdue_action_item")) << Join(Rules(later));
}

TEST_F(EvidenceUseCaseTest, AuditFindsGrantOffTheRoster) {
  EXPECT_FALSE(Has(Rules(), "grant_not_on_roster"));
  std::string narrowed = config_text_;
  narrowed.replace(narrowed.find("services: [checkout]}"), 21, "services: []}");
  Reload(narrowed);
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "grant_not_on_roster")) << Join(rules);
  Reload(config_text_);
  EXPECT_FALSE(Has(Rules(), "grant_not_on_roster")) << Join(Rules());
}

TEST_F(EvidenceUseCaseTest, AuditFindsLedgerTampering) {
  RolledBack();
  EXPECT_FALSE(Has(Rules(), "ledger_verification_failed"));
  const std::string db = (temp_.path() / "backout.db").string();
  auto edit_entry = [&](const char* from, const char* to) {
    return std::system(fmt::format("sqlite3 {} \"UPDATE ledger_entries SET encoded = "
                                   "replace(encoded, '{}', '{}') WHERE sequence = 3\"",
                                   db, from, to)
                           .c_str());
  };
  ASSERT_EQ(edit_entry("actor", "actxr"), 0);
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "ledger_verification_failed")) << Join(rules);
  ASSERT_EQ(edit_entry("actxr", "actor"), 0);
  EXPECT_FALSE(Has(Rules(), "ledger_verification_failed")) << Join(Rules());
}

TEST_F(EvidenceUseCaseTest, PopulationListsChangesAndRollbacks) {
  const std::string id = RolledBack();
  ASSERT_NO_FATAL_FAILURE(FollowUp(id));
  auto rows = plane_->Population(auditor_, std::nullopt, std::nullopt);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u) << rows->dump(2);
  EXPECT_EQ((*rows)[0]["type"], "change");
  EXPECT_EQ((*rows)[1]["type"], "change");
  const nlohmann::json& rollback = (*rows)[2];
  EXPECT_EQ(rollback["type"], "rollback");
  EXPECT_EQ(rollback["incident"], id);
  EXPECT_EQ(rollback["decider"], "lead-1");
  EXPECT_EQ(rollback["executor"], "sre-1");
  EXPECT_EQ(rollback["outcome"], "rolled_back");
  EXPECT_EQ(rollback["validation"], "recovered");
  EXPECT_EQ(rollback["from_version"], "v2");
  EXPECT_EQ(rollback["to_version"], "v1");
  EXPECT_EQ(rollback["external_ticket"], "OPS-7");

  const std::string csv = evidence::PopulationCsv(*rows);
  EXPECT_TRUE(csv.starts_with("type,id,incident,service,")) << csv;
  EXPECT_NE(csv.find("rollback," + id + "/rollback/"), std::string::npos) << csv;
}

// Two break-glass rollbacks, each approved afterwards by a different lead: each population row
// names the lead who approved that rollback, not the latest approval.
TEST_F(EvidenceUseCaseTest, PopulationNamesEachBreakGlassApprover) {
  const std::string id = OpenWithChanges();
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  Tick();
  const RollbackRequest emergency{.emergency = true, .reason = "lead unreachable"};
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, emergency).has_value());
  RunJobs();
  Tick();
  ASSERT_TRUE(plane_->Decide(lead_, id, {.reason = "right call", .retroactive = true}));
  Tick();
  FailChecks(temp_.path());
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  Tick();
  WriteFile(temp_.path() / "live", "v2\n", false);
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, emergency).has_value());
  RunJobs();
  Tick();
  ASSERT_TRUE(plane_->Decide(lead2_, id, {.reason = "right call again", .retroactive = true}));

  auto rows = plane_->Population(auditor_, std::nullopt, std::nullopt);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  std::vector<std::string> deciders;
  for (const nlohmann::json& row : *rows) {
    if (row["type"] == "rollback") deciders.push_back(row["decider"].get<std::string>());
  }
  ASSERT_EQ(deciders.size(), 2u) << rows->dump(2);
  EXPECT_EQ(deciders[0], "lead-1");
  EXPECT_EQ(deciders[1], "lead-2");
}

TEST_F(EvidenceUseCaseTest, PopulationKeepsToThePeriod) {
  const std::string id = RolledBack();
  const core::Time after = Now();
  auto rows = plane_->Population(auditor_, after, std::nullopt);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_TRUE(rows->empty()) << rows->dump(2);
}

TEST_F(EvidenceUseCaseTest, PeriodExportVerifiesAndNamesTamperedFile) {
  // The tool's own history: CI deployed v0, v1 and v2, then alice put v0 back by hand at 20:00,
  // which reconciliation reports as a discovered rollback.
  const auto& dir = temp_.path();
  WriteFile(dir / "history.jsonl",
            "{\"version\": \"v0\", \"time\": \"2026-12-04T08:00:00Z\", \"actor\": \"ci\"}\n"
            "{\"version\": \"v1\", \"time\": \"2026-12-04T09:00:00Z\", \"actor\": \"ci\"}\n"
            "{\"version\": \"v2\", \"time\": \"2026-12-04T09:30:00Z\", \"actor\": \"ci\"}\n"
            "{\"version\": \"v0\", \"time\": \"2026-12-04T20:00:00Z\", \"actor\": \"alice\"}\n",
            false);
  WriteFile(dir / "history.sh", fmt::format("#!/bin/sh\ncat {}/history.jsonl\n", dir.string()),
            true);
  std::string with_history = config_text_;
  const std::string status_line = fmt::format("      status: [{}/status.sh]\n", dir.string());
  with_history.replace(with_history.find(status_line), status_line.size(),
                       status_line + fmt::format("      history: [{}/history.sh]\n", dir.string()));

  const core::Time from = Now();
  const std::string first = RolledBack();
  ASSERT_NO_FATAL_FAILURE(FollowUp(first));
  const std::string second = OpenWithChanges();
  ASSERT_NO_FATAL_FAILURE(Reload(with_history));
  auto reconciled = plane_->Reconcile(lead_, "checkout");
  ASSERT_TRUE(reconciled.has_value()) << reconciled.error().message;
  ASSERT_EQ(reconciled->discovered_rollbacks.size(), 1u) << ToJson(*reconciled).dump(2);
  const core::Time to = core::ParseTime("2026-12-05T00:00:00Z").value();
  Tick(hours(24));
  const std::string later = OpenWithChanges();  // after the period, so a checkpoint follows it

  auto bundle = plane_->ExportPeriodEvidence(auditor_, from, to);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto report = evidence::VerifyPeriodBundle(*bundle, {.trusted_key = signer_->public_key()});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->incidents.size(), 2u);
  EXPECT_EQ(report->incidents[0].incident_id, first);
  EXPECT_EQ(report->incidents[1].incident_id, second);
  EXPECT_TRUE(report->period_closed);
  EXPECT_TRUE(report->start_checkpoint.has_value());
  EXPECT_EQ(report->policy_loads, 2u);  // in force at the start, and the reload

  auto files = evidence::ReadTarGz(*bundle);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  std::string population;
  std::string policies;
  for (const evidence::ArchiveFile& file : *files) {
    EXPECT_FALSE(file.path.starts_with("incidents/" + later + "/")) << file.path;
    if (file.path == "population.csv") population = file.content;
    if (file.path == "config/policy-history.json") policies = file.content;
  }
  EXPECT_NE(population.find("discovered_rollback," + reconciled->discovered_rollbacks[0]),
            std::string::npos)
      << population;
  EXPECT_NE(population.find(",alice,"), std::string::npos) << population;
  EXPECT_NE(policies.find("\"provider_bindings\""), std::string::npos) << policies;
  EXPECT_NE(policies.find("history.sh"), std::string::npos) << policies;

  auto again = plane_->ExportPeriodEvidence(lead_, from, to);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(*again, *bundle);

  std::vector<evidence::ArchiveFile> tampered = *files;
  const std::string target = "incidents/" + first + "/incident.json";
  auto it = std::find_if(tampered.begin(), tampered.end(),
                         [&](const evidence::ArchiveFile& file) { return file.path == target; });
  ASSERT_NE(it, tampered.end());
  it->content[it->content.size() / 2] ^= 0x01;
  auto failed = evidence::VerifyPeriodBundle(evidence::WriteTarGz(tampered, 0).value(), {});
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, core::ErrorCode::kCorruption);
  EXPECT_NE(failed.error().message.find(target), std::string::npos) << failed.error().message;
}

TEST_F(EvidenceUseCaseTest, ExecutorMayNotExportPeriod) {
  auto bundle = plane_->ExportPeriodEvidence(sre_, Now() - hours(1), Now() + hours(1));
  ASSERT_FALSE(bundle.has_value());
  EXPECT_EQ(bundle.error().code, core::ErrorCode::kPermissionDenied);
}

// A period whose start is not before its end is empty: an error naming both ends, not an empty
// result that reads as "no findings".
TEST_F(EvidenceUseCaseTest, EmptyPeriodIsRejected) {
  ASSERT_FALSE(RolledBack().empty());
  const core::Time later = Now() + hours(1);
  const core::Time earlier = Now() - hours(1);
  const std::string named = fmt::format("from {} is not before to {}", core::FormatTime(later),
                                        core::FormatTime(earlier));

  auto audit = plane_->AuditCheck(auditor_, AuditRequest{.from = later, .to = earlier});
  ASSERT_FALSE(audit.has_value());
  EXPECT_EQ(audit.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(audit.error().message.find(named), std::string::npos) << audit.error().message;

  auto rows = plane_->Population(auditor_, later, earlier);
  ASSERT_FALSE(rows.has_value());
  EXPECT_EQ(rows.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(rows.error().message.find(named), std::string::npos) << rows.error().message;

  auto bundle = plane_->ExportPeriodEvidence(auditor_, later, earlier);
  ASSERT_FALSE(bundle.has_value());
  EXPECT_EQ(bundle.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(bundle.error().message.find(named), std::string::npos) << bundle.error().message;

  auto same = plane_->AuditCheck(auditor_, AuditRequest{.from = earlier, .to = earlier});
  ASSERT_FALSE(same.has_value());
  EXPECT_EQ(same.error().code, core::ErrorCode::kInvalidArgument);

  auto ordered = plane_->AuditCheck(auditor_, AuditRequest{.from = earlier, .to = later});
  ASSERT_TRUE(ordered.has_value()) << ordered.error().message;
}

}  // namespace
}  // namespace backout::app
