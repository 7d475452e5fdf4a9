// Post-incident reviews, the action item report and access reviews through the real use cases,
// job runner and command provider, on a manual clock.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_runner.h"
#include "evidence/archive.h"
#include "ledger/entry.h"
#include "ledger/hash.h"
#include "providers/registry.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using std::chrono::days;
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

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A control plane over SQLite with one service, checkout, rolled back by a runbook that writes
// the target version to a file. lead-2 is on the roster but gets no grant unless a test makes one.
class ReviewAccessTest : public ::testing::Test {
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
    std::string token = ReadFile(dir / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    auto admin = plane_->Authenticate(token);
    ASSERT_TRUE(admin.has_value()) << admin.error().message;
    admin_ = *admin;
    lead_ = MakeUser("lead-1", {core::Role::kEngineeringLead}, {});
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

  void Reload(const std::string& text) {
    ASSERT_NO_FATAL_FAILURE(Configure(text));
    ASSERT_TRUE(plane_->Reload(settings_, "admin").has_value());
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

  void RunJobs() {
    while (true) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  // Records v1 and v2, opens an incident on v2, rolls back, validates and documents it, so the
  // incident is documenting. Returns its id.
  std::string Documented() {
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
                                                            .suspected_change = v2->id});
    EXPECT_TRUE(incident.has_value()) << incident.error().message;
    if (!incident) return "";
    const std::string id = incident->id;
    Tick();
    EXPECT_TRUE(plane_->Assess(lead_, id, {}).has_value());
    Tick();
    EXPECT_TRUE(plane_->Decide(lead_, id, {.kind = core::DecisionKind::kGo, .reason = "v2 broke"}));
    Tick();
    EXPECT_TRUE(plane_->RequestRollback(sre_, id, {}).has_value());
    RunJobs();
    Tick();
    EXPECT_TRUE(plane_->RequestValidation(lead_, id).has_value());
    RunJobs();
    Tick();
    EXPECT_TRUE(plane_
                    ->Document(sre_, id,
                               {.root_cause = "pool size too small",
                                .contributing_factors = {"no canary stage"}})
                    .has_value());
    Tick();
    return id;
  }

  int LedgerCount(std::string_view action) {
    int found = 0;
    for (const ledger::Entry& entry : LedgerEntries(action)) found += entry.action == action;
    return found;
  }

  std::vector<ledger::Entry> LedgerEntries(std::string_view action) {
    std::vector<ledger::Entry> entries;
    auto count = store_->EntryCount();
    if (!count) return entries;
    auto rows = store_->ReadEntries(0, *count);
    if (!rows) return entries;
    for (const auto& row : *rows) {
      auto decoded = ledger::DecodeEntry(row.encoded);
      if (decoded && decoded->action == action) entries.push_back(*decoded);
    }
    return entries;
  }

  std::vector<std::string> Rules(std::optional<core::Time> at = std::nullopt) {
    auto findings = plane_->AuditCheck(auditor_, AuditRequest{.at = at});
    EXPECT_TRUE(findings.has_value()) << findings.error().message;
    if (!findings) return {"<audit check failed>"};
    std::vector<std::string> rules;
    for (const evidence::AuditFinding& finding : *findings) rules.push_back(finding.rule);
    return rules;
  }

  static bool Has(const std::vector<std::string>& rules, std::string_view rule) {
    return std::ranges::find(rules, rule) != rules.end();
  }

  static std::string Join(const std::vector<std::string>& items) {
    return fmt::format("[{}]", fmt::join(items, ", "));
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
  Caller admin_, lead_, sre_, auditor_, ci_;
};

// ---- Reviews ----------------------------------------------------------------------------------

TEST_F(ReviewAccessTest, BuiltInTemplateHasEverySection) {
  const std::string id = Documented();
  auto review = plane_->SaveReview(lead_, id, {});
  ASSERT_TRUE(review.has_value()) << review.error().message;
  for (const char* heading :
       {"## Summary", "## Timeline (UTC)", "## Impact", "## Decision", "## Rollback and versions",
        "## Validation", "## Root cause", "## Contributing factors", "## Action items"}) {
    EXPECT_TRUE(Contains(review->markdown, heading)) << heading << "\n" << review->markdown;
  }
  EXPECT_TRUE(Contains(review->markdown, "v1 → v2")) << review->markdown;
  EXPECT_TRUE(Contains(review->markdown, "pool size too small")) << review->markdown;
  EXPECT_TRUE(Contains(review->markdown, "- no canary stage")) << review->markdown;
  EXPECT_TRUE(Contains(review->markdown, "| time (UTC) |")) << review->markdown;
  EXPECT_EQ(review->owner, "lead-1");
  EXPECT_EQ(review->status, "draft");
}

TEST_F(ReviewAccessTest, ConfiguredTemplateIsUsed) {
  WriteFile(temp_.path() / "review.md.mustache",
            "# {{id}} on {{service}}\n\nCause: {{root_cause}}\n{{#owner}}By {{owner}}{{/owner}}\n",
            false);
  ASSERT_NO_FATAL_FAILURE(Reload(config_text_ + "review:\n  template: review.md.mustache\n"));
  const std::string id = Documented();
  auto review = plane_->SaveReview(lead_, id, {});
  ASSERT_TRUE(review.has_value()) << review.error().message;
  EXPECT_EQ(review->markdown,
            fmt::format("# {} on checkout\n\nCause: pool size too small\n\nBy lead-1\n", id));
  const auto entries = LedgerEntries("incident.review_written");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(Contains(entries[0].change.value("template", ""), "review.md.mustache"));
}

TEST_F(ReviewAccessTest, BrokenTemplateFailsConfigLoad) {
  WriteFile(temp_.path() / "broken.mustache", "{{#section}} never closed\n", false);
  auto config = Config::Parse(config_text_ + "review:\n  template: broken.mustache\n", "test.yaml",
                              temp_.path());
  ASSERT_FALSE(config.has_value());
  EXPECT_TRUE(Contains(config.error().message, "review.template")) << config.error().message;
  EXPECT_TRUE(Contains(config.error().message, "broken.mustache")) << config.error().message;
}

TEST_F(ReviewAccessTest, MissingTemplateFailsConfigLoad) {
  auto config = Config::Parse(config_text_ + "review:\n  template: absent.mustache\n", "test.yaml",
                              temp_.path());
  ASSERT_FALSE(config.has_value());
  EXPECT_TRUE(Contains(config.error().message, "absent.mustache")) << config.error().message;
}

TEST_F(ReviewAccessTest, StatusChangesGoToLedger) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {.markdown = "# Review\n"}).has_value());
  auto in_review = plane_->UpdateReview(lead_, id, {.status = "in_review"});
  ASSERT_TRUE(in_review.has_value()) << in_review.error().message;
  Tick();
  auto completed = plane_->UpdateReview(lead_, id, {.status = "completed", .owner = "sre-1"});
  ASSERT_TRUE(completed.has_value()) << completed.error().message;
  EXPECT_EQ(completed->status, "completed");
  EXPECT_EQ(completed->owner, "sre-1");
  ASSERT_TRUE(completed->completed_at.has_value());
  EXPECT_EQ(*completed->completed_at, Now());
  // written (draft), in_review, completed with the new owner.
  EXPECT_EQ(completed->history.size(), 3u);
  EXPECT_EQ(LedgerCount("review.status_changed"), 3);  // "" -> draft, -> in_review, -> completed
  EXPECT_EQ(LedgerCount("review.owner_changed"), 2);   // "" -> lead-1, -> sre-1

  auto unchanged = plane_->UpdateReview(lead_, id, {.status = "completed"});
  ASSERT_TRUE(unchanged.has_value());
  EXPECT_EQ(LedgerCount("review.status_changed"), 3);
}

TEST_F(ReviewAccessTest, OwnerMustBeOnRoster) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  auto update = plane_->UpdateReview(lead_, id, {.owner = "mallory"});
  ASSERT_FALSE(update.has_value());
  EXPECT_EQ(update.error().code, core::ErrorCode::kInvalidArgument);
  auto write = plane_->SaveReview(lead_, id, {.owner = "mallory"});
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().code, core::ErrorCode::kInvalidArgument);
}

// The bootstrap admin is on the policy's roster but not under `users` in the config.
TEST_F(ReviewAccessTest, ReviewOwnerMayNotBeBootstrapAdmin) {
  const std::string id = Documented();
  auto write = plane_->SaveReview(lead_, id, {.owner = "admin"});
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(write.error().message, "review owner admin is not on the roster"))
      << write.error().message;

  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  auto update = plane_->UpdateReview(lead_, id, {.owner = "admin"});
  ASSERT_FALSE(update.has_value());
  EXPECT_EQ(update.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(update.error().message, "`users` in the config")) << update.error().message;
  EXPECT_EQ(LedgerCount("review.owner_changed"), 1);  // "" -> lead-1 by the write only
}

TEST_F(ReviewAccessTest, InvalidStatusIsRejected) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  auto update = plane_->UpdateReview(lead_, id, {.status = "done"});
  ASSERT_FALSE(update.has_value());
  EXPECT_EQ(update.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(ReviewAccessTest, OwnerMayCompleteButOthersMayNot) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  auto refused = plane_->UpdateReview(sre_, id, {.status = "completed"});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);
  EXPECT_GE(LedgerCount("access.refused"), 1);

  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.owner = "sre-1"}).has_value());
  auto completed = plane_->UpdateReview(sre_, id, {.status = "completed"});
  ASSERT_TRUE(completed.has_value()) << completed.error().message;
  EXPECT_EQ(completed->status, "completed");
}

TEST_F(ReviewAccessTest, ReplacingCompletedReviewReopensIt) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {.markdown = "# First\n"}).has_value());
  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "completed"}).has_value());
  auto replaced = plane_->SaveReview(lead_, id, {.markdown = "# Second\n"});
  ASSERT_TRUE(replaced.has_value()) << replaced.error().message;
  EXPECT_EQ(replaced->markdown, "# Second\n");
  EXPECT_EQ(replaced->status, "in_review");
  EXPECT_FALSE(replaced->completed_at.has_value());
}

TEST_F(ReviewAccessTest, StatusCanChangeAfterClose) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  ASSERT_TRUE(plane_
                  ->AddActionItem(lead_, id,
                                  NewActionItem{.title = "add a canary",
                                                .owner = "sre-1",
                                                .due = core::ParseDate("2027-01-31").value()})
                  .has_value());
  auto closed = plane_->Close(lead_, id);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  auto completed = plane_->UpdateReview(lead_, id, {.status = "completed"});
  ASSERT_TRUE(completed.has_value()) << completed.error().message;
  EXPECT_EQ(completed->status, "completed");
}

TEST_F(ReviewAccessTest, HtmlRendersTablesAndEscapesRawHtml) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  auto html = plane_->ReviewHtml(auditor_, id);
  ASSERT_TRUE(html.has_value()) << html.error().message;
  EXPECT_TRUE(html->starts_with("<!DOCTYPE html>")) << *html;
  EXPECT_TRUE(Contains(*html, "<table>")) << *html;
  EXPECT_TRUE(Contains(*html, "<th>time (UTC)</th>")) << *html;
  EXPECT_TRUE(Contains(*html, "<h2>Root cause</h2>")) << *html;
  EXPECT_TRUE(Contains(*html, "status: draft")) << *html;

  ASSERT_TRUE(plane_->SaveReview(lead_, id, {.markdown = "# R\n\n<script>alert(1)</script>\n"})
                  .has_value());
  html = plane_->ReviewHtml(auditor_, id);
  ASSERT_TRUE(html.has_value()) << html.error().message;
  EXPECT_FALSE(Contains(*html, "<script>")) << *html;
}

TEST_F(ReviewAccessTest, AuditCountsOnlyCompletedReview) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  Tick(days(8));
  auto rules = Rules();
  EXPECT_TRUE(Has(rules, "missing_review")) << Join(rules);

  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "in_review"}).has_value());
  rules = Rules();
  EXPECT_TRUE(Has(rules, "missing_review")) << Join(rules);

  const core::Time before_completion = Now();
  Tick();
  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "completed"}).has_value());
  rules = Rules();
  EXPECT_FALSE(Has(rules, "missing_review")) << Join(rules);
  rules = Rules(before_completion);
  EXPECT_TRUE(Has(rules, "missing_review")) << "as of before completion: " << Join(rules);
}

TEST_F(ReviewAccessTest, EvidenceReviewCarriesOwnerAndStatus) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {.markdown = "# Review\n"}).has_value());
  ASSERT_TRUE(plane_->UpdateReview(lead_, id, {.status = "completed"}).has_value());
  auto bundle = plane_->ExportEvidence(auditor_, id);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  auto files = evidence::ReadTarGz(*bundle);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  auto review = std::ranges::find(*files, "review.md", &evidence::ArchiveFile::path);
  ASSERT_NE(review, files->end());
  EXPECT_EQ(review->content, "> Review owner: lead-1 · status: completed\n\n# Review\n");
  auto report = std::ranges::find(*files, "report.html", &evidence::ArchiveFile::path);
  ASSERT_NE(report, files->end());
  EXPECT_TRUE(Contains(report->content, "<h1>Review</h1>")) << report->content;
}

// ---- Action items -------------------------------------------------------------------------

TEST_F(ReviewAccessTest, ActionReportFiltersAndCountsDaysOverdue) {
  const std::string id = Documented();
  auto soon = plane_->AddActionItem(
      lead_, id,
      {.title = "add a canary", .owner = "sre-1", .due = core::ParseDate("2026-12-05").value()});
  ASSERT_TRUE(soon.has_value()) << soon.error().message;
  auto later = plane_->AddActionItem(
      lead_, id,
      {.title = "alert on pool", .owner = "lead-1", .due = core::ParseDate("2027-02-01").value()});
  ASSERT_TRUE(later.has_value()) << later.error().message;

  auto all = plane_->ListAllActionItems(auditor_, {});
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].item.id, soon->id);  // earliest due first
  EXPECT_EQ((*all)[0].service, "checkout");
  EXPECT_EQ((*all)[0].days_overdue, 0);

  auto mine = plane_->ListAllActionItems(auditor_, {.owner = "lead-1"});
  ASSERT_TRUE(mine.has_value());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].item.id, later->id);
  auto none_for_owner = plane_->ListAllActionItems(auditor_, {.owner = "lead-2"});
  ASSERT_TRUE(none_for_owner.has_value()) << none_for_owner.error().message;
  EXPECT_TRUE(none_for_owner->empty());

  clock_.Set(core::ParseTime("2026-12-08T12:00:00Z").value());
  auto overdue = plane_->ListAllActionItems(auditor_, {.overdue_only = true});
  ASSERT_TRUE(overdue.has_value()) << overdue.error().message;
  ASSERT_EQ(overdue->size(), 1u);
  EXPECT_EQ((*overdue)[0].item.id, soon->id);
  EXPECT_EQ((*overdue)[0].days_overdue, 3);

  auto done = plane_->CompleteActionItem(sre_, soon->id, {.evidence = "https://git.example/pr/7"});
  ASSERT_TRUE(done.has_value()) << done.error().message;
  overdue = plane_->ListAllActionItems(auditor_, {.overdue_only = true});
  ASSERT_TRUE(overdue.has_value());
  EXPECT_TRUE(overdue->empty());
}

TEST_F(ReviewAccessTest, ActionReportRejectsUnknownFilters) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_
                  ->AddActionItem(lead_, id,
                                  {.title = "add a canary",
                                   .owner = "sre-1",
                                   .due = core::ParseDate("2026-12-05").value()})
                  .has_value());

  auto service = plane_->ListAllActionItems(auditor_, {.service = "nosuch"});
  ASSERT_FALSE(service.has_value());
  EXPECT_EQ(service.error().code, core::ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(service.error().message, "service nosuch is not in the configuration"))
      << service.error().message;

  auto owner = plane_->ListAllActionItems(auditor_, {.owner = "ghost", .overdue_only = true});
  ASSERT_FALSE(owner.has_value());
  EXPECT_EQ(owner.error().code, core::ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(owner.error().message, "owner ghost is not on the roster"))
      << owner.error().message;
}

TEST_F(ReviewAccessTest, ActionOwnerMustBeOnRoster) {
  const std::string id = Documented();
  auto ghost = plane_->AddActionItem(
      lead_, id,
      {.title = "rewrite", .owner = "ghost", .due = core::ParseDate("2027-01-01").value()});
  ASSERT_FALSE(ghost.has_value());
  EXPECT_EQ(ghost.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(ghost.error().message, "action item owner ghost is not on the roster"))
      << ghost.error().message;
  EXPECT_EQ(LedgerCount("action_item.added"), 0);
}

TEST_F(ReviewAccessTest, ActionOwnerMayNotBeBootstrapAdmin) {
  const std::string id = Documented();
  auto admin = plane_->AddActionItem(
      lead_, id,
      {.title = "rewrite", .owner = "admin", .due = core::ParseDate("2027-01-01").value()});
  ASSERT_FALSE(admin.has_value());
  EXPECT_EQ(admin.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(admin.error().message, "action item owner admin is not on the roster"))
      << admin.error().message;
  EXPECT_TRUE(Contains(admin.error().message, "`users` in the config")) << admin.error().message;
  EXPECT_EQ(LedgerCount("action_item.added"), 0);
}

TEST_F(ReviewAccessTest, DoneNeedsHttpEvidenceUrl) {
  const std::string id = Documented();
  auto item = plane_->AddActionItem(
      lead_, id,
      {.title = "rewrite", .owner = "sre-1", .due = core::ParseDate("2027-01-01").value()});
  ASSERT_TRUE(item.has_value()) << item.error().message;
  for (const std::string bad :
       {"not a url at all", "git.example/pr/7", "://x", "https://", "https:///pr/7",
        "javascript:alert(1)", "javascript://%0Aalert(1)", "data:text/html,<b>x</b>",
        "data://text/html,x", "ftp://git.example/pr/7", "file:///etc/passwd",
        "https://git.example/pr 7", "https://git.example/\x01"}) {
    auto done = plane_->CompleteActionItem(sre_, item->id, {.evidence = bad});
    ASSERT_FALSE(done.has_value()) << bad;
    EXPECT_EQ(done.error().code, core::ErrorCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(done.error().message, "only http:// and https:// URLs"))
        << done.error().message;
  }
  EXPECT_EQ(LedgerCount("action_item.completed"), 0);
  auto done = plane_->CompleteActionItem(sre_, item->id, {.evidence = "HTTPS://git.example/pr/7"});
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(done->evidence_link, "HTTPS://git.example/pr/7");
}

TEST_F(ReviewAccessTest, ClosedIncidentReviewWriteNamesStatus) {
  const std::string id = Documented();
  ASSERT_TRUE(plane_->SaveReview(lead_, id, {}).has_value());
  ASSERT_TRUE(plane_
                  ->AddActionItem(lead_, id,
                                  {.title = "add a canary",
                                   .owner = "sre-1",
                                   .due = core::ParseDate("2027-01-31").value()})
                  .has_value());
  ASSERT_TRUE(plane_->Close(lead_, id).has_value());
  auto write = plane_->SaveReview(lead_, id, {.markdown = "# New\n"});
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(write.error().message, "backout review status " + id))
      << write.error().message;
}

TEST_F(ReviewAccessTest, NotDoingNeedsReason) {
  const std::string id = Documented();
  auto item = plane_->AddActionItem(
      lead_, id,
      {.title = "rewrite", .owner = "sre-1", .due = core::ParseDate("2027-01-01").value()});
  ASSERT_TRUE(item.has_value()) << item.error().message;
  auto bare = plane_->CompleteActionItem(sre_, item->id, {.not_doing = true});
  ASSERT_FALSE(bare.has_value());
  EXPECT_EQ(bare.error().code, core::ErrorCode::kInvalidArgument);
  auto reasoned =
      plane_->CompleteActionItem(sre_, item->id, {.not_doing = true, .reason = "superseded"});
  ASSERT_TRUE(reasoned.has_value()) << reasoned.error().message;
  EXPECT_EQ(reasoned->status, core::ActionItemStatus::kNotDoing);
  EXPECT_EQ(reasoned->reason, "superseded");
}

// ---- Access reviews -----------------------------------------------------------------------

TEST_F(ReviewAccessTest, AccessReviewListsDecidersAndExecutors) {
  auto report = plane_->AccessReview(auditor_);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->services.size(), 1u);
  const ServiceAccess& checkout = report->services[0];
  EXPECT_EQ(checkout.provider, "command");
  EXPECT_EQ(checkout.deciders, std::vector<std::string>{"lead-1"});
  EXPECT_EQ(checkout.executors, std::vector<std::string>{"sre-1"});
  EXPECT_EQ(checkout.roster_deciders, (std::vector<std::string>{"lead-1", "lead-2"}));
  EXPECT_EQ(checkout.roster_executors, std::vector<std::string>{"sre-1"});
  EXPECT_TRUE(Contains(checkout.bypass, "runbook")) << checkout.bypass;
  EXPECT_EQ(report->sha256.size(), 64u);
}

TEST_F(ReviewAccessTest, RosterMemberWithoutGrantIsFinding) {
  auto report = plane_->AccessReview(auditor_);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->findings.size(), 1u);
  EXPECT_EQ(report->findings[0].kind, "roster_without_grant");
  EXPECT_EQ(report->findings[0].user, "lead-2");

  MakeUser("lead-2", {core::Role::kEngineeringLead}, {});
  report = plane_->AccessReview(auditor_);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->findings.empty());
}

// The API refuses a grant that is not on the roster, so the grant is made while it is and the
// roster then narrowed by a reload, as an admin editing the config would.
TEST_F(ReviewAccessTest, GrantOffRosterIsFindingInBothReviews) {
  MakeUser("lead-2", {core::Role::kEngineeringLead}, {});
  std::string narrowed = config_text_;
  narrowed.replace(narrowed.find("services: [checkout]}"), 21, "services: []}");
  ASSERT_NO_FATAL_FAILURE(Reload(narrowed));

  auto report = plane_->AccessReview(auditor_);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->findings.size(), 1u);
  EXPECT_EQ(report->findings[0].kind, "grant_not_on_roster");
  EXPECT_EQ(report->findings[0].user, "sre-1");
  EXPECT_TRUE(report->services[0].roster_executors.empty());
  EXPECT_EQ(report->services[0].executors, std::vector<std::string>{"sre-1"});
  EXPECT_TRUE(Has(Rules(), "grant_not_on_roster")) << Join(Rules());

  ASSERT_NO_FATAL_FAILURE(Reload(config_text_));
  report = plane_->AccessReview(auditor_);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->findings.empty());
  EXPECT_FALSE(Has(Rules(), "grant_not_on_roster")) << Join(Rules());
}

TEST_F(ReviewAccessTest, AttestationRecordsDigestOfList) {
  auto report = plane_->AccessReview(lead_);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  auto attestation = plane_->AttestAccessReview(lead_);
  ASSERT_TRUE(attestation.has_value()) << attestation.error().message;
  EXPECT_EQ(attestation->attested_by, "lead-1");
  EXPECT_EQ(attestation->attested_at, Now());
  EXPECT_EQ(attestation->sha256, report->sha256);
  EXPECT_EQ(attestation->findings, 1);

  auto canonical = core::CanonicalForDigest(ListJson(*report));
  ASSERT_TRUE(canonical.has_value());
  EXPECT_EQ(ledger::ToHex(ledger::Sha256(*canonical)), attestation->sha256);

  const auto entries = LedgerEntries("access_review.attested");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].actor, "lead-1");
  EXPECT_EQ(entries[0].change.value("sha256", ""), attestation->sha256);

  auto again = plane_->AccessReview(auditor_);
  ASSERT_TRUE(again.has_value());
  ASSERT_TRUE(again->last_attestation.has_value());
  EXPECT_EQ(again->last_attestation->id, attestation->id);
}

TEST_F(ReviewAccessTest, AccessReviewRefusalNamesCommand) {
  auto refused = plane_->AccessReview(sre_);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kPermissionDenied);
  EXPECT_TRUE(refused.error().message.starts_with("access review needs the role"))
      << refused.error().message;
  EXPECT_FALSE(Contains(refused.error().message, "read_ledger")) << refused.error().message;
}

TEST_F(ReviewAccessTest, AuditorMayReadButNotAttest) {
  EXPECT_TRUE(plane_->AccessReview(auditor_).has_value());
  auto attestation = plane_->AttestAccessReview(auditor_);
  ASSERT_FALSE(attestation.has_value());
  EXPECT_EQ(attestation.error().code, core::ErrorCode::kPermissionDenied);
  auto executor = plane_->AccessReview(sre_);
  ASSERT_FALSE(executor.has_value());
  EXPECT_EQ(executor.error().code, core::ErrorCode::kPermissionDenied);
}

TEST_F(ReviewAccessTest, AuditFindsAccessReviewOlderThanNinetyDays) {
  EXPECT_FALSE(Has(Rules(Now() + days(89)), "access_review_overdue"));
  auto rules = Rules(Now() + days(91));
  EXPECT_TRUE(Has(rules, "access_review_overdue")) << Join(rules);

  Tick(days(91));
  ASSERT_TRUE(plane_->AttestAccessReview(admin_).has_value());
  rules = Rules();
  EXPECT_FALSE(Has(rules, "access_review_overdue")) << Join(rules);
  rules = Rules(Now() + days(91));
  EXPECT_TRUE(Has(rules, "access_review_overdue")) << Join(rules);
}

}  // namespace
}  // namespace backout::app
