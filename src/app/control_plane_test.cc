#include "app/control_plane.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/job_runner.h"
#include "app/records.h"
#include "app/try.h"
#include "ledger/entry.h"
#include "ledger/verify.h"
#include "providers/registry.h"
#include "support/postgres_server.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using nlohmann::json;

// A clock that moves forward one millisecond on every reading, so each recorded event is newer
// than the one before, as on a real clock, yet every run records the same times.
class SteppingClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return core::Time{} + std::chrono::hours(24 * 365 * 56) +
           std::chrono::milliseconds(ticks_.fetch_add(1));
  }
  void Advance(std::chrono::milliseconds step) { ticks_.fetch_add(step.count()); }

 private:
  mutable std::atomic<int64_t> ticks_{0};
};

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

enum class Backend { kSqlite, kPostgres };

// One control plane over a real store, with three services whose runbooks are shell scripts in
// a temporary folder: checkout (status and a command check), payments (status, no checks) and
// inventory (no status).
// The command provider, except that its tool record shows the rollback undone afterwards, as a
// GitOps controller's revert of Backout's revert would.
class UndoneByController final : public providers::Provider {
 public:
  explicit UndoneByController(std::shared_ptr<const providers::Provider> inner)
      : inner_(std::move(inner)) {}

  std::string_view Kind() const override { return inner_->Kind(); }
  std::string_view Service() const override { return inner_->Service(); }
  providers::ProviderCapabilities Capabilities() const override { return inner_->Capabilities(); }
  core::Result<providers::LiveState> ReadLiveState() const override {
    return inner_->ReadLiveState();
  }
  core::Result<std::vector<providers::HistoryEntry>> History(core::Time since) const override {
    return inner_->History(since);
  }
  core::Result<std::vector<providers::Precondition>> Preconditions() const override {
    return inner_->Preconditions();
  }
  core::Result<providers::Plan> MakePlan(std::string_view target) const override {
    return inner_->MakePlan(target);
  }
  core::Result<providers::ExecutionResult> Execute(
      const providers::Plan& plan, std::string_view key,
      const providers::ExecutionContext& context) const override {
    return inner_->Execute(plan, key, context);
  }
  core::Result<providers::ExecutionResult> Resume(
      const providers::ResumeRequest& request,
      const providers::ExecutionContext& context) const override {
    return inner_->Resume(request, context);
  }
  core::Result<providers::Readiness> CheckReadiness() const override {
    return inner_->CheckReadiness();
  }
  core::Result<providers::ToolRecord> ReadBack(
      const providers::ExecutionResult& execution) const override {
    BACKOUT_TRY(providers::ToolRecord record, inner_->ReadBack(execution));
    record.version = "v2";
    record.details["reverted_by_controller"] =
        json{{"commit", "c0ffee"}, {"author", "flux"}, {"version", "v2"}};
    return record;
  }

 private:
  std::shared_ptr<const providers::Provider> inner_;
};

class ControlPlaneTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const auto& dir = temp_.path();
    WriteFile(dir / "live", "v2\n", false);
    WriteFile(dir / "rollback.sh",
              fmt::format("#!/bin/sh\necho \"$BACKOUT_TARGET_VERSION\" >> {0}/actions\n"
                          "echo \"$BACKOUT_TARGET_VERSION\" > {0}/live\n",
                          dir.string()),
              true);
    WriteFile(dir / "status.sh", fmt::format("#!/bin/sh\ncat {}/live\n", dir.string()), true);
    WriteFile(dir / "check.sh", "#!/bin/sh\nexit 0\n", true);

    config_text_ = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: lead-2, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [checkout, payments, inventory, search]}}
  - {{name: both, roles: [engineering-lead, devops-engineer], services: [checkout]}}
  - {{name: ci-bot, roles: [ci]}}
services:
  - name: checkout
    customer_facing: true
    provider:
      kind: command
      run: [{0}/rollback.sh]
      status: [{0}/status.sh]
      output_dir: {0}
    checks:
      - name: smoke
        kind: command
        run: [{0}/check.sh]
  - name: web
    depends_on: [checkout]
    provider: {{kind: command, run: [{0}/rollback.sh], output_dir: {0}}}
  - name: payments
    provider: {{kind: command, run: [{0}/rollback.sh], status: [{0}/status.sh], output_dir: {0}}}
  - name: inventory
    provider: {{kind: command, run: [{0}/rollback.sh], output_dir: {0}}}
  - name: search
    provider: {{kind: command, run: [{0}/rollback.sh], status: [{0}/status.sh], output_dir: {0}}}
)",
                               dir.string());
    auto config = Config::Parse(config_text_, "test.yaml", dir);
    ASSERT_TRUE(config.has_value()) << config.error().message;

    ProviderMap providers;
    for (const ServiceConfig& service : config->services) {
      auto provider = providers::Registry::Create(service.provider.kind, service.name,
                                                  service.provider.settings, {}, clock_);
      ASSERT_TRUE(provider.has_value()) << provider.error().message;
      std::shared_ptr<const providers::Provider> shared = *std::move(provider);
      if (service.name == "search") shared = std::make_shared<UndoneByController>(shared);
      providers.emplace(service.name, std::move(shared));
    }
    auto settings = Settings::Create(*std::move(config), std::move(providers));
    ASSERT_TRUE(settings.has_value()) << settings.error().message;

    std::string url = fmt::format("sqlite:{}/backout.db", dir.string());
    if (GetParam() == Backend::kPostgres) {
      auto server = testing::PostgresServer::Shared();
      ASSERT_TRUE(server.has_value()) << server.error();
      auto database = (*server)->CreateDatabase();
      ASSERT_TRUE(database.has_value()) << database.error();
      url = *database;
    }
    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    auto store = store::OpenStore(url, store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);

    plane_ = std::make_unique<ControlPlane>(*store_, clock_, *settings);
    auto bootstrapped = plane_->BootstrapAdmin();
    ASSERT_TRUE(bootstrapped.has_value()) << bootstrapped.error().message;
    ASSERT_TRUE(*bootstrapped);
    auto admin = plane_->Authenticate(Trim(ReadFile(dir / "data" / "admin.token")));
    ASSERT_TRUE(admin.has_value()) << admin.error().message;
    admin_ = *admin;

    lead_ = MakeUser("lead-1", {core::Role::kEngineeringLead}, {});
    lead2_ = MakeUser("lead-2", {core::Role::kEngineeringLead}, {});
    sre_ = MakeUser("sre-1", {core::Role::kDevopsEngineer},
                    {"checkout", "payments", "inventory", "search"});
    ci_ = MakeUser("ci-bot", {core::Role::kCi}, {});

    runner_ = std::make_unique<JobRunner>(
        *plane_, JobRunnerOptions{.owner = "test-worker",
                                  .readiness_attempts = 1,
                                  .readiness_interval = std::chrono::milliseconds(0)});
  }

  static std::string Trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  }

  Caller MakeUser(const std::string& name, std::vector<core::Role> roles,
                  std::vector<std::string> services) {
    auto created = plane_->CreateUser(
        admin_, NewUser{.name = name, .roles = std::move(roles), .services = std::move(services)});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    if (!created) return Caller{};
    tokens_.push_back(created->token);
    auto caller = plane_->Authenticate(created->token);
    EXPECT_TRUE(caller.has_value()) << caller.error().message;
    return caller.value_or(Caller{});
  }

  // Records v1 (verified good) then v2 on `service`, and opens an incident suspecting v2.
  std::string OpenWithChanges(const std::string& service) {
    auto v1 = plane_->RecordChange(ci_, NewChange{.service = service, .version = "v1"});
    EXPECT_TRUE(v1.has_value()) << v1.error().message;
    EXPECT_TRUE(plane_->VerifyChange(ci_, v1->id, ChangeVerification{.passed = true}));
    auto v2 = plane_->RecordChange(
        ci_, NewChange{.service = service, .version = "v2", .previous_version = "v1"});
    EXPECT_TRUE(v2.has_value());
    auto incident = plane_->OpenIncident(lead_, NewIncident{.service = service,
                                                            .severity = core::Severity::kSev2,
                                                            .title = "errors after v2",
                                                            .suspected_change = v2->id});
    EXPECT_TRUE(incident.has_value()) << incident.error().message;
    return incident ? incident->id : "";
  }

  // Opens, assesses and approves; returns the incident id.
  std::string Approved(const std::string& service) {
    const std::string id = OpenWithChanges(service);
    auto assessed = plane_->Assess(lead_, id, {});
    EXPECT_TRUE(assessed.has_value()) << assessed.error().message;
    auto decided = plane_->Decide(
        lead_, id, DecisionRequest{.kind = core::DecisionKind::kGo, .reason = "v2 is broken"});
    EXPECT_TRUE(decided.has_value()) << decided.error().message;
    return id;
  }

  void RunJobs() {
    while (true) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  core::Incident Get(const std::string& id) {
    auto incident = plane_->GetIncident(lead_, id);
    EXPECT_TRUE(incident.has_value());
    return incident.value_or(core::Incident{});
  }

  std::vector<ledger::Entry> LedgerEntries() {
    std::vector<ledger::Entry> entries;
    auto count = store_->EntryCount();
    EXPECT_TRUE(count.has_value());
    auto stored = store_->ReadEntries(0, *count);
    EXPECT_TRUE(stored.has_value());
    for (const auto& entry : *stored) {
      auto decoded = ledger::DecodeEntry(entry.encoded);
      EXPECT_TRUE(decoded.has_value());
      if (decoded) entries.push_back(*decoded);
    }
    return entries;
  }

  testing::TempDir temp_;
  SteppingClock clock_;
  std::string config_text_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<JobRunner> runner_;
  std::vector<std::string> tokens_;
  Caller admin_, lead_, lead2_, sre_, ci_;
};

TEST_P(ControlPlaneTest, WholeLifecycleEndsClosed) {
  const std::string id = Approved("checkout");
  EXPECT_EQ(Get(id).state, core::IncidentState::kDecided);

  auto rollback = plane_->RequestRollback(sre_, id, {});
  ASSERT_TRUE(rollback.has_value()) << rollback.error().message;
  EXPECT_EQ(rollback->incident.state, core::IncidentState::kRollingBack);
  RunJobs();
  core::Incident incident = Get(id);
  ASSERT_EQ(incident.rollbacks.size(), 1u);
  EXPECT_EQ(incident.rollbacks[0].outcome, core::RollbackOutcome::kRolledBack)
      << incident.rollbacks[0].message;
  EXPECT_EQ(incident.state, core::IncidentState::kValidating);
  EXPECT_EQ(ReadFile(temp_.path() / "actions"), "v1\n");

  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  incident = Get(id);
  ASSERT_EQ(incident.validations.size(), 1u);
  EXPECT_EQ(incident.validations[0].finding, core::ValidationFinding::kRecovered);
  EXPECT_EQ(incident.state, core::IncidentState::kDocumenting);

  auto documented = plane_->Document(
      sre_, id,
      DocumentRequest{.root_cause = "v2 shipped a bad pool size",
                      .contributing_factors = {"no canary"},
                      .attachments = {{.name = "log.txt", .content_base64 = "aGVsbG8="}}});
  ASSERT_TRUE(documented.has_value()) << documented.error().message;
  ASSERT_EQ(documented->attachments.size(), 1u);
  EXPECT_EQ(documented->attachments[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  auto review = plane_->WriteReview(lead_, id, std::nullopt);
  ASSERT_TRUE(review.has_value()) << review.error().message;
  EXPECT_NE(review->find("| rollback_finished |"), std::string::npos);
  auto item = plane_->AddActionItem(
      lead_, id,
      NewActionItem{
          .title = "add a canary", .owner = "sre-1", .due = core::ParseDate("2027-01-31").value()});
  ASSERT_TRUE(item.has_value()) << item.error().message;
  auto done =
      plane_->CompleteActionItem(sre_, item->id, ActionItemCompletion{.evidence = "https://pr/1"});
  ASSERT_TRUE(done.has_value()) << done.error().message;

  auto closed = plane_->Close(lead_, id);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  EXPECT_EQ(closed->state, core::IncidentState::kClosed);

  auto verified = ledger::VerifyLog(*store_, {});
  EXPECT_TRUE(verified.has_value()) << verified.error().message;
}

TEST_P(ControlPlaneTest, DocumentAttachmentTotalIsLimited) {
  const std::string id = Approved("checkout");
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  RunJobs();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  ASSERT_EQ(Get(id).state, core::IncidentState::kDocumenting);
  // "AAAA" is base64 for three zero bytes, so each attachment contains 6 MiB.
  const std::string six_mib_base64((size_t{6} << 20) / 3 * 4, 'A');

  auto rejected = plane_->Document(
      sre_, id,
      DocumentRequest{.root_cause = "bad v2",
                      .attachments = {{.name = "a.log", .content_base64 = six_mib_base64},
                                      {.name = "b.log", .content_base64 = six_mib_base64}}});

  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(rejected.error().message.find("attachment b.log brings the total to 12582912 bytes, "
                                          "over the limit of 10485760 bytes"),
            std::string::npos)
      << rejected.error().message;
  EXPECT_EQ(Get(id).state, core::IncidentState::kDocumenting);
  auto single = plane_->Document(
      sre_, id,
      DocumentRequest{.root_cause = "bad v2",
                      .attachments = {{.name = "a.log", .content_base64 = six_mib_base64}}});
  ASSERT_TRUE(single.has_value()) << single.error().message;
  ASSERT_EQ(single->attachments.size(), 1u);
  EXPECT_EQ(single->attachments[0].size, int64_t{6} << 20);
}

TEST_P(ControlPlaneTest, AssessmentCoversDependentsAndDigest) {
  const std::string id = OpenWithChanges("checkout");
  auto assessed = plane_->Assess(lead_, id, {});
  ASSERT_TRUE(assessed.has_value()) << assessed.error().message;
  const core::Assessment& assessment = *assessed->assessment;
  EXPECT_EQ(assessment.affected_services, (std::vector<std::string>{"checkout", "web"}));
  EXPECT_TRUE(assessment.customer_facing);
  EXPECT_EQ(assessment.target_version, "v1");
  EXPECT_EQ(assessment.plan.value("target_version", ""), "v1");

  auto canonical = core::CanonicalForDigest(assessment);
  ASSERT_TRUE(canonical.has_value());
  EXPECT_EQ(assessment.digest, ledger::ToHex(ledger::Sha256(*canonical)));
}

TEST_P(ControlPlaneTest, DecisionWithStaleDigestIsRejected) {
  const std::string id = OpenWithChanges("checkout");
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  auto decided = plane_->Decide(lead_, id,
                                DecisionRequest{.kind = core::DecisionKind::kGo,
                                                .reason = "go",
                                                .approved_digest = std::string(64, '0')});
  ASSERT_FALSE(decided.has_value());
  EXPECT_EQ(decided.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_P(ControlPlaneTest, GoOnAssessmentWithoutPlanIsRejected) {
  const std::string id = OpenWithChanges("payments");
  // The status command fails without the live file, so the provider cannot plan.
  std::filesystem::remove(temp_.path() / "live");
  auto assessed = plane_->Assess(lead_, id, {});
  ASSERT_TRUE(assessed.has_value()) << assessed.error().message;
  ASSERT_TRUE(assessed->assessment->plan.contains("error")) << assessed->assessment->plan.dump();

  auto go =
      plane_->Decide(lead_, id, DecisionRequest{.kind = core::DecisionKind::kGo, .reason = "go"});
  ASSERT_FALSE(go.has_value());
  EXPECT_EQ(go.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(go.error().message.find(id), std::string::npos) << go.error().message;
  EXPECT_NE(go.error().message.find("no rollback plan"), std::string::npos) << go.error().message;
  EXPECT_NE(go.error().message.find("incident assess"), std::string::npos) << go.error().message;
  EXPECT_TRUE(Get(id).decisions.empty());

  auto no_go = plane_->Decide(
      lead_, id, DecisionRequest{.kind = core::DecisionKind::kNoGo, .reason = "cannot plan"});
  EXPECT_TRUE(no_go.has_value()) << no_go.error().message;
}

TEST_P(ControlPlaneTest, ToolRecordShowingAnUndoOutranksTheExecution) {
  const std::string id = Approved("search");
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  RunJobs();
  const core::Incident incident = Get(id);
  ASSERT_EQ(incident.rollbacks.size(), 1u);
  EXPECT_EQ(incident.rollbacks[0].outcome, core::RollbackOutcome::kRevertedByController);
  EXPECT_NE(incident.rollbacks[0].message.find("undone by flux (c0ffee)"), std::string::npos)
      << incident.rollbacks[0].message;
  EXPECT_EQ(incident.state, core::IncidentState::kAssessing);
}

TEST_P(ControlPlaneTest, LiveStateMovedEndsPreconditionFailed) {
  const std::string id = Approved("checkout");
  WriteFile(temp_.path() / "live", "v3\n", false);
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  RunJobs();
  const core::Incident incident = Get(id);
  EXPECT_EQ(incident.rollbacks[0].outcome, core::RollbackOutcome::kPreconditionFailed);
  EXPECT_EQ(incident.state, core::IncidentState::kAssessing);
  EXPECT_FALSE(std::filesystem::exists(temp_.path() / "actions"));
}

TEST_P(ControlPlaneTest, InterruptedRollbackWithoutStatusIsConfirmed) {
  const std::string id = Approved("inventory");
  auto accepted = plane_->RequestRollback(sre_, id, {});
  ASSERT_TRUE(accepted.has_value()) << accepted.error().message;

  // A worker took the job, committed the runbook's start, and died with it. The recorded
  // process no longer runs, and without `status` nothing can tell whether it did its work.
  auto lease = store_->LeaseJob("dead-worker", {"rollback"}, std::chrono::seconds(30));
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(lease->has_value());
  json payload = (*lease)->job.payload;
  payload["step"] = "executing";
  payload["started"] = providers::ToJson(providers::StartedAction{
      .started_at = clock_.Now(),
      .process = providers::ProcessIdentity{.pid = 999999999, .start_ticks = 1}});
  ASSERT_TRUE(store_->Write([&](store::Transaction& tx) {
    return tx.SaveJobProgress((*lease)->job.id, (*lease)->fencing_token, payload);
  }));
  ASSERT_TRUE(store_->ReleaseJob((*lease)->job.id, (*lease)->fencing_token));

  RunJobs();
  core::Incident incident = Get(id);
  EXPECT_EQ(incident.rollbacks[0].outcome, core::RollbackOutcome::kInterrupted)
      << incident.rollbacks[0].message;
  EXPECT_EQ(incident.state, core::IncidentState::kRollingBack);
  EXPECT_FALSE(std::filesystem::exists(temp_.path() / "actions"));

  auto confirmed =
      plane_->Confirm(sre_, id, ConfirmRequest{.happened = false, .reason = "runbook log empty"});
  ASSERT_TRUE(confirmed.has_value()) << confirmed.error().message;
  EXPECT_EQ(confirmed->state, core::IncidentState::kAssessing);
}

TEST_P(ControlPlaneTest, ReadinessAloneIsNotValidated) {
  const std::string id = Approved("payments");
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  RunJobs();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  const core::Incident incident = Get(id);
  ASSERT_EQ(incident.validations.size(), 1u);
  EXPECT_EQ(incident.validations[0].finding, core::ValidationFinding::kNotValidated);
  EXPECT_EQ(incident.state, core::IncidentState::kAssessing);
}

TEST_P(ControlPlaneTest, RollbackFreezesAndLeadUnfreezes) {
  const std::string id = Approved("checkout");
  ASSERT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
  auto freeze = plane_->GetFreeze(ci_, "checkout");
  ASSERT_TRUE(freeze.has_value()) << freeze.error().message;
  EXPECT_TRUE(freeze->frozen);
  EXPECT_EQ(freeze->incident, id);

  auto refused = plane_->Unfreeze(sre_, "checkout", "done");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);
  auto lifted = plane_->Unfreeze(lead_, "checkout", "recovered");
  ASSERT_TRUE(lifted.has_value()) << lifted.error().message;
  EXPECT_FALSE(lifted->frozen);
}

TEST_P(ControlPlaneTest, RefusalIsLedgered) {
  const std::string id = Approved("checkout");
  auto refused = plane_->RequestRollback(lead_, id, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);

  const auto entries = LedgerEntries();
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().action, "access.refused");
  EXPECT_EQ(entries.back().actor, "lead-1");
  EXPECT_EQ(entries.back().subject, "incident/" + id);
  EXPECT_EQ(entries.back().change.value("attempted", ""), "incident.rollback");
  EXPECT_EQ(Get(id).state, core::IncidentState::kDecided);
}

TEST_P(ControlPlaneTest, ApproverMayNotExecute) {
  const Caller both =
      MakeUser("both", {core::Role::kEngineeringLead, core::Role::kDevopsEngineer}, {"checkout"});
  const std::string id = OpenWithChanges("checkout");
  ASSERT_TRUE(plane_->Assess(both, id, {}).has_value());
  ASSERT_TRUE(plane_->Decide(both, id, {.kind = core::DecisionKind::kGo, .reason = "go"}));
  auto refused = plane_->RequestRollback(both, id, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);
}

TEST_P(ControlPlaneTest, IllegalActionNamesStateAndAllowedActions) {
  const std::string id = OpenWithChanges("checkout");
  auto refused = plane_->Close(lead_, id);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("open"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("assess"), std::string::npos) << refused.error().message;
}

TEST_P(ControlPlaneTest, EmergencyRollbackNeedsRetroactiveApprovalToClose) {
  const std::string id = OpenWithChanges("checkout");
  ASSERT_TRUE(plane_->Assess(lead_, id, {}).has_value());
  auto rollback = plane_->RequestRollback(
      sre_, id, RollbackRequest{.emergency = true, .reason = "checkout down, lead unreachable"});
  ASSERT_TRUE(rollback.has_value()) << rollback.error().message;
  EXPECT_TRUE(rollback->incident.emergency);
  RunJobs();
  ASSERT_TRUE(plane_->RequestValidation(lead_, id).has_value());
  RunJobs();
  ASSERT_EQ(Get(id).state, core::IncidentState::kDocumenting);
  ASSERT_TRUE(plane_->Document(sre_, id, {.root_cause = "bad v2"}).has_value());
  ASSERT_TRUE(plane_->WriteReview(lead_, id, "# review").has_value());
  ASSERT_TRUE(plane_->AddActionItem(lead_, id, {.no_action = true, .reason = "one-off"}));

  auto refused = plane_->Close(lead_, id);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kFailedPrecondition);

  auto approved = plane_->Decide(lead2_, id, {.reason = "right call", .retroactive = true});
  ASSERT_TRUE(approved.has_value()) << approved.error().message;
  auto closed = plane_->Close(lead_, id);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
}

TEST_P(ControlPlaneTest, AdminTokenFileIsPrivate) {
  struct stat info {};
  ASSERT_EQ(::stat((temp_.path() / "data" / "admin.token").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  auto again = plane_->BootstrapAdmin();
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
}

TEST_P(ControlPlaneTest, TokensAreStoredOnlyAsHashes) {
  ASSERT_TRUE(store_->Read([&](store::Transaction& tx) -> core::Result<void> {
    auto tokens = tx.List(store::ListQuery{.kind = kTokenKind});
    EXPECT_TRUE(tokens.has_value());
    for (const store::Object& token : *tokens) {
      const std::string body = token.body.dump();
      for (const std::string& text : tokens_) {
        EXPECT_EQ(body.find(text), std::string::npos) << token.id;
      }
    }
    return {};
  }));
  for (const ledger::Entry& entry : LedgerEntries()) {
    for (const std::string& text : tokens_) {
      EXPECT_EQ(entry.change.dump().find(text), std::string::npos) << entry.action;
    }
  }
}

TEST_P(ControlPlaneTest, RevokedTokenIsRejected) {
  auto revoked = plane_->RevokeToken(lead_, lead_.token_id);
  ASSERT_TRUE(revoked.has_value()) << revoked.error().message;
  auto rejected = plane_->Authenticate(tokens_[0]);
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, core::ErrorCode::kUnauthenticated);
}

TEST_P(ControlPlaneTest, ExpiredTokenIsRejected) {
  auto created = plane_->CreateUser(
      admin_, NewUser{.name = "lead-2-temp", .roles = {core::Role::kEngineeringLead}});
  ASSERT_FALSE(created.has_value());  // not on the roster
  EXPECT_EQ(created.error().code, core::ErrorCode::kPermissionDenied);

  ASSERT_TRUE(plane_->RevokeToken(admin_, lead2_.token_id).has_value());
  ASSERT_TRUE(
      store_->Write([&](store::Transaction& tx) { return tx.Delete(kUserKind, "lead-2"); }));
  auto expiring =
      plane_->CreateUser(admin_, NewUser{.name = "lead-2",
                                         .roles = {core::Role::kEngineeringLead},
                                         .expires_at = clock_.Now() + std::chrono::seconds(60)});
  ASSERT_TRUE(expiring.has_value()) << expiring.error().message;
  EXPECT_TRUE(plane_->Authenticate(expiring->token).has_value());
  clock_.Advance(std::chrono::seconds(61));
  auto rejected = plane_->Authenticate(expiring->token);
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, core::ErrorCode::kUnauthenticated);
}

TEST_P(ControlPlaneTest, PolicyIsLedgeredWithConfigDigest) {
  ASSERT_TRUE(plane_->RecordPolicy("system").has_value());
  const auto entries = LedgerEntries();
  ASSERT_FALSE(entries.empty());
  const ledger::Entry& entry = entries.back();
  EXPECT_EQ(entry.action, "policy.loaded");
  EXPECT_EQ(entry.change.value("config_sha256", ""), ledger::ToHex(ledger::Sha256(config_text_)));
  EXPECT_EQ(entry.change.value("loaded_by", ""), "system");
  EXPECT_TRUE(entry.change["policy"].value("separation_of_duties", false));
}

TEST_P(ControlPlaneTest, CiMayRecordChangesOnly) {
  auto refused = plane_->OpenIncident(
      ci_, NewIncident{.service = "checkout", .severity = core::Severity::kSev3, .title = "x"});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);
  EXPECT_TRUE(plane_->RecordChange(ci_, NewChange{.service = "checkout", .version = "v9"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ControlPlaneTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

}  // namespace
}  // namespace backout::app
