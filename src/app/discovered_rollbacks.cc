// Discovered rollbacks: listing, linking to an incident, documenting; the service timeline.
#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"

namespace backout::app {
namespace {

using nlohmann::json;

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\n") == std::string_view::npos;
}

core::Result<Stored<DiscoveredRollback>> LoadDiscovered(store::Transaction& tx,
                                                        std::string_view id) {
  BACKOUT_TRY(auto object, tx.Get(kDiscoveredRollbackKind, id));
  if (!object) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "discovered rollback {} not found; `backout discovered list` shows "
                           "them",
                           id);
  }
  BACKOUT_TRY(DiscoveredRollback value, DiscoveredRollbackFromJson(object->body));
  return Stored<DiscoveredRollback>{std::move(*object), std::move(value)};
}

core::Result<void> CheckOpen(const DiscoveredRollback& found) {
  if (found.state == kDiscoveredOpen) return {};
  return core::MakeError(core::ErrorCode::kFailedPrecondition,
                         "discovered rollback {} is already {}{}", found.id, found.state,
                         found.incident.empty() ? "" : fmt::format(" to {}", found.incident));
}

core::Result<void> SaveDiscovered(store::Transaction& tx, Stored<DiscoveredRollback>& stored) {
  stored.object.body = ToJson(stored.value);
  return tx.Put(stored.object);
}

json TimelineItem(core::Time time, std::string kind, std::string id, std::string actor,
                  std::string summary) {
  return {{"time", core::FormatTime(time)},
          {"kind", std::move(kind)},
          {"id", std::move(id)},
          {"actor", std::move(actor)},
          {"summary", std::move(summary)}};
}

}  // namespace

json ToJson(const DiscoveredRollback& rollback) {
  return {{"id", rollback.id},
          {"service", rollback.service},
          {"environment", rollback.environment},
          {"provider", rollback.provider},
          {"version", rollback.version},
          {"from_version", rollback.from_version},
          {"time", core::FormatTime(rollback.time)},
          {"actor", rollback.actor},
          {"evidence", rollback.evidence},
          {"details", rollback.details},
          {"discovered_at", core::FormatTime(rollback.discovered_at)},
          {"state", rollback.state},
          {"incident", rollback.incident},
          {"reason", rollback.reason},
          {"resolved_by", rollback.resolved_by},
          {"resolved_at",
           rollback.resolved_at ? json(core::FormatTime(*rollback.resolved_at)) : json(nullptr)}};
}

core::Result<DiscoveredRollback> DiscoveredRollbackFromJson(const json& body) {
  try {
    DiscoveredRollback rollback{.id = body.at("id").get<std::string>(),
                                .service = body.at("service").get<std::string>(),
                                .environment = body.value("environment", ""),
                                .provider = body.value("provider", ""),
                                .version = body.at("version").get<std::string>(),
                                .from_version = body.value("from_version", ""),
                                .actor = body.value("actor", ""),
                                .evidence = body.value("evidence", ""),
                                .details = body.value("details", json::object()),
                                .state = body.at("state").get<std::string>(),
                                .incident = body.value("incident", ""),
                                .reason = body.value("reason", ""),
                                .resolved_by = body.value("resolved_by", "")};
    BACKOUT_TRY(rollback.time, core::ParseTime(body.at("time").get<std::string>()));
    BACKOUT_TRY(rollback.discovered_at,
                core::ParseTime(body.at("discovered_at").get<std::string>()));
    if (auto it = body.find("resolved_at"); it != body.end() && it->is_string()) {
      BACKOUT_TRY(rollback.resolved_at, core::ParseTime(it->get<std::string>()));
    }
    return rollback;
  } catch (const json::exception& error) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "stored discovered rollback cannot be read: {}", error.what());
  }
}

json ToJson(const ReconcileReport& report) {
  return {{"service", report.service},
          {"reconcilable", report.reconcilable},
          {"reason", report.reason},
          {"entries_read", report.entries_read},
          {"already_known", report.already_known},
          {"matched", report.matched},
          {"discovered_changes", report.discovered_changes},
          {"discovered_rollbacks", report.discovered_rollbacks},
          {"live_problem", report.live_problem}};
}

core::Result<Page<DiscoveredRollback>> ControlPlane::ListDiscoveredRollbacks(
    const Caller& caller, const DiscoveredRollbackFilter& filter, const ListOptions& options) {
  const auto current = settings();
  Page<DiscoveredRollback> page;
  BACKOUT_CHECK(Read(
      caller, "discovered_rollback.list", "discovered_rollback",
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        std::string after = options.after;
        // The state filter applies after reading, so keep reading until the page is full.
        while (true) {
          BACKOUT_TRY(auto objects, tx.List(store::ListQuery{.kind = kDiscoveredRollbackKind,
                                                             .service = filter.service,
                                                             .after_id = after,
                                                             .limit = options.limit + 1}));
          for (const store::Object& object : objects) {
            BACKOUT_TRY(DiscoveredRollback found, DiscoveredRollbackFromJson(object.body));
            if (filter.state && found.state != *filter.state) continue;
            if (static_cast<int>(page.items.size()) == options.limit) {
              page.next_after = page.items.back().id;
              return {};
            }
            page.items.push_back(std::move(found));
          }
          if (static_cast<int>(objects.size()) <= options.limit) return {};
          after = objects.back().id;
        }
      }));
  return page;
}

core::Result<DiscoveredRollback> ControlPlane::GetDiscoveredRollback(const Caller& caller,
                                                                     std::string_view id) {
  const auto current = settings();
  DiscoveredRollback found;
  BACKOUT_CHECK(Read(caller, "discovered_rollback.show", fmt::format("discovered_rollback/{}", id),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       BACKOUT_TRY(auto stored, LoadDiscovered(tx, id));
                       found = std::move(stored.value);
                       return {};
                     }));
  return found;
}

core::Result<DiscoveredRollback> ControlPlane::LinkDiscoveredRollback(
    const Caller& caller, std::string_view id, std::string_view incident_id) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = fmt::format("discovered_rollback/{}", id);
  DiscoveredRollback linked;
  BACKOUT_CHECK(Write(
      caller, "discovered_rollback.link", subject,
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kResolveDiscoveredRollback,
                                           current->policy));
        BACKOUT_TRY(auto stored, LoadDiscovered(tx, id));
        BACKOUT_CHECK(CheckOpen(stored.value));
        BACKOUT_TRY(auto incident, LoadIncident(tx, incident_id));
        if (incident.value.service != stored.value.service) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "incident {} concerns service {}, but discovered rollback {} was "
                                 "on {}; link it to an incident of {}",
                                 incident.value.id, incident.value.service, id,
                                 stored.value.service, stored.value.service);
        }
        stored.value.state = kDiscoveredLinked;
        stored.value.incident = incident.value.id;
        stored.value.resolved_by = caller.name();
        stored.value.resolved_at = now;
        BACKOUT_CHECK(SaveDiscovered(tx, stored));

        AddTimeline(
            incident.value, now, caller, "discovered_rollback_linked",
            fmt::format("{} linked {}: {} was rolled back to {} by {} at {} outside "
                        "Backout",
                        caller.name(), id, stored.value.service, stored.value.version,
                        stored.value.actor.empty() ? "an unknown actor" : stored.value.actor,
                        core::FormatTime(stored.value.time)));
        BACKOUT_CHECK(Save(tx, incident));
        linked = stored.value;
        return Ledger(tx, caller, "discovered_rollback.linked", subject,
                      {{"incident", incident.value.id}});
      }));
  return linked;
}

core::Result<DiscoveredRollback> ControlPlane::DocumentDiscoveredRollback(const Caller& caller,
                                                                          std::string_view id,
                                                                          std::string_view reason) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = fmt::format("discovered_rollback/{}", id);
  DiscoveredRollback documented;
  BACKOUT_CHECK(Write(
      caller, "discovered_rollback.document", subject,
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kResolveDiscoveredRollback,
                                           current->policy));
        if (IsBlank(reason)) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "documenting a discovered rollback needs a reason; pass "
                                 "--reason TEXT");
        }
        BACKOUT_TRY(auto stored, LoadDiscovered(tx, id));
        BACKOUT_CHECK(CheckOpen(stored.value));
        stored.value.state = kDiscoveredDocumented;
        stored.value.reason = std::string(reason);
        stored.value.resolved_by = caller.name();
        stored.value.resolved_at = now;
        BACKOUT_CHECK(SaveDiscovered(tx, stored));
        documented = stored.value;
        return Ledger(tx, caller, "discovered_rollback.documented", subject, {{"reason", reason}});
      }));
  return documented;
}

core::Result<json> ControlPlane::ServiceTimeline(const Caller& caller, std::string_view service) {
  const auto current = settings();
  std::vector<std::pair<core::Time, json>> items;
  BACKOUT_CHECK(Read(
      caller, "service.timeline", fmt::format("service/{}", service),
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        if (current->config.FindService(service) == nullptr) {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "service {} is not in the configuration", service);
        }
        const std::string name(service);
        for (std::string_view kind : {kChangeKind, kIncidentKind, kDiscoveredRollbackKind}) {
          std::string after;
          while (true) {
            BACKOUT_TRY(auto objects,
                        tx.List(store::ListQuery{
                            .kind = std::string(kind), .service = name, .after_id = after}));
            for (const store::Object& object : objects) {
              if (kind == kChangeKind) {
                BACKOUT_TRY(core::Change change, core::FromJson<core::Change>(object.body));
                items.emplace_back(
                    change.time,
                    TimelineItem(
                        change.time,
                        change.source == core::ChangeSource::kDiscovered ? "change_discovered"
                                                                         : "change",
                        change.id, change.deployer,
                        fmt::format("deployed {} (from {})", change.version,
                                    change.previous_version.empty() ? "an unknown version"
                                                                    : change.previous_version)));
              } else if (kind == kIncidentKind) {
                BACKOUT_TRY(core::Incident incident, core::FromJson<core::Incident>(object.body));
                items.emplace_back(
                    incident.opened_at,
                    TimelineItem(
                        incident.opened_at, "incident", incident.id, incident.opened_by,
                        fmt::format("{} opened ({}): {}", core::SeverityName(incident.severity),
                                    core::IncidentStateName(incident.state), incident.title)));
                for (const core::Rollback& rollback : incident.rollbacks) {
                  const core::Time time = rollback.finished_at.value_or(rollback.requested_at);
                  items.emplace_back(
                      time,
                      TimelineItem(time, "rollback", fmt::format("job/{}", rollback.job_id),
                                   rollback.executor,
                                   fmt::format("rollback to {} for {}: {}", rollback.target_version,
                                               incident.id,
                                               rollback.outcome
                                                   ? core::RollbackOutcomeName(*rollback.outcome)
                                                   : std::string_view("running"))));
                }
              } else {
                BACKOUT_TRY(DiscoveredRollback found, DiscoveredRollbackFromJson(object.body));
                items.emplace_back(
                    found.time,
                    TimelineItem(found.time, "rollback_discovered", found.id, found.actor,
                                 fmt::format("rolled back outside Backout from {} to {} ({})",
                                             found.from_version.empty() ? "an unknown version"
                                                                        : found.from_version,
                                             found.version, found.state)));
              }
            }
            if (objects.size() < 1000) break;
            after = objects.back().id;
          }
        }
        return {};
      }));
  std::ranges::stable_sort(items, {}, &std::pair<core::Time, json>::first);
  json out = json::array();
  for (auto& [time, item] : items) out.push_back(std::move(item));
  return out;
}

}  // namespace backout::app
