// The automatic policy of a service: an attributed signal at an allowed severity opens the
// incident, assesses it and, when nothing blocks, rolls back under a standing approval whose
// approver of record is the ledgered policy version.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_write.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/signal_internal.h"
#include "app/try.h"
#include "core/state_machine.h"
#include "ledger/entry.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

// The ledgered policy version that approves an automatic rollback: the latest "policy.loaded"
// entry, with the config digest and the person who loaded it.
struct PolicyVersion {
  uint64_t ledger_entry = 0;
  std::string config_sha256;
  std::string loaded_by;

  std::string Approver() const { return fmt::format("policy@{}", config_sha256.substr(0, 12)); }
  nlohmann::json ToJson() const {
    return {{"policy_ledger_entry", ledger_entry},
            {"config_sha256", config_sha256},
            {"loaded_by", loaded_by}};
  }
};

core::Result<PolicyVersion> FindPolicyVersion(store::Store& store) {
  BACKOUT_TRY(uint64_t count, store.EntryCount());
  constexpr uint64_t kChunk = 256;
  uint64_t end = count;
  while (end > 0) {
    const uint64_t from = end > kChunk ? end - kChunk : 0;
    BACKOUT_TRY(auto rows, store.ReadEntries(from, end - from));
    for (auto row = rows.rbegin(); row != rows.rend(); ++row) {
      BACKOUT_TRY(ledger::Entry entry, ledger::DecodeEntry(row->encoded));
      if (entry.action != "policy.loaded") continue;
      return PolicyVersion{.ledger_entry = entry.sequence,
                           .config_sha256 = entry.change.value("config_sha256", ""),
                           .loaded_by = entry.change.value("loaded_by", "")};
    }
    end = from;
  }
  return core::MakeError(core::ErrorCode::kFailedPrecondition,
                         "no policy.loaded entry in the ledger; restart the server so that it "
                         "records the policy in force");
}

// The roles the procedure gives the steps the policy takes in a person's place: assess (an
// engineering lead), decide (the decider roles) and roll back (the executor roles).
std::vector<core::Role> PolicyRoles(const core::Policy& policy) {
  std::vector<core::Role> roles = {core::Role::kEngineeringLead};
  for (const auto* list : {&policy.decider_roles, &policy.executor_roles}) {
    for (core::Role role : *list) {
      if (std::ranges::find(roles, role) == roles.end()) roles.push_back(role);
    }
  }
  return roles;
}

std::map<std::string, std::vector<std::string>> DependencyMap(const Config& config) {
  std::map<std::string, std::vector<std::string>> depends_on;
  for (const ServiceConfig& service : config.services)
    depends_on[service.name] = service.depends_on;
  return depends_on;
}

// Inputs read before the provider is asked for its plan.
struct PolicyInputs {
  core::Incident incident;
  std::vector<core::Change> changes;
  std::optional<core::Change> suspect;
  std::vector<std::string> skip_reasons;  // why the policy does not act at all
  bool already_acted = false;
  ReleaseTargetAdvisor release_advisor;  // the release manifest's view on the target
};

core::Result<PolicyInputs> ReadInputs(ControlPlane& plane, const SignalRecord& signal,
                                      const DetectionConfig& detection) {
  PolicyInputs inputs;
  BACKOUT_CHECK(plane.store().Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto acted, tx.Get(kAutomaticActionKind, signal.suspected_change_id));
    if (acted) {
      inputs.already_acted = true;
      return {};
    }
    BACKOUT_TRY(auto incident, LoadIncident(tx, signal.incident_id));
    inputs.incident = std::move(incident.value);
    BACKOUT_TRY(inputs.changes, signal_internal::LoadServiceChanges(tx, inputs.incident.service));
    for (const core::Change& change : inputs.changes) {
      if (change.id == signal.suspected_change_id) inputs.suspect = change;
    }

    if (std::ranges::find(detection.automatic_severities, signal.severity) ==
        detection.automatic_severities.end()) {
      inputs.skip_reasons.push_back(
          fmt::format("severity '{}' is not one the service allows automatic rollback at ({})",
                      signal.severity, fmt::join(detection.automatic_severities, ", ")));
    }
    if (!inputs.suspect) {
      // A dependency's change: rolling back another service is a person's decision.
      inputs.skip_reasons.push_back(fmt::format(
          "suspected change {} is not a change of {}; rolling back a dependency needs a person",
          signal.suspected_change_id, inputs.incident.service));
    }
    if (!inputs.incident.rollbacks.empty()) {
      inputs.skip_reasons.push_back(
          fmt::format("incident {} already has a rollback", inputs.incident.id));
    }
    // Never roll back a rollback: a change that deployed the target of an earlier rollback of
    // this service, at or after that rollback, is the rollback itself.
    BACKOUT_TRY(auto incidents, tx.List(store::ListQuery{.kind = kIncidentKind,
                                                         .service = inputs.incident.service}));
    for (const store::Object& object : incidents) {
      if (!inputs.suspect) break;
      BACKOUT_TRY(core::Incident other, core::FromJson<core::Incident>(object.body));
      for (const core::Rollback& rollback : other.rollbacks) {
        if (rollback.target_version == inputs.suspect->version &&
            rollback.requested_at <= inputs.suspect->time) {
          inputs.skip_reasons.push_back(fmt::format(
              "change {} deployed {}, the target of rollback job {} of {}: it is a rollback, "
              "and a rollback is never rolled back automatically",
              inputs.suspect->id, inputs.suspect->version, rollback.job_id, other.id));
        }
      }
    }
    BACKOUT_TRY(Freeze freeze, LoadFreeze(tx, inputs.incident.service));
    if (freeze.frozen) {
      inputs.skip_reasons.push_back(fmt::format("service {} is frozen since a rollback ({})",
                                                inputs.incident.service, freeze.reason));
    }
    return {};
  }));
  if (!inputs.already_acted) {
    BACKOUT_TRY(inputs.release_advisor, ReleaseTargetAdvisor::Load(plane.store(), *plane.settings(),
                                                                   inputs.incident.service));
  }
  return inputs;
}

// Computes the assessment as a lead's `incident assess` does, with the target chosen by rule.
core::Result<core::Assessment> BuildAssessment(const Settings& settings, const PolicyInputs& inputs,
                                               const std::string& assessor, core::Time now) {
  const core::Incident& incident = inputs.incident;
  core::Assessment assessment;
  assessment.service = incident.service;
  assessment.affected_services =
      core::AffectedServices(incident.service, DependencyMap(settings.config));
  for (const std::string& name : assessment.affected_services) {
    const ServiceConfig* service = settings.config.FindService(name);
    assessment.customer_facing =
        assessment.customer_facing || (service != nullptr && service->customer_facing);
  }
  std::optional<std::string_view> suspected;
  if (incident.suspected_change_id) suspected = *incident.suspected_change_id;
  BACKOUT_TRY(core::TargetChoice target, core::ChooseTarget(inputs.changes, suspected));
  inputs.release_advisor.Refine(inputs.changes, suspected, target);
  assessment.target_version = target.version;
  assessment.target_change_id = target.change_id;
  assessment.target_rule = target.rule;
  assessment.data_implications = core::FindDataImplications(inputs.changes, target, suspected);

  auto provider = settings.providers.find(incident.service);
  if (provider == settings.providers.end()) {
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
      assessment.plan = providers::ToJson(*plan);
      if (auto check = inputs.release_advisor.CheckPlanned(plan->target_version)) {
        assessment.preconditions.push_back(*std::move(check));
      }
    } else {
      assessment.plan = {{"error", plan.error().message}};
    }
  }
  assessment.assessed_by = assessor;
  assessment.assessed_at = now;
  BACKOUT_TRY(std::string canonical, core::CanonicalForDigest(assessment));
  assessment.digest = ledger::ToHex(ledger::Sha256(canonical));
  return assessment;
}

// Lists what in the assessment stops an automatic rollback; empty when nothing does.
std::vector<std::string> BlockingReasons(const core::Assessment& assessment) {
  std::vector<std::string> reasons;
  if (assessment.HasBlockingImplication()) {
    reasons.push_back("an irreversible migration lies between the target and the live version");
  }
  for (const core::Precondition& precondition : assessment.preconditions) {
    if (!precondition.satisfied) {
      reasons.push_back(
          fmt::format("precondition '{}' is not met: {}", precondition.name, precondition.detail));
    }
  }
  if (assessment.plan.contains("error")) {
    reasons.push_back(
        fmt::format("the provider gave no plan: {}", assessment.plan["error"].dump()));
  }
  return reasons;
}

core::Result<void> RecordAction(store::Transaction& tx, const std::string& change_id,
                                const std::string& service, nlohmann::json body) {
  store::Object object{
      .kind = kAutomaticActionKind, .id = change_id, .service = service, .body = std::move(body)};
  return tx.Put(object);
}

// Records that the policy did not act, once per change, with the reasons.
core::Result<void> RecordSkip(ControlPlane& plane, const store::JobLease& lease,
                              const SignalRecord& signal, const std::string& kind,
                              const std::vector<std::string>& reasons,
                              const std::optional<core::Assessment>& assessment) {
  const core::Time now = plane.clock().Now();
  const Caller system = SystemCaller();
  const std::string text = fmt::format("{}", fmt::join(reasons, "; "));
  const auto record = [&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto acted, tx.Get(kAutomaticActionKind, signal.suspected_change_id));
    if (acted) return {};
    BACKOUT_TRY(auto stored, LoadIncidentForUpdate(tx, signal.incident_id));
    core::Incident& incident = stored.value;
    if (assessment) {
      auto next = core::Transition(incident.state, core::Action::kAssess,
                                   PolicyRoles(plane.settings()->policy), plane.settings()->policy);
      if (next) {
        incident.state = *next;
        incident.assessment = *assessment;
        AddTimeline(incident, now, system, "assessed",
                    fmt::format("assessed by the automatic policy: target {} ({}); digest {}",
                                assessment->target_version.empty() ? "chosen by the provider"
                                                                   : assessment->target_version,
                                assessment->target_rule, assessment->digest));
        BACKOUT_CHECK(Ledger(tx, system, "incident.assessed", IncidentSubject(incident.id),
                             {{"digest", assessment->digest},
                              {"target_version", assessment->target_version},
                              {"target_rule", assessment->target_rule},
                              {"blocking", assessment->HasBlockingImplication()},
                              {"by", "automatic policy"}}));
      }
    }
    AddTimeline(incident, now, system, kind,
                fmt::format("automatic rollback not taken for change {}: {}",
                            signal.suspected_change_id, text));
    BACKOUT_CHECK(Save(tx, stored));
    // A severity that does not qualify is not recorded as the action for the change, so a later
    // signal at an allowed severity may still act.
    if (kind != "automatic_rollback_not_allowed") {
      BACKOUT_CHECK(RecordAction(tx, signal.suspected_change_id, incident.service,
                                 {{"outcome", "blocked"},
                                  {"incident", incident.id},
                                  {"signal", signal.id},
                                  {"reasons", reasons},
                                  {"time", core::FormatTime(now)}}));
    }
    return Ledger(
        tx, system, fmt::format("signal.{}", kind), IncidentSubject(incident.id),
        {{"change", signal.suspected_change_id}, {"signal", signal.id}, {"reasons", reasons}});
  };
  return WriteForJob(plane.store(), lease,
                     fmt::format("recording {} for signal {}", kind, signal.id), record);
}

// Stores the assessment, the standing approval and the rollback request in one transaction.
core::Result<std::string> RollBack(ControlPlane& plane, const store::JobLease& lease,
                                   const SignalRecord& signal, const core::Assessment& assessment,
                                   const PolicyVersion& version) {
  const auto settings = plane.settings();
  const core::Time now = plane.clock().Now();
  const Caller system = SystemCaller();
  Caller approver = SystemCaller();
  approver.user.name = version.Approver();
  const std::vector<core::Role> roles = PolicyRoles(settings->policy);
  std::string job_id;

  const auto request = [&](store::Transaction& tx) -> core::Result<void> {
    job_id.clear();
    BACKOUT_TRY(auto acted, tx.Get(kAutomaticActionKind, signal.suspected_change_id));
    if (acted) return {};
    BACKOUT_TRY(auto stored, LoadIncidentForUpdate(tx, signal.incident_id));
    core::Incident& incident = stored.value;
    const std::string subject = IncidentSubject(incident.id);

    // Assess.
    BACKOUT_TRY(incident.state,
                core::Transition(incident.state, core::Action::kAssess, roles, settings->policy));
    incident.assessment = assessment;
    AddTimeline(incident, now, system, "assessed",
                fmt::format("assessed by the automatic policy: target {} ({}); digest {}",
                            assessment.target_version.empty() ? "chosen by the provider"
                                                              : assessment.target_version,
                            assessment.target_rule, assessment.digest));
    BACKOUT_CHECK(Ledger(tx, system, "incident.assessed", subject,
                         {{"digest", assessment.digest},
                          {"target_version", assessment.target_version},
                          {"target_rule", assessment.target_rule},
                          {"affected_services", assessment.affected_services},
                          {"blocking", false},
                          {"plan_digest", assessment.plan.value("digest", "")},
                          {"by", "automatic policy"}}));

    // Decide: the standing approval of the policy version in force.
    BACKOUT_TRY(incident.state,
                core::Transition(incident.state, core::Action::kDecideGo, roles, settings->policy));
    core::Decision decision{
        .kind = core::DecisionKind::kGo,
        .decider = version.Approver(),
        .time = now,
        .reason = fmt::format(
            "standing approval: the automatic policy of {} (config sha256 {}, loaded by {}, "
            "ledger entry {}) allows rollback at severity {}; signal {} attributed to {}",
            incident.service, version.config_sha256, version.loaded_by, version.ledger_entry,
            signal.severity, signal.id, signal.suspected_change_id),
        .approved_digest = assessment.digest};
    BACKOUT_CHECK(core::CheckDecision(decision, assessment));
    incident.decisions.push_back(decision);
    AddTimeline(incident, now, approver, "decided", decision.reason);
    nlohmann::json approval = version.ToJson();
    approval["approved_digest"] = assessment.digest;
    approval["reason"] = decision.reason;
    approval["standing_approval"] = true;
    BACKOUT_CHECK(Ledger(tx, approver, "incident.decided", subject, approval));

    // Roll back through the approved plan, as RequestRollback does for a person.
    BACKOUT_TRY(incident.state,
                core::Transition(incident.state, core::Action::kRollback, roles, settings->policy));
    BACKOUT_TRY(providers::Plan plan, providers::PlanFromJson(assessment.plan));
    const ServiceConfig* service = settings->config.FindService(incident.service);
    core::Rollback rollback{.plan_digest = assessment.digest,
                            .provider = service != nullptr ? service->provider.kind : "",
                            .target_version = plan.target_version,
                            .target_rule = assessment.target_rule,
                            .approver = decision.decider,
                            .executor = system.name(),
                            .requested_at = now};
    const std::string idempotency_key =
        fmt::format("{}/rollback/{}", incident.id, incident.rollbacks.size() + 1);
    nlohmann::json payload = {{"incident_id", incident.id},
                              {"service", incident.service},
                              {"executor", system.name()},
                              {"emergency", false},
                              {"plan", providers::ToJson(plan)},
                              {"approved_plan_digest", plan.digest},
                              {"target_version", rollback.target_version},
                              {"idempotency_key", idempotency_key},
                              {"step", kStepPlanCheck}};
    BACKOUT_TRY(int64_t job, tx.EnqueueJob(kRollbackJob, subject, payload, now));
    job_id = std::to_string(job);
    rollback.job_id = job_id;
    incident.rollbacks.push_back(rollback);
    AddTimeline(incident, now, system, "rollback_requested",
                fmt::format("the automatic policy requested a rollback to {} (job {})",
                            rollback.target_version.empty() ? "the provider's target"
                                                            : rollback.target_version,
                            job_id));
    BACKOUT_CHECK(Save(tx, stored));

    Freeze freeze{
        .service = incident.service,
        .frozen = true,
        .reason = fmt::format("automatic rollback of {} requested (job {})", incident.id, job_id),
        .since = now,
        .incident = incident.id,
        .set_by = system.name()};
    BACKOUT_CHECK(SaveFreeze(tx, freeze));
    BACKOUT_CHECK(Ledger(tx, system, "incident.rollback_requested", subject,
                         {{"job_id", job_id},
                          {"emergency", false},
                          {"reason", "automatic policy"},
                          {"approver", rollback.approver},
                          {"plan_digest", rollback.plan_digest},
                          {"target_version", rollback.target_version}}));
    BACKOUT_CHECK(Ledger(tx, system, "service.frozen", fmt::format("service/{}", incident.service),
                         {{"reason", freeze.reason}, {"incident", incident.id}}));
    BACKOUT_CHECK(RecordAction(tx, signal.suspected_change_id, incident.service,
                               {{"outcome", "rollback_requested"},
                                {"incident", incident.id},
                                {"signal", signal.id},
                                {"job_id", job_id},
                                {"approver_of_record", version.ToJson()},
                                {"time", core::FormatTime(now)}}));
    return Ledger(tx, system, "signal.automatic_rollback", subject,
                  {{"change", signal.suspected_change_id},
                   {"signal", signal.id},
                   {"job_id", job_id},
                   {"approver_of_record", version.ToJson()}});
  };
  BACKOUT_CHECK(WriteForJob(
      plane.store(), lease,
      fmt::format("requesting the automatic rollback for signal {}", signal.id), request));
  return job_id;
}

core::Result<void> Apply(ControlPlane& plane, const store::JobLease& lease,
                         const SignalRecord& signal) {
  const auto settings = plane.settings();
  const ServiceConfig* service = settings->config.FindService(signal.service);
  if (service == nullptr || !service->detection.automatic_rollback) return {};

  BACKOUT_TRY(PolicyInputs inputs, ReadInputs(plane, signal, service->detection));
  if (inputs.already_acted) {
    spdlog::info("component=signals event=automatic_rollback_already_decided change={} signal={}",
                 signal.suspected_change_id, signal.id);
    return {};
  }
  if (!inputs.skip_reasons.empty()) {
    const bool severity_only = inputs.skip_reasons.size() == 1 && inputs.suspect &&
                               inputs.skip_reasons[0].starts_with("severity");
    return RecordSkip(
        plane, lease, signal,
        severity_only ? "automatic_rollback_not_allowed" : "automatic_rollback_skipped",
        inputs.skip_reasons, std::nullopt);
  }

  BACKOUT_TRY(PolicyVersion version, FindPolicyVersion(plane.store()));
  BACKOUT_TRY(core::Assessment assessment,
              BuildAssessment(*settings, inputs, version.Approver(), plane.clock().Now()));
  const std::vector<std::string> blocking = BlockingReasons(assessment);
  if (!blocking.empty()) {
    return RecordSkip(plane, lease, signal, "automatic_rollback_blocked", blocking, assessment);
  }
  BACKOUT_TRY(std::string job, RollBack(plane, lease, signal, assessment, version));
  spdlog::info(
      "component=signals event=automatic_rollback_requested incident={} change={} job={} "
      "approver={}",
      signal.incident_id, signal.suspected_change_id, job.empty() ? "-" : job, version.Approver());
  return {};
}

}  // namespace

void ApplyAutomaticPolicy(ControlPlane& plane, const store::JobLease& lease,
                          const SignalRecord& signal) {
  if (auto applied = Apply(plane, lease, signal); !applied) {
    spdlog::error(
        "component=signals event=automatic_policy_failed incident={} change={} signal={} "
        "error=\"{}\"",
        signal.incident_id, signal.suspected_change_id, signal.id, applied.error().message);
  }
}

}  // namespace backout::app
