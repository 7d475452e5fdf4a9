// Evidence bundles and audit checks: read-only use cases for auditors.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"
#include "evidence/bundle.h"
#include "evidence/population.h"

namespace backout::app {
namespace {

// Checks that the half-open period [from, to) is not empty when both ends are set.
core::Result<void> CheckPeriod(std::optional<core::Time> from, std::optional<core::Time> to) {
  if (from && to && !(*from < *to)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "from {} is not before to {}, so the period is empty (to is "
                           "exclusive); give a from earlier than to",
                           core::FormatTime(*from), core::FormatTime(*to));
  }
  return {};
}

}  // namespace

void ControlPlane::SetEvidenceSigner(std::shared_ptr<const ledger::Signer> signer) {
  evidence_signer_ = std::move(signer);
}

core::Result<std::string> ControlPlane::ExportEvidence(const Caller& caller, std::string_view id) {
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "evidence.export", IncidentSubject(id), [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  if (!evidence_signer_) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "this server has no evidence signing key; it is set at start from the "
                           "ledger key");
  }
  // Entries appended since the last signature get one now, so the bundle's proofs reach them.
  BACKOUT_CHECK(store_.SignCheckpoint());
  auto bundle = evidence::ExportIncidentBundle(store_, id, *evidence_signer_);
  if (!bundle) {
    spdlog::error("component=evidence incident={} user={} event=export_failed error=\"{}\"", id,
                  caller.name(), bundle.error().message);
  }
  return bundle;
}

core::Result<std::vector<evidence::AuditFinding>> ControlPlane::AuditCheck(
    const Caller& caller, const AuditRequest& request) {
  BACKOUT_CHECK(CheckPeriod(request.from, request.to));
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "audit.check", "audit", [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  evidence::AuditOptions options{.at = request.at.value_or(clock_.Now()),
                                 .from = request.from,
                                 .to = request.to,
                                 .current_policy = current->policy};
  for (const ServiceConfig& service : current->config.services) {
    options.service_providers[service.name] = service.provider.kind;
  }
  BACKOUT_CHECK(store_.SignCheckpoint());
  auto findings = evidence::RunAuditChecks(store_, options);
  if (findings) {
    spdlog::info("component=evidence user={} event=audit_checked findings={}", caller.name(),
                 findings->size());
  }
  return findings;
}

core::Result<nlohmann::json> ControlPlane::Population(const Caller& caller,
                                                      std::optional<core::Time> from,
                                                      std::optional<core::Time> to) {
  BACKOUT_CHECK(CheckPeriod(from, to));
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "evidence.population", "population", [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  return evidence::BuildPopulation(store_, from, to);
}

core::Result<std::string> ControlPlane::ExportPeriodEvidence(const Caller& caller, core::Time from,
                                                             core::Time to) {
  BACKOUT_CHECK(CheckPeriod(from, to));
  const auto current = settings();
  const std::string subject =
      fmt::format("evidence/{}..{}", core::FormatTime(from), core::FormatTime(to));
  BACKOUT_CHECK(Read(caller, "evidence.export_period", subject, [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  if (!evidence_signer_) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "this server has no evidence signing key; it is set at start from the "
                           "ledger key");
  }
  BACKOUT_CHECK(store_.SignCheckpoint());
  auto bundle = evidence::ExportPeriodBundle(store_, from, to, *evidence_signer_);
  if (!bundle) {
    spdlog::error(
        "component=evidence from={} to={} user={} event=period_export_failed error=\"{}\"",
        core::FormatTime(from), core::FormatTime(to), caller.name(), bundle.error().message);
  }
  return bundle;
}

nlohmann::json ControlPlane::ProviderBindingsOf(const Config& config) {
  nlohmann::json bindings = nlohmann::json::array();
  for (const ServiceConfig& service : config.services) {
    bindings.push_back({{"service", service.name},
                        {"environment", service.environment},
                        {"provider", service.provider.kind},
                        {"settings", service.provider.settings}});
  }
  return bindings;
}

}  // namespace backout::app
