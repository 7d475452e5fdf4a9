// Services as configured, their live state and their deploy freezes.
#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"

namespace backout::app {
namespace {

nlohmann::json ServiceJson(const ServiceConfig& service) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckConfig& check : service.checks) {
    checks.push_back({{"name", check.name}, {"kind", check.kind}, {"settings", check.settings}});
  }
  return {{"name", service.name},
          {"environment", service.environment},
          {"owner", service.owner},
          {"tier", service.tier ? nlohmann::json(*service.tier) : nlohmann::json(nullptr)},
          {"customer_facing", service.customer_facing},
          {"depends_on", service.depends_on},
          {"provider", {{"kind", service.provider.kind}, {"settings", service.provider.settings}}},
          {"checks", checks}};
}

}  // namespace

core::Result<std::vector<ServiceSummary>> ControlPlane::ListServices(const Caller& caller) {
  const auto current = settings();
  std::vector<ServiceSummary> services;
  BACKOUT_CHECK(
      Read(caller, "service.list", "service", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        for (const ServiceConfig& service : current->config.services) {
          BACKOUT_TRY(Freeze freeze, LoadFreeze(tx, service.name));
          services.push_back(ServiceSummary{.name = service.name,
                                            .environment = service.environment,
                                            .provider_kind = service.provider.kind,
                                            .frozen = freeze.frozen});
        }
        return {};
      }));
  return services;
}

core::Result<ServiceDetail> ControlPlane::ShowService(const Caller& caller, std::string_view name) {
  const auto current = settings();
  ServiceDetail detail;
  const ServiceConfig* service = nullptr;
  nlohmann::json reconciliation;
  BACKOUT_CHECK(Read(caller, "service.show", fmt::format("service/{}", name),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       service = current->config.FindService(name);
                       if (service == nullptr) {
                         return core::MakeError(core::ErrorCode::kNotFound,
                                                "service {} is not in the configuration", name);
                       }
                       BACKOUT_TRY(detail.freeze, LoadFreeze(tx, name));
                       BACKOUT_TRY(reconciliation, ReconciliationStatus(tx, name));
                       return {};
                     }));
  detail.service = ServiceJson(*service);
  detail.service["reconcilable"] = reconciliation["reconcilable"];
  detail.service["reconciliation"] = reconciliation;

  auto provider = current->providers.find(service->name);
  if (provider == current->providers.end()) {
    detail.live_state = {{"error", "no provider is configured for this service"}};
  } else if (auto live = provider->second->ReadLiveState(); live) {
    detail.live_state = {{"version", live->version},
                         {"observed_at", core::FormatTime(live->observed_at)},
                         {"details", live->details}};
  } else {
    detail.live_state = {{"error", live.error().message}};
  }
  return detail;
}

core::Result<Freeze> ControlPlane::GetFreeze(const Caller& caller, std::string_view service) {
  const auto current = settings();
  Freeze freeze;
  BACKOUT_CHECK(Read(caller, "service.freeze", fmt::format("service/{}", service),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       // Every role may read a freeze, ci included, because CI reads it before each
                       // deploy.
                       BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
                       if (current->config.FindService(service) == nullptr) {
                         return core::MakeError(core::ErrorCode::kNotFound,
                                                "service {} is not in the configuration", service);
                       }
                       BACKOUT_TRY(freeze, LoadFreeze(tx, service));
                       return {};
                     }));
  return freeze;
}

core::Result<Freeze> ControlPlane::Unfreeze(const Caller& caller, std::string_view service,
                                            std::string_view reason) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = fmt::format("service/{}", service);
  Freeze freeze;
  BACKOUT_CHECK(
      Write(caller, "service.unfreeze", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(
            core::CheckOperation(caller.user, core::Operation::kUnfreezeService, current->policy));
        if (current->config.FindService(service) == nullptr) {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "service {} is not in the configuration", service);
        }
        if (reason.find_first_not_of(" \t\n") == std::string_view::npos) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "lifting a freeze needs a reason; pass --reason TEXT");
        }
        BACKOUT_TRY(freeze, LoadFreeze(tx, service));
        if (!freeze.frozen) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "service {} is not frozen; nothing to lift", service);
        }
        freeze.frozen = false;
        freeze.lifted_by = caller.name();
        freeze.lifted_at = now;
        freeze.lift_reason = std::string(reason);
        BACKOUT_CHECK(SaveFreeze(tx, freeze));
        return Ledger(tx, caller, "service.unfrozen", subject,
                      {{"reason", reason}, {"incident", freeze.incident}});
      }));
  return freeze;
}

}  // namespace backout::app
