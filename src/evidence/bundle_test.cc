#include "evidence/bundle.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/domain.h"
#include "evidence/archive.h"
#include "evidence/png.h"
#include "support/temp_dir.h"

namespace backout::evidence {
namespace {

using nlohmann::json;
using std::chrono::hours;
using std::chrono::minutes;

core::Time At(std::string_view text) { return core::ParseTime(text).value(); }

// A store holding one incident that went through the whole procedure, planted object by object
// with the ledger entries the use cases would append.
class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    signer_ = *signer;
    auto store = store::OpenStore(fmt::format("sqlite:{}/evidence.db", temp_.path().string()),
                                  store::StoreOptions{.clock = &clock_, .signer = signer_});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
  }

  core::Incident MakeIncident(bool validated) {
    core::Incident incident;
    incident.id = "INC-1";
    incident.service = "checkout";
    incident.environment = "production";
    incident.title = "errors after v2";
    incident.external_ticket = "OPS-42";
    incident.opened_by = "lead-1";
    incident.opened_at = At("2026-12-04T10:00:00Z");
    incident.state =
        validated ? core::IncidentState::kDocumenting : core::IncidentState::kValidating;
    core::Assessment assessment;
    assessment.service = "checkout";
    assessment.target_version = "v1";
    assessment.target_rule = "last validated-good change before the suspected one";
    assessment.plan = {{"action", "run"}, {"target", "v1"}};
    assessment.assessed_by = "lead-1";
    assessment.assessed_at = At("2026-12-04T10:05:00Z");
    assessment.digest = std::string(64, 'a');
    incident.assessment = assessment;
    incident.decisions.push_back(core::Decision{.kind = core::DecisionKind::kGo,
                                                .decider = "lead-1",
                                                .time = At("2026-12-04T10:06:00Z"),
                                                .reason = "v2 is broken",
                                                .approved_digest = assessment.digest});
    core::Rollback rollback;
    rollback.job_id = std::to_string(job_id_);
    rollback.plan_digest = assessment.digest;
    rollback.provider = "command";
    rollback.target_version = "v1";
    rollback.approver = "lead-1";
    rollback.executor = "sre-1";
    rollback.requested_at = At("2026-12-04T10:07:00Z");
    rollback.started_at = At("2026-12-04T10:07:01Z");
    rollback.finished_at = At("2026-12-04T10:07:30Z");
    rollback.outcome = core::RollbackOutcome::kRolledBack;
    rollback.read_back = {{"time", "2026-12-04T10:07:30.000000Z"}, {"version", "v1"}};
    incident.rollbacks.push_back(rollback);
    if (validated) {
      core::Validation validation;
      validation.job_id = "9";
      validation.rollback_job_id = rollback.job_id;
      validation.requested_by = "lead-1";
      validation.started_at = At("2026-12-04T10:10:00Z");
      validation.finished_at = At("2026-12-04T10:11:00Z");
      validation.observations.push_back({.check = "smoke",
                                         .kind = "command",
                                         .result = core::ObservationResult::kPassed,
                                         .detail = "exit 0",
                                         .observed_at = At("2026-12-04T10:10:30Z")});
      validation.observations.push_back({.check = "error-rate",
                                         .kind = "prometheus",
                                         .result = core::ObservationResult::kPassed,
                                         .detail = "0.1% < 1%",
                                         .observed_at = At("2026-12-04T10:10:40Z")});
      validation.finding = core::ValidationFinding::kRecovered;
      incident.validations.push_back(validation);
    }
    incident.root_cause = "bad pool size";
    incident.review_markdown = "# Review\n\nThe pool was too small.\n";
    incident.action_items.push_back(core::ActionItem{.id = "AI-1",
                                                     .incident_id = "INC-1",
                                                     .title = "add a canary",
                                                     .owner = "sre-1",
                                                     .created_by = "lead-1"});
    incident.timeline.push_back({.time = incident.opened_at,
                                 .actor = "lead-1",
                                 .kind = "opened",
                                 .detail = "opened <by> lead-1"});
    return incident;
  }

  // Stores the incident of MakeIncident(validated), changed by `edit` when given, with its
  // rollback job and ledger entries.
  void Plant(bool validated, const std::function<void(core::Incident&)>& edit = {}) {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto job =
          tx.EnqueueJob("rollback", "incident/INC-1",
                        {{"result",
                          {{"from_version", "v2"},
                           {"live_version", "v1"},
                           {"details", {{"exit_status", 0}}},
                           {"transcript", json::array({{{"time", "2026-12-04T10:07:02.000000Z"},
                                                        {"kind", "process"},
                                                        {"summary", "ran rollback.sh"},
                                                        {"data", {{"exit_status", 0}}}}})}}}},
                        clock_.Now());
      if (!job) return std::unexpected(job.error());
      job_id_ = *job;
      core::Incident incident = MakeIncident(validated);
      if (edit) edit(incident);
      json body = json(incident);
      if (validated) {
        // Fields a Prometheus check records besides the core observation.
        json& observation = body["validations"][0]["observations"][1];
        observation["query"] = "rate(http_errors_total[1m])";
        observation["prometheus_url"] = "http://127.0.0.1:9090";
        observation["threshold"] = 0.01;
        observation["raw_response"] =
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},)"
            R"("values":[[1796378400,"0.2"],[1796378700,"0.001"]]}]}})";
      }
      store::Object object{.kind = "incident", .id = "INC-1", .service = "checkout", .body = body};
      if (auto put = tx.Put(object); !put) return put;
      for (auto [actor, action, subject] :
           std::vector<std::tuple<std::string, std::string, std::string>>{
               {"system", "policy.loaded", "policy"},
               {"lead-1", "incident.opened", "incident/INC-1"},
               {"lead-1", "incident.opened", "incident/INC-2"},
               {"lead-1", "incident.decided", "incident/INC-1"},
               {"sre-1", "incident.rollback_requested", "incident/INC-1"},
               {"system", "incident.rollback_finished", "incident/INC-1"},
               {"lead-1", "action_item.added", "action_item/AI-1"}}) {
        json change = {{"step", action}};
        if (action == "policy.loaded") change = {{"config_sha256", std::string(64, 'c')}};
        auto appended = tx.AppendLedger(
            {.actor = actor, .action = action, .subject = subject, .change = change});
        if (!appended) return std::unexpected(appended.error());
      }
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  void AppendUnrelated() {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto appended = tx.AppendLedger(
          {.actor = "lead-2", .action = "incident.opened", .subject = "incident/INC-3"});
      if (!appended) return std::unexpected(appended.error());
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  std::string Export() {
    auto bundle = ExportIncidentBundle(*store_, "INC-1", *signer_);
    EXPECT_TRUE(bundle.has_value()) << bundle.error().message;
    return bundle.value_or("");
  }

  // The authorization item of the verified bundle of the planted incident after `edit`.
  EvidenceItem AuthorizationAfter(const std::function<void(core::Incident&)>& edit) {
    Plant(true, edit);
    auto report = VerifyBundle(Export(), {});
    EXPECT_TRUE(report.has_value()) << report.error().message;
    if (!report || report->items.empty()) return {};
    return report->items[0];
  }

  static core::Decision Decided(core::DecisionKind kind, const char* time) {
    return core::Decision{.kind = kind,
                          .decider = "lead-1",
                          .time = At(time),
                          .reason = "decided in the test",
                          .approved_digest = std::string(64, 'a')};
  }

  testing::TempDir temp_;
  core::ManualClock clock_{At("2026-12-04T10:00:00Z")};
  std::shared_ptr<ledger::Signer> signer_;
  std::unique_ptr<store::Store> store_;
  int64_t job_id_ = 0;
};

TEST_F(BundleTest, RoundTripVerifies) {
  Plant(true);
  auto report = VerifyBundle(Export(), {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->incident_id, "INC-1");
  EXPECT_EQ(report->signing_key_id, signer_->public_key().key_id());
  // Key entry, policy, 4 incident entries and the action item; not INC-2's entry.
  EXPECT_EQ(report->ledger_entries, 7u);
  ASSERT_EQ(report->items.size(), 4u);
  for (const EvidenceItem& item : report->items) {
    EXPECT_TRUE(item.present) << item.number << " " << item.name << ": " << item.detail;
  }
}

// The go at 10:06 authorizes the rollback requested at 10:07; a no-go before that go was
// overridden by it.
TEST_F(BundleTest, GoAfterNoGoAuthorizesRollback) {
  const EvidenceItem item = AuthorizationAfter([](core::Incident& incident) {
    incident.decisions.insert(incident.decisions.begin(),
                              Decided(core::DecisionKind::kNoGo, "2026-12-04T10:05:30Z"));
  });
  EXPECT_TRUE(item.present) << item.detail;
  EXPECT_NE(item.detail.find("go by lead-1 at 2026-12-04T10:06:00"), std::string::npos)
      << item.detail;
}

TEST_F(BundleTest, LaterNoGoIsShownNotJudged) {
  const EvidenceItem item = AuthorizationAfter([](core::Incident& incident) {
    incident.decisions.push_back(Decided(core::DecisionKind::kNoGo, "2026-12-04T10:20:00Z"));
  });
  EXPECT_TRUE(item.present) << item.detail;
  EXPECT_NE(item.detail.find("later decisions: no_go by lead-1 at 2026-12-04T10:20:00"),
            std::string::npos)
      << item.detail;
}

TEST_F(BundleTest, NoGoInForceLeavesRollbackUnauthorized) {
  const EvidenceItem item = AuthorizationAfter([](core::Incident& incident) {
    incident.decisions.push_back(Decided(core::DecisionKind::kNoGo, "2026-12-04T10:06:30Z"));
  });
  EXPECT_FALSE(item.present) << item.detail;
  EXPECT_NE(item.detail.find("the decision in force at its request was no_go by lead-1"),
            std::string::npos)
      << item.detail;
}

// The go's approved digest is compared with the digest the rollback ran, not with a later
// assessment's.
TEST_F(BundleTest, GoOfOtherDigestLeavesRollbackUnauthorized) {
  const EvidenceItem item = AuthorizationAfter([](core::Incident& incident) {
    incident.decisions[0].approved_digest = std::string(64, 'b');
  });
  EXPECT_FALSE(item.present) << item.detail;
  EXPECT_NE(item.detail.find("approved digest " + std::string(64, 'b') +
                             ", but the rollback ran digest " + std::string(64, 'a')),
            std::string::npos)
      << item.detail;
}

TEST_F(BundleTest, ReassessmentAfterRollbackKeepsItAuthorized) {
  const EvidenceItem item = AuthorizationAfter([](core::Incident& incident) {
    incident.assessment->digest = std::string(64, 'd');
    incident.assessment->assessed_at = At("2026-12-04T10:30:00Z");
  });
  EXPECT_TRUE(item.present) << item.detail;
}

TEST_F(BundleTest, BundleHoldsEveryPart) {
  Plant(true);
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value()) << files.error().message;
  std::vector<std::string> paths;
  for (const ArchiveFile& file : *files) paths.push_back(file.path);
  ASSERT_GE(paths.size(), 2u);
  EXPECT_EQ(paths[0], "manifest.json");
  EXPECT_EQ(paths[1], "manifest.sig");
  for (const char* expected :
       {"incident.json", "decision.json", "rollback/transcript.jsonl", "rollback/tool-record.json",
        "validation/observations.json", "validation/finding.json", "review.md", "action-items.json",
        "ledger/checkpoint.json", "ledger/entries.jsonl", "ledger/proofs.json",
        "ledger/signing-key.pem", "report.html"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), expected), paths.end()) << expected;
  }
  bool prometheus = false;
  bool chart = false;
  for (const std::string& path : paths) {
    prometheus |= path.starts_with("validation/prometheus/") && path.ends_with(".json");
    chart |= path.starts_with("validation/prometheus/") && path.ends_with(".svg");
  }
  EXPECT_TRUE(prometheus);
  EXPECT_TRUE(chart);
}

TEST_F(BundleTest, EveryChartHasItsPng) {
  Plant(true);
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value()) << files.error().message;
  std::map<std::string, std::string> by_path;
  for (const ArchiveFile& file : *files) by_path[file.path] = file.content;
  const json manifest = json::parse(by_path["manifest.json"]);
  std::set<std::string> listed;
  for (const json& file : manifest["files"]) listed.insert(file["path"].get<std::string>());

  int charts = 0;
  for (const auto& [path, content] : by_path) {
    if (!path.ends_with(".svg")) continue;
    ++charts;
    const std::string png_path = path.substr(0, path.size() - 4) + ".png";
    ASSERT_TRUE(by_path.contains(png_path)) << png_path;
    EXPECT_TRUE(by_path[png_path].starts_with("\x89PNG")) << png_path;
    EXPECT_TRUE(listed.contains(png_path)) << png_path << " is not in manifest.json";
    auto rendered = RenderPng(content);
    ASSERT_TRUE(rendered.has_value()) << rendered.error().message;
    EXPECT_EQ(*rendered, by_path[png_path]) << png_path << " is not the rendering of " << path;
  }
  EXPECT_GT(charts, 0);
}

TEST_F(BundleTest, ReExportIsByteIdentical) {
  Plant(true);
  const std::string first = Export();
  clock_.Advance(hours(5));
  AppendUnrelated();
  const std::string second = Export();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, second);
}

TEST_F(BundleTest, TamperingAnyFileFailsNamingIt) {
  Plant(true);
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  for (size_t i = 0; i < files->size(); ++i) {
    std::vector<ArchiveFile> tampered = *files;
    std::string& content = tampered[i].content;
    ASSERT_FALSE(content.empty()) << tampered[i].path;
    content[content.size() / 2] ^= 0x01;
    auto bytes = WriteTarGz(tampered, 0);
    ASSERT_TRUE(bytes.has_value());
    auto report = VerifyBundle(*bytes, {});
    ASSERT_FALSE(report.has_value()) << tampered[i].path << " changed, yet the bundle verifies";
    EXPECT_EQ(report.error().code, core::ErrorCode::kCorruption);
    EXPECT_NE(report.error().message.find(tampered[i].path), std::string::npos)
        << tampered[i].path << ": " << report.error().message;
  }
}

TEST_F(BundleTest, AddedFileFails) {
  Plant(true);
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  files->push_back({"extra.txt", "planted"});
  auto report = VerifyBundle(WriteTarGz(*files, 0).value(), {});
  ASSERT_FALSE(report.has_value());
  EXPECT_NE(report.error().message.find("extra.txt"), std::string::npos) << report.error().message;
}

TEST_F(BundleTest, MissingValidationVerifiesWithItemThreeMissing) {
  Plant(false);
  const std::string bundle = Export();
  auto report = VerifyBundle(bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->items.size(), 4u);
  EXPECT_FALSE(report->items[2].present);
  EXPECT_TRUE(report->items[0].present) << report->items[0].detail;
  EXPECT_TRUE(report->items[3].present) << report->items[3].detail;
  auto files = ReadTarGz(bundle);
  ASSERT_TRUE(files.has_value());
  for (const ArchiveFile& file : *files) EXPECT_FALSE(file.path.starts_with("validation/"));
}

TEST_F(BundleTest, OtherTrustedKeyFails) {
  Plant(true);
  auto other = ledger::Signer::Generate();
  ASSERT_TRUE(other.has_value());
  auto report = VerifyBundle(Export(), {.trusted_key = (*other)->public_key()});
  ASSERT_FALSE(report.has_value());
  EXPECT_NE(report.error().message.find("--public-key"), std::string::npos)
      << report.error().message;
}

TEST_F(BundleTest, TrustedKeyMatches) {
  Plant(true);
  auto report = VerifyBundle(Export(), {.trusted_key = signer_->public_key()});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_TRUE(report->trusted_key_matched);
}

TEST_F(BundleTest, ReportMarksItemsAndEscapes) {
  Plant(false);
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  std::string html;
  for (const ArchiveFile& file : *files) {
    if (file.path == "report.html") html = file.content;
  }
  EXPECT_NE(html.find("recovery validation"), std::string::npos);
  EXPECT_NE(html.find("class=\"missing\">missing"), std::string::npos);
  EXPECT_NE(html.find("opened &lt;by&gt; lead-1"), std::string::npos);
  EXPECT_EQ(html.find("<by>"), std::string::npos);
}

TEST_F(BundleTest, UnknownIncidentIsNotFound) {
  Plant(true);
  auto bundle = ExportIncidentBundle(*store_, "INC-404", *signer_);
  ASSERT_FALSE(bundle.has_value());
  EXPECT_EQ(bundle.error().code, core::ErrorCode::kNotFound);
}

}  // namespace
}  // namespace backout::evidence
