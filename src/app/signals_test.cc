// The detection use cases over a real SQLite store and a real `command` runbook: intake,
// correlation and the automatic policy, with a manual clock.
#include "app/signals.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_runner.h"
#include "app/records.h"
#include "app/signal_internal.h"
#include "ledger/verify.h"
#include "providers/registry.h"
#include "support/postgres_server.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

core::Time Start() {
  return core::Time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 4)) + 12h;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& dir = temp_.path();
    std::ofstream(dir / "live") << "v2\n";
    std::ofstream(dir / "rollback.sh") << fmt::format(
        "#!/bin/sh\necho \"$BACKOUT_TARGET_VERSION\" >> {0}/actions\n"
        "echo \"$BACKOUT_TARGET_VERSION\" > {0}/live\n",
        dir.string());
    std::ofstream(dir / "status.sh") << fmt::format("#!/bin/sh\ncat {}/live\n", dir.string());
    ::chmod((dir / "rollback.sh").c_str(), 0755);
    ::chmod((dir / "status.sh").c_str(), 0755);

    const std::string text = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: ci-bot, roles: [ci]}}
signals:
  alertmanager: {{bearer_token: env:BACKOUT_SIGNAL_TEST_TOKEN, hmac_secret: env:BACKOUT_SIGNAL_TEST_HMAC}}
services:
  - name: checkout
    depends_on: [payments]
    provider: {{kind: command, run: [{0}/rollback.sh], status: [{0}/status.sh], output_dir: {0}}}
    detection:
      watch_window: 30m
      automatic_rollback: {{enabled: true, severities: [critical]}}
  - name: payments
    provider: {{kind: command, run: [{0}/rollback.sh], output_dir: {0}}}
)",
                                         dir.string());
    ::setenv("BACKOUT_SIGNAL_TEST_TOKEN", "signal-test-token", 1);
    ::setenv("BACKOUT_SIGNAL_TEST_HMAC", "signal-test-hmac", 1);
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
    ASSERT_TRUE(plane_->RecordPolicy("admin").has_value());
    auto admin = plane_->Authenticate([&] {
      std::string token = ReadFile(dir / "data" / "admin.token");
      while (!token.empty() && token.back() == '\n') token.pop_back();
      return token;
    }());
    ASSERT_TRUE(admin.has_value());
    admin_ = *admin;
    auto ci = plane_->CreateUser(admin_, NewUser{.name = "ci-bot", .roles = {core::Role::kCi}});
    ASSERT_TRUE(ci.has_value()) << ci.error().message;
    auto caller = plane_->Authenticate(ci->token);
    ASSERT_TRUE(caller.has_value());
    ci_ = *caller;
    runner_ = std::make_unique<JobRunner>(
        *plane_, JobRunnerOptions{.owner = "test",
                                  .readiness_attempts = 1,
                                  .readiness_interval = std::chrono::milliseconds(1)});
  }

  virtual std::string StoreUrl() {
    return fmt::format("sqlite:{}/backout.db", temp_.path().string());
  }

  // Records v1 (verified good) 45 minutes ago, outside the 30m watch window, and v2 now on
  // checkout; returns v2's id.
  std::string RecordChanges() {
    auto good = plane_->RecordChange(ci_, NewChange{.service = "checkout",
                                                    .version = "v1",
                                                    .previous_version = "v0",
                                                    .time = clock_.Now() - 45min});
    EXPECT_TRUE(good.has_value()) << good.error().message;
    EXPECT_TRUE(plane_->VerifyChange(ci_, good->id, {.passed = true}).has_value());
    auto bad = plane_->RecordChange(ci_, NewChange{.service = "checkout",
                                                   .version = "v2",
                                                   .previous_version = "v1",
                                                   .time = clock_.Now()});
    EXPECT_TRUE(bad.has_value()) << bad.error().message;
    return bad.value_or(core::Change{}).id;
  }

  signals::WebhookPayload Payload(const std::string& fingerprint, core::Time starts_at,
                                  const std::string& status = "firing",
                                  const std::string& severity = "critical") {
    json body = {
        {"version", "4"},
        {"groupKey", "{}:{}"},
        {"status", status},
        {"alerts",
         {{{"status", status},
           {"labels", {{"alertname", "Errors"}, {"service", "checkout"}, {"severity", severity}}},
           {"startsAt", core::FormatTime(starts_at)},
           {"endsAt",
            status == "resolved" ? core::FormatTime(clock_.Now()) : "0001-01-01T00:00:00Z"},
           {"fingerprint", fingerprint}}}}};
    auto payload = signals::ParseAlertmanagerWebhook(body.dump(), "service");
    EXPECT_TRUE(payload.has_value());
    return *payload;
  }

  void RunJobs() {
    for (int i = 0; i < 20; ++i) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  std::vector<core::Incident> Incidents() {
    auto page = plane_->ListIncidents(admin_, {}, {});
    return page ? page->items : std::vector<core::Incident>{};
  }

  int RunbookRuns() {
    const std::string actions = ReadFile(temp_.path() / "actions");
    return static_cast<int>(std::count(actions.begin(), actions.end(), '\n'));
  }

  testing::TempDir temp_;
  core::ManualClock clock_{Start()};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<JobRunner> runner_;
  Caller admin_;
  Caller ci_;
};

TEST_F(SignalTest, SameAlertTwiceIsRecordedOnce) {
  const auto payload = Payload("00000000000000aa", clock_.Now());
  auto first = plane_->IngestAlertmanager(payload);
  auto second = plane_->IngestAlertmanager(payload);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(first->recorded, 1);
  EXPECT_EQ(second->recorded, 0);
  EXPECT_EQ(second->duplicates, 1);
  EXPECT_TRUE(second->job_id.empty());
}

// The changes of every "signal.received" ledger entry, oldest first.
std::vector<json> ReceivedChanges(store::Store& store) {
  std::vector<json> changes;
  auto count = store.EntryCount();
  EXPECT_TRUE(count.has_value()) << count.error().message;
  auto entries = store.ReadEntries(0, count.value_or(0));
  EXPECT_TRUE(entries.has_value()) << entries.error().message;
  for (const ledger::StoredEntry& stored : entries.value_or(std::vector<ledger::StoredEntry>{})) {
    auto entry = ledger::DecodeEntry(stored.encoded);
    EXPECT_TRUE(entry.has_value()) << entry.error().message;
    if (entry && entry->action == "signal.received") changes.push_back(entry->change);
  }
  return changes;
}

TEST_F(SignalTest, LedgerListsOnlyNewSignals) {
  const auto first = Payload("00000000000000c1", clock_.Now());
  signals::WebhookPayload both = Payload("00000000000000c1", clock_.Now());
  both.alerts.push_back(Payload("00000000000000c2", clock_.Now()).alerts.at(0));
  const std::string first_id = "am:" + first.alerts.at(0).Identity();
  const std::string second_id = "am:" + both.alerts.at(1).Identity();

  auto all_new = plane_->IngestAlertmanager(first);
  auto one_new = plane_->IngestAlertmanager(both);

  ASSERT_TRUE(all_new.has_value()) << all_new.error().message;
  ASSERT_TRUE(one_new.has_value()) << one_new.error().message;
  EXPECT_EQ(one_new->recorded, 1);
  EXPECT_EQ(one_new->duplicates, 1);
  const std::vector<json> changes = ReceivedChanges(*store_);
  ASSERT_EQ(changes.size(), 2u);
  // The first delivery's entry was prepared before its transaction, the second's written in it.
  ASSERT_EQ(changes[0]["signals"].size(), 1u);
  EXPECT_EQ(changes[0]["signals"][0]["signal"], first_id);
  ASSERT_EQ(changes[1]["signals"].size(), 1u);
  EXPECT_EQ(changes[1]["signals"][0]["signal"], second_id);
  EXPECT_EQ(changes[1]["signals"][0]["status"], "firing");
  EXPECT_EQ(changes[0]["source"], changes[1]["source"]);
  EXPECT_EQ(changes[0]["group_key"], changes[1]["group_key"]);
  auto report = ledger::VerifyLog(*store_, ledger::VerifyOptions{});
  ASSERT_TRUE(report.has_value()) << report.error().message;
}

TEST_F(SignalTest, PreparedEntryMatchesWrittenEntry) {
  // Two deliveries that differ only in their fingerprint, one committed with its prepared entry
  // and one without, so that the batch encodes the second entry itself.
  const auto with_entry = Payload("00000000000000d1", clock_.Now());
  const auto without_entry = Payload("00000000000000d2", clock_.Now());
  PreparedDelivery prepared = plane_->PrepareAlertmanager(with_entry);
  PreparedDelivery unprepared = plane_->PrepareAlertmanager(without_entry);
  ASSERT_TRUE(prepared.entry.has_value());
  unprepared.entry.reset();

  auto first = plane_->IngestAlertmanagerBatch({&prepared});
  auto second = plane_->IngestAlertmanagerBatch({&unprepared});

  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(second.has_value()) << second.error().message;
  const std::vector<json> changes = ReceivedChanges(*store_);
  ASSERT_EQ(changes.size(), 2u);
  json expected = changes[0];
  expected["signals"][0]["signal"] = unprepared.records[0].id;
  EXPECT_EQ(changes[1], expected);
}

TEST_F(SignalTest, BatchStoresPreparedBodies) {
  const auto first_payload = Payload("00000000000000b1", clock_.Now());
  const auto second_payload = Payload("00000000000000b2", clock_.Now(), "firing", "warning");
  PreparedDelivery first = plane_->PrepareAlertmanager(first_payload);
  PreparedDelivery second = plane_->PrepareAlertmanager(second_payload);
  ASSERT_EQ(first.bodies.size(), 1u);
  ASSERT_TRUE(first.bodies[0].has_value()) << first.bodies[0].error().message;

  auto intakes = plane_->IngestAlertmanagerBatch({&first, &second});
  ASSERT_TRUE(intakes.has_value()) << intakes.error().message;
  ASSERT_EQ(intakes->size(), 2u);
  EXPECT_EQ((*intakes)[0].recorded, 1);
  EXPECT_EQ((*intakes)[1].recorded, 1);
  EXPECT_EQ((*intakes)[0].batch, 2u);
  EXPECT_EQ((*intakes)[1].batch, 2u);

  // The stored body is the prepared text, and it decodes to the prepared record.
  std::optional<store::Object> stored;
  auto read = store_->Read([&](store::Transaction& tx) -> core::Result<void> {
    auto object = tx.Get(kSignalKind, first.records[0].id);
    if (!object) return std::unexpected(object.error());
    stored = std::move(*object);
    return {};
  });
  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->service, "checkout");
  EXPECT_EQ(stored->body.dump(), first.bodies[0]->text());
  EXPECT_EQ(stored->body, json(first.records[0]));

  // The ledger's list of new signals comes back for the request's thread to free.
  ASSERT_EQ(first.received.size(), 1u);
  EXPECT_EQ(first.received[0]["signal"], first.records[0].id);
  ASSERT_EQ(second.received.size(), 1u);
  EXPECT_EQ(second.received[0]["signal"], second.records[0].id);

  auto page = plane_->ListSignals(admin_, std::nullopt, {});
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->items.size(), 2u);
  std::map<std::string, std::string> severity_by_id;
  for (const SignalRecord& signal : page->items) severity_by_id[signal.id] = signal.severity;
  EXPECT_EQ(severity_by_id[first.records[0].id], "critical");
  EXPECT_EQ(severity_by_id[second.records[0].id], "warning");
}

TEST_F(SignalTest, ResolvedAlertClosesSignal) {
  const core::Time starts = clock_.Now();
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000ab", starts)).has_value());
  clock_.Advance(1min);
  auto resolved = plane_->IngestAlertmanager(Payload("00000000000000ab", starts, "resolved"));
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(resolved->resolved, 1);
  auto page = plane_->ListSignals(admin_, std::nullopt, {});
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].status, "resolved");
}

TEST_F(SignalTest, AttributedCriticalAlertRollsBackOnce) {
  const std::string bad = RecordChanges();
  clock_.Advance(2min);
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000b1", clock_.Now())).has_value());
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000b2", clock_.Now())).has_value());
  ASSERT_NO_FATAL_FAILURE(RunJobs());

  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  const core::Incident& incident = incidents[0];
  EXPECT_EQ(incident.suspected_change_id.value_or(""), bad);
  ASSERT_EQ(incident.decisions.size(), 1u);
  EXPECT_TRUE(incident.decisions[0].decider.starts_with("policy@"));
  EXPECT_NE(incident.decisions[0].reason.find("loaded by admin"), std::string::npos);
  ASSERT_EQ(incident.rollbacks.size(), 1u);
  EXPECT_EQ(incident.rollbacks[0].target_version, "v1");
  EXPECT_EQ(RunbookRuns(), 1);
}

TEST_F(SignalTest, AlertBeforeChangeNeverRollsBack) {
  const core::Time before = clock_.Now() - 5min;
  RecordChanges();
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000c1", before)).has_value());
  ASSERT_NO_FATAL_FAILURE(RunJobs());
  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_FALSE(incidents[0].suspected_change_id.has_value());
  EXPECT_TRUE(incidents[0].rollbacks.empty());
  EXPECT_EQ(RunbookRuns(), 0);
}

TEST_F(SignalTest, WarningAlertOpensIncidentWithoutRollback) {
  const std::string bad = RecordChanges();
  clock_.Advance(1min);
  ASSERT_TRUE(
      plane_->IngestAlertmanager(Payload("00000000000000d1", clock_.Now(), "firing", "warning"))
          .has_value());
  ASSERT_NO_FATAL_FAILURE(RunJobs());
  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0].suspected_change_id.value_or(""), bad);
  EXPECT_TRUE(incidents[0].rollbacks.empty());
  EXPECT_EQ(incidents[0].state, core::IncidentState::kOpen);
}

TEST_F(SignalTest, RollbackChangeIsNeverRolledBack) {
  RecordChanges();
  clock_.Advance(1min);
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000e1", clock_.Now())).has_value());
  ASSERT_NO_FATAL_FAILURE(RunJobs());
  ASSERT_EQ(RunbookRuns(), 1);

  // CI records the rollback's deploy of v1; an alert after it must not roll it back.
  clock_.Advance(1min);
  auto rollback_change = plane_->RecordChange(
      ci_,
      NewChange{
          .service = "checkout", .version = "v1", .previous_version = "v2", .time = clock_.Now()});
  ASSERT_TRUE(rollback_change.has_value()) << rollback_change.error().message;
  clock_.Advance(1min);
  ASSERT_TRUE(plane_->IngestAlertmanager(Payload("00000000000000e2", clock_.Now())).has_value());
  ASSERT_NO_FATAL_FAILURE(RunJobs());
  EXPECT_EQ(RunbookRuns(), 1);
}

TEST_F(SignalTest, WrongBearerTokenIsRejected) {
  auto rejected = plane_->AuthenticateSignalSender("Bearer wrong", "", "{}");
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_TRUE(plane_->AuthenticateSignalSender("Bearer signal-test-token", "", "{}").has_value());
}

TEST_F(SignalTest, HmacSignatureAuthenticatesBody) {
  const std::string body = R"({"version":"4","alerts":[]})";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const std::string key = "signal-test-hmac";
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);

  EXPECT_TRUE(plane_->AuthenticateSignalSender("", "sha256=" + hex, body).has_value());
  auto tampered = plane_->AuthenticateSignalSender("", "sha256=" + hex, body + " ");
  ASSERT_FALSE(tampered.has_value());
  EXPECT_EQ(tampered.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_FALSE(plane_->AuthenticateSignalSender("", "", body).has_value());
}

// Polls `condition` until it holds; false when it did not within 30 s. The bound only keeps a
// broken job from hanging the test.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int CountEvents(const core::Incident& incident, std::string_view kind) {
  return static_cast<int>(std::ranges::count_if(
      incident.timeline, [&](const core::TimelineEvent& event) { return event.kind == kind; }));
}

// The detection use cases once per backend: SQLite, and PostgreSQL, where concurrent workers
// really race for the same incident.
class SignalBackendTest : public SignalTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string StoreUrl() override {
    if (GetParam() != "Postgres") return SignalTest::StoreUrl();
    auto server = testing::PostgresServer::Shared();
    EXPECT_TRUE(server.has_value()) << server.error();
    if (!server) return "";
    auto database = (*server)->CreateDatabase();
    EXPECT_TRUE(database.has_value()) << database.error();
    return database.value_or("");
  }

  // A delivery of `count` firing alerts of checkout with distinct fingerprints.
  signals::WebhookPayload StormPayload(int count, const std::string& severity) {
    json alerts = json::array();
    for (int i = 0; i < count; ++i) {
      alerts.push_back(
          {{"status", "firing"},
           {"labels", {{"alertname", "Errors"}, {"service", "checkout"}, {"severity", severity}}},
           {"startsAt", core::FormatTime(clock_.Now())},
           {"endsAt", "0001-01-01T00:00:00Z"},
           {"fingerprint", fmt::format("{:016x}", 0x5000 + i)}});
    }
    json body = {{"version", "4"}, {"groupKey", "{}:{}"}, {"status", "firing"}, {"alerts", alerts}};
    auto payload = signals::ParseAlertmanagerWebhook(body.dump(), "service");
    EXPECT_TRUE(payload.has_value());
    return payload.value_or(signals::WebhookPayload{});
  }

  std::vector<store::Job> CorrelationJobs() {
    std::vector<store::Job> jobs;
    auto read = store_->Read([&](store::Transaction& tx) -> core::Result<void> {
      auto listed = tx.ListJobs("signals");
      if (!listed) return std::unexpected(listed.error());
      jobs = *std::move(listed);
      return {};
    });
    EXPECT_TRUE(read.has_value()) << read.error().message;
    return jobs;
  }

  store::Job JobById(int64_t id) {
    store::Job job;
    auto read = store_->Read([&](store::Transaction& tx) -> core::Result<void> {
      auto found = tx.GetJob(id);
      if (!found) return std::unexpected(found.error());
      if (*found) job = **found;
      return {};
    });
    EXPECT_TRUE(read.has_value()) << read.error().message;
    return job;
  }

  int64_t StoredVersion(std::string_view kind, std::string_view id) {
    int64_t version = 0;
    auto read = store_->Read([&](store::Transaction& tx) -> core::Result<void> {
      auto object = tx.Get(kind, id);
      if (!object) return std::unexpected(object.error());
      if (*object) version = (*object)->version;
      return {};
    });
    EXPECT_TRUE(read.has_value()) << read.error().message;
    return version;
  }
};

TEST_P(SignalBackendTest, ConcurrentJobsJoinOneIncident) {
  const std::string bad = RecordChanges();
  clock_.Advance(1min);
  constexpr int kDeliveries = 24;
  for (int i = 0; i < kDeliveries; ++i) {
    auto intake = plane_->IngestAlertmanager(
        Payload(fmt::format("{:016x}", 0xc00 + i), clock_.Now(), "firing", "warning"));
    ASSERT_TRUE(intake.has_value()) << intake.error().message;
  }

  // Four workers, as four `backout serve` worker threads would run them.
  std::vector<std::string> errors(4);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < errors.size(); ++w) {
    workers.emplace_back([&, w] {
      JobRunner runner(*plane_, JobRunnerOptions{.owner = fmt::format("worker-{}", w)});
      while (true) {
        auto ran = runner.RunOnce({});
        if (!ran) errors[w] = ran.error().message;
        if (!ran || !*ran) return;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");

  // Every job succeeded at its first lease: a lost race for the incident was retried at once,
  // not queued again behind a backoff.
  const std::vector<store::Job> jobs = CorrelationJobs();
  ASSERT_EQ(jobs.size(), static_cast<size_t>(kDeliveries));
  for (const store::Job& job : jobs) {
    EXPECT_EQ(job.state, store::JobState::kSucceeded) << "job " << job.id << ": " << job.last_error;
    EXPECT_EQ(job.attempts, 1) << "job " << job.id;
  }
  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0].suspected_change_id.value_or(""), bad);
  EXPECT_EQ(CountEvents(incidents[0], "signal_correlated"), kDeliveries);
  EXPECT_EQ(CountEvents(incidents[0], "automatic_rollback_not_allowed"), kDeliveries);
}

TEST_P(SignalBackendTest, StormWritesIncidentOncePerBatch) {
  const int count = static_cast<int>(signal_internal::kCorrelationBatchSize) + 50;
  auto intake = plane_->IngestAlertmanager(StormPayload(count, "warning"));
  ASSERT_TRUE(intake.has_value()) << intake.error().message;
  ASSERT_EQ(intake->recorded, count);
  ASSERT_NO_FATAL_FAILURE(RunJobs());

  const std::vector<store::Job> jobs = CorrelationJobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state, store::JobState::kSucceeded) << jobs[0].last_error;
  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_FALSE(incidents[0].suspected_change_id.has_value());
  EXPECT_EQ(CountEvents(incidents[0], "opened"), 1);
  EXPECT_EQ(CountEvents(incidents[0], "signal_joined"), count - 1);
  EXPECT_EQ(CountEvents(incidents[0], "signal_correlated"), count);
  // Inserted by the first batch's transaction and saved once by the second.
  EXPECT_EQ(StoredVersion(kIncidentKind, incidents[0].id), 2);

  auto page = plane_->ListSignals(admin_, std::nullopt, {.limit = count});
  ASSERT_TRUE(page.has_value()) << page.error().message;
  ASSERT_EQ(page->items.size(), static_cast<size_t>(count));
  for (const SignalRecord& signal : page->items) {
    EXPECT_TRUE(signal.correlated) << signal.id;
    EXPECT_EQ(signal.incident_id, incidents[0].id) << signal.id;
  }
}

TEST_P(SignalBackendTest, SlowCorrelationKeepsLease) {
  // The status command blocks on a FIFO until the test writes to it, so the correlation job
  // stops in its automatic policy, which reads the live version to plan the rollback.
  const auto& dir = temp_.path();
  const std::string gate = (dir / "gate").string();
  std::ofstream(dir / "status.sh") << fmt::format(
      "#!/bin/sh\n[ -e {0}/released ] || cat {0}/gate > /dev/null\ncat {0}/live\n", dir.string());
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0) << std::strerror(errno);
  RecordChanges();
  clock_.Advance(1min);
  auto intake = plane_->IngestAlertmanager(Payload("00000000000000f1", clock_.Now()));
  ASSERT_TRUE(intake.has_value()) << intake.error().message;
  const int64_t job_id = std::stoll(intake->job_id);

  constexpr auto kLease = std::chrono::milliseconds(300);
  JobRunner runner(*plane_, JobRunnerOptions{.owner = "slow-worker", .lease = kLease});
  core::Result<bool> ran = false;
  std::atomic<bool> finished = false;
  std::thread worker([&] {
    ran = runner.RunOnce({});
    finished = true;
  });

  // Opening the FIFO for writing succeeds once the status command has it open for reading.
  int writer = -1;
  const bool blocked = Eventually([&] {
    writer = ::open(gate.c_str(), O_WRONLY | O_NONBLOCK);
    return writer >= 0;
  });
  EXPECT_TRUE(blocked) << "the status command never read " << gate;
  if (blocked) {
    // The store's clock moves past the lease; only a renewal moves the lease's end with it.
    const core::Time leased_until = JobById(job_id).lease_expires;
    clock_.Advance(1h);
    const bool renewed =
        Eventually([&] { return JobById(job_id).lease_expires == clock_.Now() + kLease; });
    EXPECT_TRUE(renewed) << "the lease still ends at " << core::FormatTime(leased_until);
  }

  // Lets every status command through, including one that opened the FIFO just now.
  std::ofstream(dir / "released") << "";
  if (writer >= 0) ::close(writer);
  while (!finished) {
    const int late = ::open(gate.c_str(), O_WRONLY | O_NONBLOCK);
    if (late >= 0) ::close(late);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  worker.join();

  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  EXPECT_TRUE(*ran);
  EXPECT_EQ(JobById(job_id).state, store::JobState::kSucceeded) << JobById(job_id).last_error;
  const auto incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0].rollbacks.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SignalBackendTest, ::testing::Values("Sqlite", "Postgres"),
                         [](const auto& info) { return info.param; });

// Pieces that each take a different branch of nlohmann's string escaping, as labels,
// annotations and URLs may contain them.
std::string RandomText(std::mt19937_64& random, bool allow_invalid) {
  static const std::vector<std::string> pieces = {
      "a",          "Z",
      "9",          " ",
      "-",          "_",
      "/",          ":",
      "=",          "&",
      "?",          "alertname",
      "checkout",   "https://prometheus.example/graph?g0.expr=rate(x%5B5m%5D)&g0.tab=1",
      "\"",         "\\",
      "\b",         "\f",
      "\n",         "\r",
      "\t",         std::string(1, '\0'),
      "\x01",       "\x1b",
      "\x1f",       "\x7f",
      "\u00e9",     "\u00ff",
      "\u0100",     "\u07ff",
      "\u0800",     "\u2028",
      "\ufeff",     "\uffff",
      "\U0001f600", "\U0010ffff"};
  // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong form, a surrogate.
  static const std::vector<std::string> invalid = {"\x80", "\xff", "\xe2\x82", "\xc0\x80",
                                                   "\xed\xa0\x80"};
  std::string text;
  for (int i = std::uniform_int_distribution<int>(0, 6)(random); i > 0; --i) {
    if (allow_invalid && random() % 200 == 0) {
      text += invalid[random() % invalid.size()];
    } else {
      text += pieces[random() % pieces.size()];
    }
  }
  return text;
}

std::map<std::string, std::string> RandomMap(std::mt19937_64& random, bool allow_invalid) {
  std::map<std::string, std::string> map;
  for (int i = std::uniform_int_distribution<int>(0, 6)(random); i > 0; --i) {
    map[RandomText(random, allow_invalid)] = RandomText(random, allow_invalid);
  }
  return map;
}

core::Time RandomTime(std::mt19937_64& random) {
  // Between 1970 and about 2106, in whole microseconds.
  const int64_t micros = static_cast<int64_t>(random() % (int64_t{1} << 52));
  return core::Time(core::Duration(micros));
}

SignalRecord RandomSignal(std::mt19937_64& random, bool allow_invalid) {
  static const std::vector<double> scores = {0.0,
                                             -0.0,
                                             0.5,
                                             1.0,
                                             0.1,
                                             1e300,
                                             -1e-300,
                                             std::numeric_limits<double>::infinity(),
                                             std::numeric_limits<double>::quiet_NaN()};
  auto text = [&] { return RandomText(random, allow_invalid); };
  SignalRecord signal{.id = text(),
                      .source = text(),
                      .name = text(),
                      .service = text(),
                      .severity = text(),
                      .status = text(),
                      .starts_at = RandomTime(random),
                      .ends_at = std::nullopt,
                      .received_at = RandomTime(random),
                      .labels = RandomMap(random, allow_invalid),
                      .annotations = RandomMap(random, allow_invalid),
                      .detail = text(),
                      .group_key = text(),
                      .receiver = text(),
                      .truncated_alerts = static_cast<int64_t>(random()),
                      .deliveries = static_cast<int64_t>(random() % 5),
                      .correlated = random() % 2 == 0,
                      .incident_id = text(),
                      .suspected_change_id = text(),
                      .score = 0,
                      .correlation_reason = text()};
  if (random() % 2 == 0) signal.ends_at = RandomTime(random);
  switch (random() % 3) {
    case 0:
      signal.score = scores[random() % scores.size()];
      break;
    case 1:
      signal.score = std::bit_cast<double>(random());
      break;
    default:
      break;  // 0, as every alert's record has it
  }
  return signal;
}

// SerializeSignal's text or error, against SerializeBody on the nlohmann object of the record.
void ExpectSerializedAsBefore(const SignalRecord& signal) {
  const std::string what = fmt::format("body of {}/{}", kSignalKind, signal.id);
  auto expected = store::SerializeBody(json(signal), what);
  auto serialized = SerializeSignal(signal);
  ASSERT_EQ(serialized.has_value(), expected.has_value())
      << (serialized ? expected.error().message : serialized.error().message);
  if (expected) {
    EXPECT_EQ(serialized->text(), expected->text());
    EXPECT_EQ(serialized->text(), json(signal).dump());
    return;
  }
  EXPECT_EQ(serialized.error().code, expected.error().code);
  EXPECT_EQ(serialized.error().message, expected.error().message);
}

TEST(SerializeSignalTest, MatchesDumpOfRecord) {
  SignalRecord signal{.id = "am:00000000000000a1@2026-12-04T12:00:00Z",
                      .source = "alertmanager",
                      .name = "HighErrorRate",
                      .service = "checkout",
                      .severity = "critical",
                      .status = "firing",
                      .starts_at = Start(),
                      .received_at = Start() + 1500ms,
                      .labels = {{"alertname", "HighErrorRate"}, {"service", "checkout"}},
                      .annotations = {{"summary", "5xx \"rate\" > 5%\n"}},
                      .detail = "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
                      .group_key = "{}:{alertname=\"HighErrorRate\"}",
                      .receiver = "backout"};
  ExpectSerializedAsBefore(signal);
  signal.ends_at = Start() + 1h;
  signal.score = 0.75;
  signal.correlated = true;
  signal.incident_id = "INC-7";
  ExpectSerializedAsBefore(signal);
  ExpectSerializedAsBefore(SignalRecord{});
}

TEST(SerializeSignalTest, MatchesDumpOnRandomRecords) {
  std::mt19937_64 random(20261205);
  for (int round = 0; round < 5000; ++round) {
    const SignalRecord signal = RandomSignal(random, /*allow_invalid=*/false);
    SCOPED_TRACE(json(signal).dump());
    ASSERT_NO_FATAL_FAILURE(ExpectSerializedAsBefore(signal));
  }
}

TEST(SerializeSignalTest, ReportsInvalidUtf8AsBefore) {
  std::mt19937_64 random(12);
  int failures = 0;
  for (int round = 0; round < 2000; ++round) {
    const SignalRecord signal = RandomSignal(random, /*allow_invalid=*/true);
    ASSERT_NO_FATAL_FAILURE(ExpectSerializedAsBefore(signal));
    if (!SerializeSignal(signal)) ++failures;
  }
  // Invalid bytes are rare per piece, so a test that never met one would prove nothing.
  EXPECT_GT(failures, 100);

  SignalRecord signal{.id = "am:1", .labels = {{"team", "bad \xff byte"}}};
  auto serialized = SerializeSignal(signal);
  ASSERT_FALSE(serialized.has_value());
  EXPECT_EQ(serialized.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(serialized.error().message.find("body of signal/am:1"), std::string::npos);
}

}  // namespace
}  // namespace backout::app
