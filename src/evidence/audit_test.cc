// Rules over records that reconciliation stores, planted as stored JSON. The use-case tests in
// src/app cover the rules that the control plane's own records feed.
#include "evidence/audit.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "support/temp_dir.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    auto store = store::OpenStore(fmt::format("sqlite:{}/audit.db", temp_.path().string()),
                                  store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
  }

  void Put(const std::string& kind, const std::string& id, const json& body) {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto existing = tx.Get(kind, id);
      if (!existing) return std::unexpected(existing.error());
      store::Object object{.kind = kind, .id = id, .body = body};
      if (existing->has_value()) object.version = (*existing)->version;
      return tx.Put(object);
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  std::vector<std::string> Rules() {
    AuditOptions options{.at = clock_.Now(), .service_providers = {{"checkout", "kubernetes"}}};
    auto findings = RunAuditChecks(*store_, options);
    EXPECT_TRUE(findings.has_value()) << findings.error().message;
    std::vector<std::string> rules;
    if (!findings) return {"<audit check failed>"};
    for (const AuditFinding& finding : *findings) rules.push_back(finding.rule);
    return rules;
  }

  static bool Has(const std::vector<std::string>& rules, std::string_view rule) {
    return std::find(rules.begin(), rules.end(), rule) != rules.end();
  }

  static json Discovered(const std::string& state, const std::string& provider = "kubernetes") {
    return {{"id", "DRB-1"},
            {"service", "checkout"},
            {"provider", provider},
            {"version", "v1"},
            {"from_version", "v2"},
            {"time", "2026-12-04T09:00:00.000000Z"},
            {"actor", "kubectl-user"},
            {"state", state},
            {"incident", state == "linked" ? "INC-1" : ""}};
  }

  testing::TempDir temp_;
  core::ManualClock clock_{core::ParseTime("2026-12-04T10:00:00Z").value()};
  std::unique_ptr<store::Store> store_;
};

TEST_F(AuditTest, EmptyStoreIsClean) { EXPECT_TRUE(Rules().empty()); }

TEST_F(AuditTest, OpenDiscoveredRollbackIsFoundUntilDocumented) {
  Put("discovered_rollback", "DRB-1", Discovered("open"));
  EXPECT_TRUE(Has(Rules(), "discovered_not_linked"));
  json documented = Discovered("documented");
  documented["reason"] = "load test in production, agreed with the lead";
  Put("discovered_rollback", "DRB-1", documented);
  EXPECT_FALSE(Has(Rules(), "discovered_not_linked"));
}

TEST_F(AuditTest, FindingsFollowIdNumberOrder) {
  for (const std::string id : {"DRB-10", "DRB-2"}) {
    json body = Discovered("open");
    body["id"] = id;
    Put("discovered_rollback", id, body);
  }
  auto findings = RunAuditChecks(*store_, AuditOptions{.at = clock_.Now()});
  ASSERT_TRUE(findings.has_value()) << findings.error().message;
  std::vector<std::string> rollbacks;
  for (const AuditFinding& finding : *findings) {
    if (finding.rule == "discovered_not_linked") rollbacks.push_back(finding.rollback);
  }
  EXPECT_EQ(rollbacks, (std::vector<std::string>{"DRB-2", "DRB-10"}));
}

TEST_F(AuditTest, DiscoveredLinkedToMissingIncidentIsFound) {
  Put("discovered_rollback", "DRB-1", Discovered("linked"));
  EXPECT_TRUE(Has(Rules(), "discovered_not_linked"));
}

TEST_F(AuditTest, DiscoveredThroughOtherToolIsFound) {
  Put("discovered_rollback", "DRB-1", Discovered("documented", "command"));
  EXPECT_TRUE(Has(Rules(), "other_method"));
}

TEST_F(AuditTest, UnreconcilableServiceIsFoundUntilFixed) {
  Put("reconciliation", "checkout",
      {{"service", "checkout"}, {"reconcilable", false}, {"reason", "no history access"}});
  EXPECT_TRUE(Has(Rules(), "not_reconcilable"));
  Put("reconciliation", "checkout", {{"service", "checkout"}, {"reconcilable", true}});
  EXPECT_FALSE(Has(Rules(), "not_reconcilable"));
}

TEST_F(AuditTest, BrokenReleaseLinkIsFoundUntilRepaired) {
  json manifest = {{"service", "web"},
                   {"live_version", "2"},
                   {"live_problem", "/srv/web/current links to 'releases/9', which does not exist"},
                   {"live_problem_since", "2026-12-04T09:30:00.000000Z"}};
  Put("release_manifest", "web", manifest);
  EXPECT_TRUE(Has(Rules(), "release_link_broken"));

  // Evaluated before the reconciliation that found it, the problem is not known yet.
  AuditOptions earlier{.at = core::ParseTime("2026-12-04T09:00:00Z").value()};
  auto findings = RunAuditChecks(*store_, earlier);
  ASSERT_TRUE(findings.has_value()) << findings.error().message;
  for (const AuditFinding& finding : *findings) EXPECT_NE(finding.rule, "release_link_broken");

  manifest["live_problem"] = "";
  manifest["live_problem_since"] = nullptr;
  Put("release_manifest", "web", manifest);
  EXPECT_FALSE(Has(Rules(), "release_link_broken"));
}

TEST_F(AuditTest, StaleAccessAttestationIsFoundUntilRenewed) {
  Put("access_attestation", "AR-1",
      {{"id", "AR-1"}, {"attested_by", "lead-1"}, {"attested_at", "2026-08-01T09:00:00.000000Z"}});
  EXPECT_TRUE(Has(Rules(), "access_review_overdue"));
  Put("access_attestation", "AR-2",
      {{"id", "AR-2"}, {"attested_by", "lead-1"}, {"attested_at", "2026-12-01T09:00:00.000000Z"}});
  EXPECT_FALSE(Has(Rules(), "access_review_overdue"));
}

TEST_F(AuditTest, AttestationAfterEvaluationTimeDoesNotCount) {
  Put("access_attestation", "AR-1",
      {{"id", "AR-1"}, {"attested_by", "lead-1"}, {"attested_at", "2026-08-01T09:00:00.000000Z"}});
  Put("access_attestation", "AR-2",
      {{"id", "AR-2"}, {"attested_by", "lead-1"}, {"attested_at", "2026-12-05T09:00:00.000000Z"}});
  EXPECT_TRUE(Has(Rules(), "access_review_overdue"));
}

}  // namespace
}  // namespace backout::evidence
