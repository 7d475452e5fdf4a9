// Changes: deployments recorded by CI or people, and their verifications.
#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"
#include "providers/releases/release_tree.h"

namespace backout::app {
namespace {

core::Result<const ServiceConfig*> FindService(const Settings& settings, std::string_view name) {
  const ServiceConfig* service = settings.config.FindService(name);
  if (service == nullptr) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {} is not in the configuration; `backout service list` shows "
                           "the configured services",
                           name);
  }
  return service;
}

}  // namespace

core::Result<core::Change> ControlPlane::RecordChange(const Caller& caller,
                                                      const NewChange& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  core::Change change;
  BACKOUT_CHECK(Write(
      caller, "change.record", fmt::format("service/{}", request.service),
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(
            core::CheckOperation(caller.user, core::Operation::kRecordChange, current->policy));
        BACKOUT_TRY(const ServiceConfig* service, FindService(*current, request.service));
        if (request.version.empty()) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "field `version` must not be empty");
        }
        // A release folder's name is the version, so a name the provider could never switch to
        // would become a release in the manifest that no folder can show.
        if (service->provider.kind == "releases") {
          if (auto valid = providers::releases::CheckVersionName(request.version); !valid) {
            return core::MakeError(
                core::ErrorCode::kInvalidArgument,
                "invalid version '{}' for service {}, whose releases provider names each release "
                "by its folder under releases/: {}",
                request.version, service->name, valid.error().message);
          }
        }
        BACKOUT_TRY(int64_t number, tx.NextNumber(kChangeKind));
        change = core::Change{
            .id = fmt::format("CHG-{}", number),
            .service = service->name,
            .environment = request.environment.empty() ? service->environment : request.environment,
            .version = request.version,
            .previous_version = request.previous_version,
            .external_ticket = request.external_ticket,
            .approver = request.approver,
            .deployer = request.deployer,
            .time = request.time.value_or(now),
            .risk = request.risk,
            .migrations = request.migrations,
            .source = core::ChangeSource::kRecorded,
            .recorded_by = caller.name()};
        BACKOUT_TRY(auto stored, Insert(tx, kChangeKind, change.id, change.service, change));
        BACKOUT_CHECK(NoteReleaseDeployed(tx, *current, caller, change));
        return Ledger(tx, caller, "change.recorded", fmt::format("change/{}", change.id),
                      nlohmann::json(change));
      }));
  return change;
}

core::Result<core::Change> ControlPlane::VerifyChange(const Caller& caller, std::string_view id,
                                                      const ChangeVerification& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = fmt::format("change/{}", id);
  core::Change change;
  BACKOUT_CHECK(
      Write(caller, "change.verify", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(
            core::CheckOperation(caller.user, core::Operation::kVerifyChange, current->policy));
        BACKOUT_TRY(auto stored, Load<core::Change>(tx, kChangeKind, id, "change"));
        stored.value.verification = core::Verification{.passed = request.passed,
                                                       .verified_by = caller.name(),
                                                       .verified_at = now,
                                                       .detail = request.details};
        stored.value.validated =
            request.passed ? core::ChangeValidation::kGood : core::ChangeValidation::kBad;
        BACKOUT_CHECK(Save(tx, stored));
        change = stored.value;
        BACKOUT_CHECK(NoteChangeVerified(tx, *current, caller, change, request.passed, now));
        return Ledger(tx, caller, "change.verified", subject,
                      {{"passed", request.passed}, {"details", request.details}});
      }));
  return change;
}

core::Result<Page<core::Change>> ControlPlane::ListChanges(const Caller& caller,
                                                           std::optional<std::string> service,
                                                           const ListOptions& options) {
  const auto current = settings();
  Page<core::Change> page;
  BACKOUT_CHECK(
      Read(caller, "change.list", "change", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        BACKOUT_TRY(auto objects, tx.List(store::ListQuery{.kind = kChangeKind,
                                                           .service = service,
                                                           .after_id = options.after,
                                                           .limit = options.limit + 1}));
        for (const store::Object& object : objects) {
          if (static_cast<int>(page.items.size()) == options.limit) {
            page.next_after = page.items.back().id;
            break;
          }
          BACKOUT_TRY(core::Change change, core::FromJson<core::Change>(object.body));
          page.items.push_back(std::move(change));
        }
        return {};
      }));
  return page;
}

core::Result<core::Change> ControlPlane::GetChange(const Caller& caller, std::string_view id) {
  const auto current = settings();
  core::Change change;
  BACKOUT_CHECK(Read(caller, "change.show", fmt::format("change/{}", id),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       BACKOUT_TRY(auto stored, Load<core::Change>(tx, kChangeKind, id, "change"));
                       change = std::move(stored.value);
                       return {};
                     }));
  return change;
}

}  // namespace backout::app
