#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/domain.h"
#include "core/policy.h"
#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "evidence/population.h"
#include "ledger/canonical.h"
#include "ledger/hash.h"
#include "support/temp_dir.h"

namespace backout::evidence {
namespace {

using nlohmann::json;
using std::chrono::hours;

core::Time At(std::string_view text) { return core::ParseTime(text).value(); }

// A ledger and store written day by day: a policy load on 12-01, INC-1 on 12-02, a policy reload
// and INC-2 on 12-03, a rollback found by reconciliation on 12-03, and INC-3 on 12-10. The period
// under test runs from 12-01T12:00 to 12-05T00:00.
class PeriodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    signer_ = *signer;
    auto store = store::OpenStore(fmt::format("sqlite:{}/evidence.db", temp_.path().string()),
                                  store::StoreOptions{.clock = &clock_, .signer = signer_});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);

    ASSERT_NO_FATAL_FAILURE(LoadPolicy("lead-1"));
    clock_.Advance(hours(24));  // 12-02
    ASSERT_NO_FATAL_FAILURE(PlantIncident("INC-1"));
    clock_.Advance(hours(24));  // 12-03
    ASSERT_NO_FATAL_FAILURE(LoadPolicy("lead-2"));
    ASSERT_NO_FATAL_FAILURE(PlantIncident("INC-2"));
    ASSERT_NO_FATAL_FAILURE(PlantDiscoveredRollback());
    clock_.Advance(hours(24 * 7));  // 12-10
    ASSERT_NO_FATAL_FAILURE(PlantIncident("INC-3"));
  }

  void Append(store::Transaction& tx, const std::string& actor, const std::string& action,
              const std::string& subject, json change) {
    auto appended = tx.AppendLedger(
        {.actor = actor, .action = action, .subject = subject, .change = std::move(change)});
    ASSERT_TRUE(appended.has_value()) << appended.error().message;
  }

  void LoadPolicy(const std::string& lead) {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      core::Policy policy;
      policy.roster = {
          core::User{.name = lead, .roles = {core::Role::kEngineeringLead}},
          core::User{
              .name = "sre-1", .roles = {core::Role::kDevopsEngineer}, .services = {"checkout"}}};
      Append(tx, "system", "policy.loaded", "policy",
             {{"config_file", "backout.yaml"},
              {"config_sha256", std::string(64, 'c')},
              {"loaded_by", "system"},
              {"policy", json(policy)},
              {"provider_bindings", json::array({{{"service", "checkout"},
                                                  {"environment", "production"},
                                                  {"provider", "command"}}})}});
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  void PlantIncident(const std::string& id) {
    const core::Time now = clock_.Now();
    core::Incident incident;
    incident.id = id;
    incident.service = "checkout";
    incident.environment = "production";
    incident.title = "errors after v2";
    incident.opened_by = "lead-1";
    incident.opened_at = now;
    incident.state = core::IncidentState::kValidating;
    incident.decisions.push_back(core::Decision{
        .kind = core::DecisionKind::kGo, .decider = "lead-1", .time = now, .reason = "broken"});

    core::Rollback rollback;
    rollback.job_id = "1";
    rollback.provider = "command";
    rollback.target_version = "v1";
    rollback.approver = "lead-1";
    rollback.executor = "sre-1";
    rollback.requested_at = now;
    rollback.finished_at = now;
    rollback.outcome = core::RollbackOutcome::kRolledBack;
    incident.rollbacks.push_back(rollback);

    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      store::Object object{
          .kind = "incident", .id = id, .service = "checkout", .body = json(incident)};
      if (auto put = tx.Put(object); !put) return put;
      const std::string subject = "incident/" + id;
      Append(tx, "lead-1", "incident.opened", subject, {{"title", incident.title}});
      Append(tx, "lead-1", "incident.decided", subject, {{"kind", "go"}});
      Append(tx, "sre-1", "incident.rollback_requested", subject, {{"target", "v1"}});
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  void PlantDiscoveredRollback() {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      store::Object object{.kind = "discovered_rollback",
                           .id = "DRB-1",
                           .service = "checkout",
                           .body = {{"id", "DRB-1"},
                                    {"service", "checkout"},
                                    {"environment", "production"},
                                    {"provider", "command"},
                                    {"version", "v1"},
                                    {"from_version", "v2"},
                                    {"time", core::FormatTime(clock_.Now())},
                                    {"actor", "alice"},
                                    {"evidence", "version order"},
                                    {"details", json::object()},
                                    {"discovered_at", core::FormatTime(clock_.Now())},
                                    {"state", "open"},
                                    {"incident", ""},
                                    {"reason", ""},
                                    {"resolved_by", ""},
                                    {"resolved_at", nullptr}}};
      if (auto put = tx.Put(object); !put) return put;
      Append(tx, "system", "discovered_rollback.found", "discovered_rollback/DRB-1",
             {{"version", "v1"}});
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  std::string Export(core::Time from = At("2026-12-01T12:00:00Z"),
                     core::Time to = At("2026-12-05T00:00:00Z")) {
    auto bundle = ExportPeriodBundle(*store_, from, to, *signer_);
    EXPECT_TRUE(bundle.has_value()) << bundle.error().message;
    return bundle.value_or("");
  }

  static std::map<std::string, std::string> Files(const std::string& bundle) {
    std::map<std::string, std::string> by_path;
    auto files = ReadTarGz(bundle);
    EXPECT_TRUE(files.has_value()) << files.error().message;
    if (!files) return by_path;
    for (const ArchiveFile& file : *files) by_path[file.path] = file.content;
    return by_path;
  }

  // Packs `files` again after listing their new digests in the manifest and signing it, as an
  // exporter holding the key would: only the checks past the digests can catch what changed.
  std::string Resign(std::vector<ArchiveFile> files) {
    json manifest = json::parse(files[0].content);
    for (json& listed : manifest["files"]) {
      for (const ArchiveFile& file : files) {
        if (file.path != listed["path"]) continue;
        listed["sha256"] = ledger::ToHex(ledger::Sha256(file.content));
        listed["size"] = file.content.size();
      }
    }
    files[0].content = ledger::CanonicalJson(manifest).value();
    files[1].content = signer_->SignBase64(files[0].content) + "\n";
    return WriteTarGz(files, 0).value();
  }

  testing::TempDir temp_;
  core::ManualClock clock_{At("2026-12-01T10:00:00Z")};
  std::shared_ptr<ledger::Signer> signer_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(PeriodTest, RoundTripVerifies) {
  auto report = VerifyPeriodBundle(Export(), {.trusted_key = signer_->public_key()});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->incidents.size(), 2u);
  EXPECT_EQ(report->incidents[0].incident_id, "INC-1");
  EXPECT_EQ(report->incidents[1].incident_id, "INC-2");
  EXPECT_TRUE(report->period_closed);
  ASSERT_TRUE(report->start_checkpoint.has_value());
  EXPECT_LE(report->start_checkpoint->time, At("2026-12-01T12:00:00Z"));
  EXPECT_GE(report->end_checkpoint.time, At("2026-12-05T00:00:00Z"));
  EXPECT_LT(report->start_checkpoint->tree_size, report->end_checkpoint.tree_size);
  // The load in force at the start and the reload inside the period.
  EXPECT_EQ(report->policy_loads, 2u);
  EXPECT_TRUE(report->trusted_key_matched);
}

TEST_F(PeriodTest, HoldsIncidentsPopulationPoliciesAndProof) {
  const auto files = Files(Export());
  for (const char* path :
       {"manifest.json", "manifest.sig", "population.csv", "population.json",
        "config/policy-history.json", "ledger/entries.jsonl", "ledger/proofs.json",
        "ledger/checkpoint.json", "ledger/start-checkpoint.json", "ledger/consistency.json",
        "ledger/incident-consistency.json", "ledger/signing-key.pem",
        "incidents/INC-1/manifest.json", "incidents/INC-1/manifest.sig",
        "incidents/INC-1/incident.json", "incidents/INC-2/ledger/proofs.json"}) {
    EXPECT_TRUE(files.contains(path)) << path;
  }
  for (const auto& [path, content] : files) {
    EXPECT_FALSE(path.starts_with("incidents/INC-3/")) << path << " is outside the period";
  }
  const json history = json::parse(files.at("config/policy-history.json"));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0]["roster"][0]["name"], "lead-1");
  EXPECT_EQ(history[1]["roster"][0]["name"], "lead-2");
  EXPECT_EQ(history[1]["provider_bindings"][0]["provider"], "command");
}

TEST_F(PeriodTest, PopulationHasRecordedAndDiscoveredRollbacks) {
  const auto files = Files(Export());
  const json rows = json::parse(files.at("population.json"));
  std::vector<std::string> ids;
  for (const json& row : rows)
    ids.push_back(row["type"].get<std::string>() + " " + row["id"].get<std::string>());
  EXPECT_NE(std::ranges::find(ids, "rollback INC-1/rollback/1"), ids.end()) << rows.dump(2);
  EXPECT_NE(std::ranges::find(ids, "rollback INC-2/rollback/1"), ids.end()) << rows.dump(2);
  EXPECT_NE(std::ranges::find(ids, "discovered_rollback DRB-1"), ids.end()) << rows.dump(2);
  EXPECT_EQ(std::ranges::find(ids, "rollback INC-3/rollback/1"), ids.end()) << rows.dump(2);
  EXPECT_NE(files.at("population.csv")
                .find("discovered_rollback,DRB-1,,checkout,production,"
                      "discovered,v2,v1,"),
            std::string::npos)
      << files.at("population.csv");
}

TEST_F(PeriodTest, ReExportIsByteIdentical) {
  const std::string first = Export();
  clock_.Advance(hours(5));
  ASSERT_NO_FATAL_FAILURE(PlantIncident("INC-4"));
  const std::string second = Export();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, second);
}

TEST_F(PeriodTest, TamperingAnyFileFailsNamingIt) {
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  for (size_t i = 0; i < files->size(); ++i) {
    std::vector<ArchiveFile> tampered = *files;
    std::string& content = tampered[i].content;
    if (content.empty()) {
      content = "x";  // an incident without provider transcript has an empty transcript file
    } else {
      content[content.size() / 2] ^= 0x01;
    }
    auto report = VerifyPeriodBundle(WriteTarGz(tampered, 0).value(), {});
    ASSERT_FALSE(report.has_value()) << tampered[i].path << " changed, yet the bundle verifies";
    EXPECT_EQ(report.error().code, core::ErrorCode::kCorruption);
    EXPECT_NE(report.error().message.find(tampered[i].path), std::string::npos)
        << tampered[i].path << ": " << report.error().message;
  }
}

TEST_F(PeriodTest, ResignedBadConsistencyProofFails) {
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  auto it = std::ranges::find(*files, std::string("ledger/consistency.json"), &ArchiveFile::path);
  ASSERT_NE(it, files->end());
  json proof = json::parse(it->content);
  ASSERT_FALSE(proof["proof"].empty());
  std::string first = proof["proof"][0].get<std::string>();
  first[0] = first[0] == '0' ? '1' : '0';
  proof["proof"][0] = first;
  it->content = proof.dump(2) + "\n";
  auto report = VerifyPeriodBundle(Resign(*files), {});
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, core::ErrorCode::kCorruption);
  EXPECT_NE(report.error().message.find("ledger/consistency.json"), std::string::npos)
      << report.error().message;
  EXPECT_NE(report.error().message.find("prefix"), std::string::npos) << report.error().message;
}

TEST_F(PeriodTest, ResignedBadIncidentProofFails) {
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  auto it = std::ranges::find(*files, std::string("ledger/incident-consistency.json"),
                              &ArchiveFile::path);
  ASSERT_NE(it, files->end());
  json proofs = json::parse(it->content);
  ASSERT_EQ(proofs["proofs"].size(), 2u);
  json& proof = proofs["proofs"][0]["proof"];
  ASSERT_FALSE(proof.empty());
  std::string last = proof.back().get<std::string>();
  last[0] = last[0] == '0' ? '1' : '0';
  proof.back() = last;
  it->content = proofs.dump(2) + "\n";
  auto report = VerifyPeriodBundle(Resign(*files), {});
  ASSERT_FALSE(report.has_value());
  EXPECT_NE(report.error().message.find("ledger/incident-consistency.json"), std::string::npos)
      << report.error().message;
  EXPECT_NE(report.error().message.find("INC-1"), std::string::npos) << report.error().message;
}

TEST_F(PeriodTest, ResignedRemovedPopulationRowFails) {
  auto files = ReadTarGz(Export());
  ASSERT_TRUE(files.has_value());
  auto it = std::ranges::find(*files, std::string("population.json"), &ArchiveFile::path);
  ASSERT_NE(it, files->end());
  json rows = json::parse(it->content);
  rows.erase(rows.size() - 1);
  it->content = rows.dump(2) + "\n";
  auto report = VerifyPeriodBundle(Resign(*files), {});
  ASSERT_FALSE(report.has_value());
  EXPECT_NE(report.error().message.find("population.csv"), std::string::npos)
      << report.error().message;
}

TEST_F(PeriodTest, PeriodAfterLatestCheckpointIsOpen) {
  const std::string bundle = Export(At("2026-12-09T00:00:00Z"), At("2027-01-01T00:00:00Z"));
  auto report = VerifyPeriodBundle(bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_FALSE(report->period_closed);
  ASSERT_EQ(report->incidents.size(), 1u);
  EXPECT_EQ(report->incidents[0].incident_id, "INC-3");
}

TEST_F(PeriodTest, ReportListsIncidentsByIdNumber) {
  ASSERT_NO_FATAL_FAILURE(PlantIncident("INC-10"));
  const std::string bundle = Export(At("2026-12-09T00:00:00Z"), At("2027-01-01T00:00:00Z"));
  auto report = VerifyPeriodBundle(bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->incidents.size(), 2u);
  EXPECT_EQ(report->incidents[0].incident_id, "INC-3");
  EXPECT_EQ(report->incidents[1].incident_id, "INC-10");
}

TEST_F(PeriodTest, PeriodBeforeFirstCheckpointStartsFromEmptyLog) {
  const std::string bundle = Export(At("2026-11-01T00:00:00Z"), At("2026-12-02T12:00:00Z"));
  auto report = VerifyPeriodBundle(bundle, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_FALSE(report->start_checkpoint.has_value());
  EXPECT_EQ(report->incidents.size(), 1u);
}

TEST_F(PeriodTest, EmptyPeriodIsInvalid) {
  auto bundle =
      ExportPeriodBundle(*store_, At("2026-12-05T00:00:00Z"), At("2026-12-05T00:00:00Z"), *signer_);
  ASSERT_FALSE(bundle.has_value());
  EXPECT_EQ(bundle.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(PeriodTest, FormatOfEachBundleKind) {
  auto period = BundleFormatOf(Export());
  ASSERT_TRUE(period.has_value()) << period.error().message;
  EXPECT_EQ(*period, kPeriodBundleFormat);
  auto incident = ExportIncidentBundle(*store_, "INC-1", *signer_);
  ASSERT_TRUE(incident.has_value()) << incident.error().message;
  auto format = BundleFormatOf(*incident);
  ASSERT_TRUE(format.has_value()) << format.error().message;
  EXPECT_EQ(*format, kBundleFormat);
}

TEST_F(PeriodTest, IncidentVerifierRejectsPeriodBundle) {
  auto report = VerifyBundle(Export(), {});
  ASSERT_FALSE(report.has_value());
  EXPECT_NE(report.error().message.find(kPeriodBundleFormat), std::string::npos)
      << report.error().message;
}

}  // namespace
}  // namespace backout::evidence
