// Incidents: open, list, show, assess and decide.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <span>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/rollback_target_check.h"
#include "app/try.h"
#include "core/state_machine.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

std::vector<core::Role> RolesOf(const Caller& caller) { return caller.user.roles; }

core::Result<std::vector<core::Change>> LoadChanges(store::Transaction& tx,
                                                    const std::string& service) {
  std::vector<core::Change> changes;
  std::string after;
  while (true) {
    BACKOUT_TRY(auto objects, tx.List(store::ListQuery{
                                  .kind = kChangeKind, .service = service, .after_id = after}));
    for (const store::Object& object : objects) {
      BACKOUT_TRY(core::Change change, core::FromJson<core::Change>(object.body));
      changes.push_back(std::move(change));
    }
    if (objects.empty() || objects.size() < 1000) break;
    after = objects.back().id;
  }
  return changes;
}

std::map<std::string, std::vector<std::string>> DependencyMap(const Config& config) {
  std::map<std::string, std::vector<std::string>> depends_on;
  for (const ServiceConfig& service : config.services)
    depends_on[service.name] = service.depends_on;
  return depends_on;
}

// Inputs of an assessment, read from the store before the provider is called.
struct AssessmentInputs {
  core::Incident incident;
  std::vector<core::Change> changes;
};

// Finds the recorded change that makes `version` unusable as a rollback target. That is the
// suspected change when `version` is its version. Otherwise it is the first change in the
// suspect's environment, deployed after the suspect, that brought `version` in, unless `version`
// was deployed before the suspect. Both use core::DeployedBefore, the order core::ChooseTarget
// uses, so a target chosen by rule passes this check. Returns nullptr when `version` may be a
// target.
const core::Change* ChangeBlockingTarget(std::span<const core::Change> changes,
                                         const core::Change& suspected, std::string_view version) {
  if (version.empty()) return nullptr;
  if (version == suspected.version) return &suspected;
  if (version == suspected.previous_version) return nullptr;

  const core::Change* introduced = nullptr;
  for (const core::Change& change : changes) {
    if (change.environment != suspected.environment || change.version != version) continue;
    if (change.id == suspected.id) continue;
    if (core::DeployedBefore(change, suspected)) return nullptr;
    if (introduced == nullptr || core::DeployedBefore(change, *introduced)) introduced = &change;
  }
  return introduced;
}

}  // namespace

core::Result<void> CheckTargetBeforeSuspect(const core::Incident& incident,
                                            std::span<const core::Change> changes,
                                            std::string_view version, std::string_view chosen_by,
                                            bool named) {
  if (!incident.suspected_change_id) return {};
  const auto suspected =
      std::ranges::find(changes, *incident.suspected_change_id, &core::Change::id);
  if (suspected == changes.end()) return {};
  const core::Change* blocking = ChangeBlockingTarget(changes, *suspected, version);
  if (blocking == nullptr || (named && blocking != &*suspected)) return {};

  const core::ErrorCode code =
      named ? core::ErrorCode::kInvalidArgument : core::ErrorCode::kFailedPrecondition;

  const std::string why = blocking->id == suspected->id
                              ? fmt::format("is the version of suspected change {}", suspected->id)
                              : fmt::format("was deployed by {} after suspected change {} ({})",
                                            blocking->id, suspected->id, suspected->version);
  return core::MakeError(code,
                         "incident {}: the rollback target {} ({}) {}, so rolling back to it would "
                         "keep the suspected code live; name a version deployed before {} with "
                         "`backout incident assess {} --target VERSION`",
                         incident.id, version, chosen_by, why, suspected->id, incident.id);
}

core::Result<core::Incident> ControlPlane::OpenIncident(const Caller& caller,
                                                        const NewIncident& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  core::Incident incident;
  BACKOUT_CHECK(Write(
      caller, "incident.open", fmt::format("service/{}", request.service),
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(
            core::CheckOperation(caller.user, core::Operation::kOpenIncident, current->policy));
        const ServiceConfig* service = current->config.FindService(request.service);
        if (service == nullptr) {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "service {} is not in the configuration; `backout service list` "
                                 "shows the configured services",
                                 request.service);
        }
        if (request.title.find_first_not_of(" \t\n") == std::string::npos) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "field `title` must not be blank");
        }
        if (request.suspected_change) {
          BACKOUT_TRY(auto change, Load<core::Change>(tx, kChangeKind, *request.suspected_change,
                                                      "suspected change"));
          if (change.value.service != service->name) {
            return core::MakeError(core::ErrorCode::kInvalidArgument,
                                   "suspected change {} deployed service {}, not {}",
                                   change.value.id, change.value.service, service->name);
          }
        }

        BACKOUT_TRY(int64_t number, tx.NextNumber(kIncidentKind));
        incident =
            core::Incident{.id = fmt::format("INC-{}", number),
                           .service = service->name,
                           .environment = service->environment,
                           .severity = request.severity,
                           .title = request.title,
                           .state = core::IncidentState::kOpen,
                           .suspected_change_id = request.suspected_change,
                           .suspected_change_reason =
                               request.suspected_change ? "named by the person who opened it" : "",
                           .external_ticket = request.external_ticket,
                           .trigger = core::Trigger{.kind = "manual", .source = caller.name()},
                           .opened_by = caller.name(),
                           .opened_at = now};
        AddTimeline(
            incident, now, caller, "opened",
            fmt::format("{} opened {} on {}: {}", caller.name(),
                        core::SeverityName(request.severity), service->name, request.title));
        BACKOUT_TRY(auto stored,
                    Insert(tx, kIncidentKind, incident.id, incident.service, incident));
        BACKOUT_CHECK(EnqueueNotification(
            tx, current->config, now,
            NotificationEvent{.event = "incident.opened",
                              .subject = IncidentSubject(incident.id),
                              .service = incident.service,
                              .summary = fmt::format("{} opened {} on {}: {}", caller.name(),
                                                     incident.id, incident.service, incident.title),
                              .data = {{"incident", incident.id},
                                       {"severity", core::SeverityName(incident.severity)},
                                       {"title", incident.title},
                                       {"opened_by", caller.name()}}}));
        return Ledger(tx, caller, "incident.opened", IncidentSubject(incident.id),
                      {{"service", incident.service},
                       {"severity", core::SeverityName(incident.severity)},
                       {"title", incident.title},
                       {"suspected_change", request.suspected_change
                                                ? nlohmann::json(*request.suspected_change)
                                                : nlohmann::json(nullptr)},
                       {"external_ticket", incident.external_ticket}});
      }));
  spdlog::info("component=app event=incident_opened incident={} service={} by={}", incident.id,
               incident.service, caller.name());
  return incident;
}

core::Result<Page<core::Incident>> ControlPlane::ListIncidents(const Caller& caller,
                                                               const IncidentFilter& filter,
                                                               const ListOptions& options) {
  const auto current = settings();
  Page<core::Incident> page;
  BACKOUT_CHECK(
      Read(caller, "incident.list", "incident", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        std::string after = options.after;
        // The state filter applies after reading, so keep reading until the page is full.
        while (true) {
          BACKOUT_TRY(auto objects, tx.List(store::ListQuery{.kind = kIncidentKind,
                                                             .service = filter.service,
                                                             .after_id = after,
                                                             .limit = options.limit + 1}));
          for (const store::Object& object : objects) {
            BACKOUT_TRY(core::Incident incident, core::FromJson<core::Incident>(object.body));
            if (filter.state && incident.state != *filter.state) continue;
            if (static_cast<int>(page.items.size()) == options.limit) {
              page.next_after = page.items.back().id;
              return {};
            }
            page.items.push_back(std::move(incident));
          }
          if (static_cast<int>(objects.size()) <= options.limit) return {};
          after = objects.back().id;
        }
      }));
  return page;
}

core::Result<core::Incident> ControlPlane::GetIncident(const Caller& caller, std::string_view id) {
  const auto current = settings();
  core::Incident incident;
  BACKOUT_CHECK(Read(caller, "incident.show", IncidentSubject(id),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       BACKOUT_TRY(auto stored, LoadIncident(tx, id));
                       incident = std::move(stored.value);
                       return {};
                     }));
  return incident;
}

core::Result<core::Incident> ControlPlane::Assess(const Caller& caller, std::string_view id,
                                                  const AssessRequest& request) {
  const auto current = settings();
  const std::string subject = IncidentSubject(id);

  // Step 1: check the caller and the state, and read what the assessment needs.
  AssessmentInputs inputs;
  BACKOUT_CHECK(
      Read(caller, "incident.assess", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        BACKOUT_CHECK(core::Transition(stored.value.state, core::Action::kAssess, RolesOf(caller),
                                       current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        inputs.incident = std::move(stored.value);
        BACKOUT_TRY(inputs.changes, LoadChanges(tx, inputs.incident.service));
        return {};
      }));
  const core::Incident& incident = inputs.incident;

  // Step 2: the target and its rule, the blast radius and the data implications.
  core::Assessment assessment;
  assessment.service = incident.service;
  assessment.affected_services =
      core::AffectedServices(incident.service, DependencyMap(current->config));
  for (const std::string& name : assessment.affected_services) {
    const ServiceConfig* service = current->config.FindService(name);
    assessment.customer_facing =
        assessment.customer_facing || (service && service->customer_facing);
  }
  std::optional<std::string_view> suspected;
  if (incident.suspected_change_id) suspected = *incident.suspected_change_id;
  BACKOUT_TRY(auto release_advisor, ReleaseTargetAdvisor::Load(store_, *current, incident.service));
  core::TargetChoice target;
  const bool named_target = request.target_version && !request.target_version->empty();
  if (named_target) {
    target.version = *request.target_version;
    target.rule = fmt::format("named by {} at assessment", caller.name());
    BACKOUT_CHECK(CheckTargetBeforeSuspect(incident, inputs.changes, target.version, target.rule,
                                           named_target));
    for (const core::Change& change : inputs.changes) {
      if (change.version == target.version) target.change_id = change.id;
    }
  } else {
    BACKOUT_TRY(target, core::ChooseTarget(inputs.changes, suspected));
    release_advisor.Refine(inputs.changes, suspected, target);
  }
  assessment.target_version = target.version;
  assessment.target_change_id = target.change_id;
  assessment.target_rule = target.rule;
  assessment.data_implications = core::FindDataImplications(inputs.changes, target, suspected);

  // Step 3: the provider's preconditions and plan, outside any transaction.
  auto provider = current->providers.find(incident.service);
  if (provider == current->providers.end()) {
    assessment.preconditions.push_back(core::Precondition{
        .name = "provider configured",
        .satisfied = false,
        .detail = fmt::format("no provider could be created for service {}", incident.service)});
    assessment.plan = {{"error", "no provider"}};
  } else {
    if (auto checks = provider->second->Preconditions(); checks) {
      assessment.preconditions = *checks;
    } else {
      assessment.preconditions.push_back(core::Precondition{
          .name = "preconditions readable", .satisfied = false, .detail = checks.error().message});
    }
    if (auto plan = provider->second->MakePlan(target.version); plan) {
      // Providers that pick their own target (an empty target version) may pick the suspect's.
      BACKOUT_CHECK(CheckTargetBeforeSuspect(incident, inputs.changes, plan->target_version,
                                             plan->summary.empty() ? target.rule : plan->summary,
                                             named_target));
      assessment.plan = providers::ToJson(*plan);
      if (auto check = release_advisor.CheckPlanned(plan->target_version)) {
        assessment.preconditions.push_back(*std::move(check));
      }
    } else {
      assessment.plan = {{"error", plan.error().message}};
    }
  }
  assessment.assessed_by = caller.name();
  assessment.assessed_at = clock_.Now();
  BACKOUT_TRY(std::string canonical, core::CanonicalForDigest(assessment));
  assessment.digest = ledger::ToHex(ledger::Sha256(canonical));

  // Step 4: store it, checking the state again because it may have moved meanwhile.
  core::Incident updated;
  BACKOUT_CHECK(
      Write(caller, "incident.assess", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(stored.value.state, core::Action::kAssess, RolesOf(caller),
                                     current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        stored.value.state = next;
        stored.value.assessment = assessment;
        AddTimeline(stored.value, assessment.assessed_at, caller, "assessed",
                    fmt::format("target {} ({}); digest {}",
                                assessment.target_version.empty() ? "chosen by the provider"
                                                                  : assessment.target_version,
                                assessment.target_rule, assessment.digest));
        BACKOUT_CHECK(Save(tx, stored));
        updated = stored.value;
        BACKOUT_CHECK(EnqueueNotification(
            tx, current->config, assessment.assessed_at,
            NotificationEvent{
                .event = "decision.needed",
                .subject = subject,
                .service = updated.service,
                .summary = fmt::format("{} on {} is assessed and needs a go/no-go decision "
                                       "(target {}, digest {})",
                                       updated.id, updated.service, assessment.target_version,
                                       assessment.digest),
                .data = {{"incident", updated.id},
                         {"digest", assessment.digest},
                         {"target_version", assessment.target_version},
                         {"target_rule", assessment.target_rule}}}));
        return Ledger(tx, caller, "incident.assessed", subject,
                      {{"digest", assessment.digest},
                       {"target_version", assessment.target_version},
                       {"target_rule", assessment.target_rule},
                       {"affected_services", assessment.affected_services},
                       {"blocking", assessment.HasBlockingImplication()},
                       {"plan_digest", assessment.plan.value("digest", "")}});
      }));
  return updated;
}

core::Result<core::Incident> ControlPlane::Decide(const Caller& caller, std::string_view id,
                                                  const DecisionRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  core::Incident updated;
  BACKOUT_CHECK(
      Write(caller, "incident.decide", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;

        core::Action action = request.kind == core::DecisionKind::kGo ? core::Action::kDecideGo
                                                                      : core::Action::kDecideNoGo;
        if (request.retroactive) action = core::Action::kApproveRetroactively;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, action, RolesOf(caller), current->policy));
        if (request.retroactive) {
          BACKOUT_CHECK(core::CanApproveRetroactively(caller.user, incident, current->policy));
        } else {
          BACKOUT_CHECK(core::CanDecide(caller.user, incident, current->policy));
        }

        core::Decision decision{
            .kind = request.retroactive ? core::DecisionKind::kGo : request.kind,
            .decider = caller.name(),
            .time = now,
            .reason = request.reason,
            .approved_digest = request.approved_digest,
            .override_reason = request.override_reason,
            .retroactive = request.retroactive};
        if (!request.retroactive) {
          if (!incident.assessment) {
            return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                   "incident {} has no assessment to decide on; run `backout "
                                   "incident assess {}` first",
                                   id, id);
          }
          const nlohmann::json& plan = incident.assessment->plan;
          if (decision.kind == core::DecisionKind::kGo && plan.contains("error")) {
            return core::MakeError(
                core::ErrorCode::kFailedPrecondition,
                "incident {} cannot be decided go: its assessment has no rollback plan because "
                "planning failed ({}); fix what that error names, or choose another target with "
                "`backout incident assess {} --target VERSION`, then decide again, or decide "
                "--no-go",
                id, plan["error"].dump(), id);
          }
          if (decision.approved_digest.empty())
            decision.approved_digest = incident.assessment->digest;
          BACKOUT_CHECK(core::CheckDecision(decision, *incident.assessment));
        } else if (decision.reason.find_first_not_of(" \t\n") == std::string::npos) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "a retroactive approval needs a reason; pass --reason TEXT");
        }

        incident.decisions.push_back(decision);
        incident.state = next;
        const std::string kind_name = request.retroactive
                                          ? "retroactive approval"
                                          : std::string(core::DecisionKindName(decision.kind));
        AddTimeline(incident, now, caller,
                    request.retroactive ? "approved_retroactively" : "decided",
                    fmt::format("{} by {}: {}", kind_name, caller.name(), decision.reason));
        BACKOUT_CHECK(Save(tx, stored));
        updated = incident;
        return Ledger(tx, caller,
                      request.retroactive ? "incident.approved_retroactively" : "incident.decided",
                      subject,
                      {{"decision", core::DecisionKindName(decision.kind)},
                       {"reason", decision.reason},
                       {"approved_digest", decision.approved_digest},
                       {"override_reason", decision.override_reason},
                       {"retroactive", decision.retroactive}});
      }));
  return updated;
}

}  // namespace backout::app
