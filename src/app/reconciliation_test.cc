// Reconciliation against a runbook service whose `history` command prints a hand-written record.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/history_key.h"
#include "app/job_runner.h"
#include "app/records.h"
#include "ledger/entry.h"
#include "providers/registry.h"
#include "support/postgres_server.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using nlohmann::json;

core::Time At(const char* text) { return *core::ParseTime(text); }

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

// The tool's record: v1 and v2 deployed by CI, then alice put v1 back by hand.
constexpr char kHistoryLines[] =
    R"({"version": "v1", "time": "2026-12-01T10:00:00Z", "actor": "ci"}
{"version": "v2", "time": "2026-12-02T10:00:00Z", "actor": "ci"}
{"version": "v1", "time": "2026-12-03T09:30:00Z", "actor": "alice"}
)";

// A control plane over SQLite with `checkout` (a runbook with a `history` command that prints
// the file `history.jsonl`) and `legacy` (a runbook without one).
class ReconciliationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& dir = temp_.path();
    WriteFile(dir / "history.jsonl", kHistoryLines, false);
    WriteFile(dir / "rollback.sh", "#!/bin/sh\nexit 0\n", true);
    WriteFile(dir / "history.sh", fmt::format("#!/bin/sh\ncat {}/history.jsonl\n", dir.string()),
              true);
    const std::string text = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: viewer-1, roles: [viewer]}}
  - {{name: ci-bot, roles: [ci]}}
services:
  - name: checkout
    reconcile_interval: 10m
    provider:
      kind: command
      run: [{0}/rollback.sh]
      history: [{0}/history.sh]
      output_dir: {0}
  - name: legacy
    provider: {{kind: command, run: [{0}/rollback.sh], output_dir: {0}}}
)",
                                         dir.string());
    auto config = Config::Parse(text, "test.yaml", dir);
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

    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    const std::string url = StoreUrl();
    ASSERT_FALSE(url.empty());
    auto store = store::OpenStore(url, store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
    plane_ = std::make_unique<ControlPlane>(*store_, clock_, *settings);
    ASSERT_TRUE(plane_->BootstrapAdmin().has_value());
    std::string token = ReadFile(dir / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    auto admin = plane_->Authenticate(token);
    ASSERT_TRUE(admin.has_value()) << admin.error().message;
    admin_ = *admin;
    lead_ = MakeUser("lead-1", {core::Role::kEngineeringLead});
    viewer_ = MakeUser("viewer-1", {core::Role::kViewer});
    ci_ = MakeUser("ci-bot", {core::Role::kCi});
    runner_ = std::make_unique<JobRunner>(*plane_, JobRunnerOptions{.owner = "test-worker"});
  }

  virtual std::string StoreUrl() {
    return fmt::format("sqlite:{}/backout.db", temp_.path().string());
  }

  Caller MakeUser(const std::string& name, std::vector<core::Role> roles) {
    auto created = plane_->CreateUser(admin_, NewUser{.name = name, .roles = std::move(roles)});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    auto caller = plane_->Authenticate(created ? created->token : "");
    EXPECT_TRUE(caller.has_value());
    return caller.value_or(Caller{});
  }

  // Records the two CI deployments the tool's history shows.
  void RecordCiChanges() {
    ASSERT_TRUE(plane_->RecordChange(ci_, NewChange{.service = "checkout",
                                                    .version = "v1",
                                                    .deployer = "ci",
                                                    .time = At("2026-12-01T10:02:00Z")}));
    ASSERT_TRUE(plane_->RecordChange(ci_, NewChange{.service = "checkout",
                                                    .version = "v2",
                                                    .previous_version = "v1",
                                                    .deployer = "ci",
                                                    .time = At("2026-12-02T09:58:00Z")}));
  }

  void RunJobs() {
    while (true) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  std::vector<DiscoveredRollback> Discovered() {
    auto page = plane_->ListDiscoveredRollbacks(lead_, {}, ListOptions{});
    EXPECT_TRUE(page.has_value()) << page.error().message;
    return page ? page->items : std::vector<DiscoveredRollback>{};
  }

  int LedgerCount(std::string_view action) {
    auto count = store_->EntryCount();
    auto entries = store_->ReadEntries(0, *count);
    int found = 0;
    for (const auto& entry : *entries) {
      auto decoded = ledger::DecodeEntry(entry.encoded);
      if (decoded && decoded->action == action) ++found;
    }
    return found;
  }

  std::vector<store::Job> JobsOf(const std::string& subject) {
    std::vector<store::Job> jobs;
    EXPECT_TRUE(store_->Read([&](store::Transaction& tx) -> core::Result<void> {
      auto listed = tx.ListJobs(subject);
      if (!listed) return std::unexpected(listed.error());
      jobs = *listed;
      return {};
    }));
    return jobs;
  }

  testing::TempDir temp_;
  core::ManualClock clock_{At("2026-12-04T12:00:00Z")};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<JobRunner> runner_;
  Caller admin_, lead_, viewer_, ci_;
};

TEST_F(ReconciliationTest, HandMadeRollbackDiscoveredOnce) {
  RecordCiChanges();

  auto first = plane_->Reconcile(lead_, "checkout");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->entries_read, 3);
  EXPECT_EQ(first->matched, 2);
  EXPECT_EQ(first->discovered_rollbacks.size(), 1u);
  EXPECT_TRUE(first->discovered_changes.empty());
  for (int run = 0; run < 3; ++run) {
    auto again = plane_->Reconcile(lead_, "checkout");
    ASSERT_TRUE(again.has_value()) << again.error().message;
    // Later runs read from an hour before the newest entry, so only alice's entry comes again.
    EXPECT_EQ(again->already_known, again->entries_read);
    EXPECT_TRUE(again->discovered_rollbacks.empty());
  }

  const auto found = Discovered();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].actor, "alice");
  EXPECT_EQ(found[0].time, At("2026-12-03T09:30:00Z"));
  EXPECT_EQ(found[0].version, "v1");
  EXPECT_EQ(found[0].from_version, "v2");
  EXPECT_EQ(found[0].evidence, "version order");
  EXPECT_EQ(found[0].state, "open");
  EXPECT_EQ(LedgerCount("rollback.discovered"), 1);
}

TEST_F(ReconciliationTest, ScheduledJobDiscoversOnceAcrossRuns) {
  RecordCiChanges();
  ASSERT_TRUE(plane_->ScheduleReconciliation());
  ASSERT_TRUE(plane_->ScheduleReconciliation());  // a restart: no second job
  EXPECT_EQ(JobsOf("service/checkout").size(), 1u);
  EXPECT_TRUE(JobsOf("service/legacy").empty());

  for (int run = 0; run < 4; ++run) {
    RunJobs();
    clock_.Advance(std::chrono::minutes(10));
  }
  RunJobs();

  EXPECT_EQ(Discovered().size(), 1u);
  EXPECT_EQ(LedgerCount("rollback.discovered"), 1);
  int queued = 0;
  for (const store::Job& job : JobsOf("service/checkout")) {
    queued += job.state == store::JobState::kQueued ? 1 : 0;
  }
  EXPECT_EQ(queued, 1);
}

TEST_F(ReconciliationTest, ToolMarkedRollbackUsesToolEvidence) {
  WriteFile(temp_.path() / "history.jsonl",
            R"({"version": "v7", "time": "2026-12-03T08:00:00Z", "actor": "bob", "kind": "rollback"}
)",
            false);
  auto report = plane_->Reconcile(lead_, "checkout");
  ASSERT_TRUE(report.has_value()) << report.error().message;
  const auto found = Discovered();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].evidence, "tool");
  EXPECT_EQ(found[0].actor, "bob");
}

TEST_F(ReconciliationTest, UnrecordedDeployBecomesDiscoveredChange) {
  auto report = plane_->Reconcile(lead_, "checkout");
  ASSERT_TRUE(report.has_value()) << report.error().message;
  // Without recorded changes, v1 and v2 are discovered deployments and v1 again a rollback.
  EXPECT_EQ(report->discovered_changes.size(), 2u);
  EXPECT_EQ(report->discovered_rollbacks.size(), 1u);

  auto changes = plane_->ListChanges(lead_, "checkout", ListOptions{});
  ASSERT_TRUE(changes.has_value());
  ASSERT_EQ(changes->items.size(), 2u);
  for (const core::Change& change : changes->items) {
    EXPECT_EQ(change.source, core::ChangeSource::kDiscovered) << change.id;
    EXPECT_EQ(change.deployer, "ci") << change.id;
  }
  EXPECT_EQ(LedgerCount("change.discovered"), 2);
}

TEST_F(ReconciliationTest, ServiceWithoutHistoryIsNotReconcilable) {
  auto report = plane_->Reconcile(lead_, "legacy");
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, core::ErrorCode::kFailedPrecondition);

  auto shown = plane_->ShowService(lead_, "legacy");
  ASSERT_TRUE(shown.has_value()) << shown.error().message;
  EXPECT_EQ(shown->service["reconcilable"], false);
  EXPECT_NE(shown->service["reconciliation"]["reason"].get<std::string>().find("history"),
            std::string::npos);

  auto checkout = plane_->ShowService(lead_, "checkout");
  ASSERT_TRUE(checkout.has_value());
  EXPECT_EQ(checkout->service["reconcilable"], true);
  EXPECT_EQ(checkout->service["reconciliation"]["interval_seconds"], 600);
}

TEST_F(ReconciliationTest, FlagIsStoredForAuditChecks) {
  ASSERT_TRUE(plane_->ScheduleReconciliation());
  std::optional<store::Object> legacy;
  ASSERT_TRUE(store_->Read([&](store::Transaction& tx) -> core::Result<void> {
    auto object = tx.Get(kReconciliationKind, "legacy");
    if (!object) return std::unexpected(object.error());
    legacy = *object;
    return {};
  }));
  ASSERT_TRUE(legacy.has_value());
  EXPECT_EQ(legacy->body["reconcilable"], false);
}

TEST_F(ReconciliationTest, ViewerMayNotReconcile) {
  auto report = plane_->Reconcile(viewer_, "checkout");
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, core::ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Discovered().empty());
}

TEST_F(ReconciliationTest, AdminRefusalNamesReconcile) {
  auto report = plane_->Reconcile(admin_, "checkout");
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, core::ErrorCode::kPermissionDenied);
  EXPECT_TRUE(report.error().message.starts_with(
      "reconcile_service needs the role engineering-lead or devops-engineer; user "))
      << report.error().message;
}

TEST_F(ReconciliationTest, ViewerRefusalNamesResolve) {
  RecordCiChanges();
  ASSERT_TRUE(plane_->Reconcile(lead_, "checkout"));
  const std::string id = Discovered().at(0).id;

  auto documented = plane_->DocumentDiscoveredRollback(viewer_, id, "reverted by hand");
  ASSERT_FALSE(documented.has_value());
  EXPECT_EQ(documented.error().message,
            "resolve_discovered_rollback needs the role engineering-lead or devops-engineer; "
            "user viewer-1 has viewer");
}

TEST_F(ReconciliationTest, LinkRecordsOnIncidentTimeline) {
  RecordCiChanges();
  ASSERT_TRUE(plane_->Reconcile(lead_, "checkout"));
  const std::string id = Discovered().at(0).id;
  auto incident = plane_->OpenIncident(
      lead_, NewIncident{.service = "checkout", .title = "errors after a manual rollback"});
  ASSERT_TRUE(incident.has_value()) << incident.error().message;

  auto linked = plane_->LinkDiscoveredRollback(lead_, id, incident->id);
  ASSERT_TRUE(linked.has_value()) << linked.error().message;
  EXPECT_EQ(linked->state, "linked");
  EXPECT_EQ(linked->incident, incident->id);

  auto shown = plane_->GetIncident(lead_, incident->id);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(shown->timeline.back().kind, "discovered_rollback_linked");

  auto again = plane_->DocumentDiscoveredRollback(lead_, id, "hotfix");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(LedgerCount("discovered_rollback.linked"), 1);
}

TEST_F(ReconciliationTest, DocumentNeedsReason) {
  RecordCiChanges();
  ASSERT_TRUE(plane_->Reconcile(lead_, "checkout"));
  const std::string id = Discovered().at(0).id;

  auto blank = plane_->DocumentDiscoveredRollback(lead_, id, " ");
  ASSERT_FALSE(blank.has_value());
  EXPECT_EQ(blank.error().code, core::ErrorCode::kInvalidArgument);

  auto documented =
      plane_->DocumentDiscoveredRollback(lead_, id, "alice reverted a bad config by hand");
  ASSERT_TRUE(documented.has_value()) << documented.error().message;
  EXPECT_EQ(documented->state, "documented");
  EXPECT_EQ(documented->resolved_by, "lead-1");
}

TEST_F(ReconciliationTest, TimelineShowsDiscoveredRollback) {
  RecordCiChanges();
  ASSERT_TRUE(plane_->Reconcile(lead_, "checkout"));
  auto timeline = plane_->ServiceTimeline(lead_, "checkout");
  ASSERT_TRUE(timeline.has_value()) << timeline.error().message;
  ASSERT_EQ(timeline->size(), 3u);
  EXPECT_EQ((*timeline)[2]["kind"], "rollback_discovered");
  EXPECT_EQ((*timeline)[2]["actor"], "alice");
}

TEST_F(ReconciliationTest, FailingHistoryRecordsError) {
  WriteFile(temp_.path() / "history.sh", "#!/bin/sh\necho broken >&2\nexit 3\n", true);
  auto report = plane_->Reconcile(lead_, "checkout");
  ASSERT_FALSE(report.has_value());
  auto shown = plane_->ShowService(lead_, "checkout");
  ASSERT_TRUE(shown.has_value());
  EXPECT_NE(shown->service["reconciliation"]["last_error"].get<std::string>().find("broken"),
            std::string::npos);
}

// The same store contract on each backend: concurrent runs yield one record per tool entry.
class ReconciliationBackendTest : public ReconciliationTest,
                                  public ::testing::WithParamInterface<std::string> {
 protected:
  std::string StoreUrl() override {
    if (GetParam() != "Postgres") return ReconciliationTest::StoreUrl();
    auto server = testing::PostgresServer::Shared();
    EXPECT_TRUE(server.has_value()) << server.error();
    if (!server) return "";
    auto database = (*server)->CreateDatabase();
    EXPECT_TRUE(database.has_value()) << database.error();
    return database.value_or("");
  }
};

TEST_P(ReconciliationBackendTest, ConcurrentRunsDiscoverOnce) {
  RecordCiChanges();
  std::vector<std::thread> threads;
  std::vector<core::Result<ReconcileReport>> reports(4);
  for (size_t i = 0; i < reports.size(); ++i) {
    threads.emplace_back([&, i] { reports[i] = plane_->Reconcile(lead_, "checkout"); });
  }
  for (std::thread& thread : threads) thread.join();

  size_t discovered = 0;
  for (const auto& report : reports) {
    ASSERT_TRUE(report.has_value()) << report.error().message;
    discovered += report->discovered_rollbacks.size();
  }
  EXPECT_EQ(discovered, 1u);
  EXPECT_EQ(Discovered().size(), 1u);
  EXPECT_EQ(LedgerCount("rollback.discovered"), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReconciliationBackendTest,
                         ::testing::Values("Sqlite", "Postgres"),
                         [](const auto& info) { return info.param; });

// A key stored by an earlier release stays the same, so entries already reconciled are not read
// as new. A switch inferred from the `current` link gets a key of its own: a `touch` of the same
// release's marker within the file system's clock tick has the same version and time.
TEST(HistoryEntryKeyTest, LinkSwitchDiffersFromMarkerAtSameInstant) {
  providers::HistoryEntry marker{.version = "v1",
                                 .time = At("2026-12-03T09:30:00Z"),
                                 .actor = "alice",
                                 .kind = providers::HistoryKind::kDeploy,
                                 .details = {{"time_source", "marker modification time"}}};
  EXPECT_EQ(HistoryEntryKey("web", marker), "web/8198346e3a1551a248da07587e9179ac");

  providers::HistoryEntry link = marker;
  link.details = {{"discovered", true}, {"time_source", "current link status change time"}};
  EXPECT_TRUE(InferredFromLink(link));
  EXPECT_FALSE(InferredFromLink(marker));
  EXPECT_NE(HistoryEntryKey("web", link), HistoryEntryKey("web", marker));
  EXPECT_EQ(HistoryEntryKey("web", link), HistoryEntryKey("web", link));
  EXPECT_NE(HistoryEntryKey("api", link), HistoryEntryKey("web", link));
}

}  // namespace
}  // namespace backout::app
