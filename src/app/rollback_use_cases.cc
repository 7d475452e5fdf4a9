// Rollback requests, confirmations of interrupted rollbacks, validation requests and job status.
#include <spdlog/spdlog.h>

#include <charconv>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/try.h"
#include "core/state_machine.h"

namespace backout::app {
namespace {

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\n") == std::string_view::npos;
}

core::Result<int64_t> ParseJobId(std::string_view id) {
  int64_t number = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), number);
  if (error != std::errc() || end != id.data() + id.size() || number <= 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "job {} not found; job ids are numbers", id);
  }
  return number;
}

// The plan a non-emergency rollback runs: the one in the assessment that the latest go decision
// approved by digest.
core::Result<providers::Plan> ApprovedPlan(const core::Incident& incident) {
  const core::Decision* decision = incident.LatestDecision();
  if (decision == nullptr || decision->kind != core::DecisionKind::kGo || !incident.assessment) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "incident {} has no go decision; a lead must approve the plan with "
                           "`backout incident decide {} --go`",
                           incident.id, incident.id);
  }
  if (decision->approved_digest != incident.assessment->digest) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the go decision approved assessment {} but the current assessment is "
                           "{}; decide again",
                           decision->approved_digest, incident.assessment->digest);
  }
  if (incident.assessment->plan.contains("error")) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the assessment of {} holds no plan ({}); resolve it and assess again",
                           incident.id, incident.assessment->plan["error"].dump());
  }
  auto plan = providers::PlanFromJson(incident.assessment->plan);
  if (!plan) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the assessment of {} holds no usable plan: {}", incident.id,
                           plan.error().message);
  }
  return *plan;
}

}  // namespace

core::Result<AcceptedJob> ControlPlane::RequestRollback(const Caller& caller, std::string_view id,
                                                        const RollbackRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  AcceptedJob accepted;
  BACKOUT_CHECK(Write(
      caller, "incident.rollback", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        const core::Action action =
            request.emergency ? core::Action::kRollbackEmergency : core::Action::kRollback;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, action, caller.user.roles, current->policy));
        if (request.emergency) {
          BACKOUT_CHECK(core::CanExecuteEmergency(caller.user, incident.service, incident,
                                                  request.reason, current->policy));
        } else {
          BACKOUT_CHECK(core::CanExecute(caller.user, incident.service, incident, current->policy));
        }

        const ServiceConfig* service = current->config.FindService(incident.service);
        core::Rollback rollback{.provider = service != nullptr ? service->provider.kind : "",
                                .executor = caller.name(),
                                .emergency = request.emergency,
                                .emergency_reason = request.emergency ? request.reason : "",
                                .requested_at = now};
        nlohmann::json plan_json = nullptr;
        std::string approved_digest;
        if (!request.emergency) {
          BACKOUT_TRY(providers::Plan plan, ApprovedPlan(incident));
          plan_json = providers::ToJson(plan);
          approved_digest = plan.digest;
          rollback.plan_digest = incident.assessment->digest;
          rollback.target_version = plan.target_version;
          rollback.target_rule = incident.assessment->target_rule;
          rollback.approver = incident.LatestDecision()->decider;
        } else if (incident.assessment) {
          // Break-glass runs the target of the latest assessment, planned afresh by the job.
          rollback.target_version = incident.assessment->target_version;
          rollback.target_rule = incident.assessment->target_rule;
          rollback.plan_digest = incident.assessment->digest;
        } else {
          rollback.target_rule = "no assessment: the provider's own rule";
        }

        const std::string idempotency_key =
            fmt::format("{}/rollback/{}", incident.id, incident.rollbacks.size() + 1);
        nlohmann::json payload = {{"incident_id", incident.id},
                                  {"service", incident.service},
                                  {"executor", caller.name()},
                                  {"approver", rollback.approver},
                                  {"emergency", request.emergency},
                                  {"plan", plan_json},
                                  {"approved_plan_digest", approved_digest},
                                  {"target_version", rollback.target_version},
                                  {"idempotency_key", idempotency_key},
                                  {"step", kStepPlanCheck}};
        BACKOUT_TRY(int64_t job_id, tx.EnqueueJob(kRollbackJob, subject, payload, now));
        rollback.job_id = std::to_string(job_id);

        incident.rollbacks.push_back(rollback);
        incident.emergency = incident.emergency || request.emergency;
        incident.state = next;
        AddTimeline(incident, now, caller, "rollback_requested",
                    fmt::format("{} requested {}rollback to {} (job {})", caller.name(),
                                request.emergency ? "an emergency " : "a ",
                                rollback.target_version.empty() ? "the provider's target"
                                                                : rollback.target_version,
                                rollback.job_id));
        BACKOUT_CHECK(Save(tx, stored));

        Freeze freeze{.service = incident.service,
                      .frozen = true,
                      .reason = fmt::format("rollback of {} requested (job {})", incident.id,
                                            rollback.job_id),
                      .since = now,
                      .incident = incident.id,
                      .set_by = caller.name()};
        BACKOUT_CHECK(SaveFreeze(tx, freeze));

        BACKOUT_CHECK(Ledger(tx, caller, "incident.rollback_requested", subject,
                             {{"job_id", rollback.job_id},
                              {"emergency", request.emergency},
                              {"reason", request.reason},
                              {"approver", rollback.approver},
                              {"plan_digest", rollback.plan_digest},
                              {"target_version", rollback.target_version}}));
        BACKOUT_CHECK(Ledger(tx, caller, "service.frozen",
                             fmt::format("service/{}", incident.service),
                             {{"reason", freeze.reason}, {"incident", incident.id}}));
        accepted = AcceptedJob{.job_id = rollback.job_id, .incident = incident};
        const nlohmann::json event_data = {{"incident", incident.id},
                                           {"job_id", rollback.job_id},
                                           {"executor", caller.name()},
                                           {"emergency", request.emergency},
                                           {"target_version", rollback.target_version}};
        BACKOUT_CHECK(EnqueueNotification(
            tx, current->config, now,
            NotificationEvent{
                .event = "rollback.started",
                .subject = subject,
                .service = incident.service,
                .summary = fmt::format("{} started a rollback of {} for {} (job {})", caller.name(),
                                       incident.service, incident.id, rollback.job_id),
                .data = event_data}));
        if (request.emergency) {
          BACKOUT_CHECK(EnqueueNotification(
              tx, current->config, now,
              NotificationEvent{.event = "break_glass.used",
                                .subject = subject,
                                .service = incident.service,
                                .summary = fmt::format(
                                    "{} used break-glass to roll back {} for {} without a "
                                    "decision: {}",
                                    caller.name(), incident.service, incident.id, request.reason),
                                .data = event_data}));
        }
        return {};
      }));
  spdlog::info("component=app event=rollback_requested incident={} job={} by={} emergency={}", id,
               accepted.job_id, caller.name(), request.emergency);
  return accepted;
}

core::Result<core::Incident> ControlPlane::Confirm(const Caller& caller, std::string_view id,
                                                   const ConfirmRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  core::Incident updated;
  BACKOUT_CHECK(
      Write(caller, "incident.confirm", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(
            core::IncidentState next,
            core::Transition(incident.state, core::Action::kConfirm, caller.user.roles,
                             current->policy, core::ActionDetail{.happened = request.happened}));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        if (IsBlank(request.reason)) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "a confirmation needs a reason; pass --reason TEXT");
        }
        if (incident.rollbacks.empty()) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "incident {} has no rollback", id);
        }
        core::Rollback& rollback = incident.rollbacks.back();
        const bool settled_by_person = rollback.outcome == core::RollbackOutcome::kInterrupted ||
                                       rollback.outcome == core::RollbackOutcome::kPendingApproval;
        if (!settled_by_person) {
          return core::MakeError(
              core::ErrorCode::kFailedPrecondition,
              "rollback job {} of {} is {}; only an interrupted or pending_approval rollback is "
              "confirmed by hand",
              rollback.job_id, id,
              rollback.outcome ? std::string(core::RollbackOutcomeName(*rollback.outcome))
                               : std::string("still running"));
        }
        rollback.confirmation = core::Confirmation{.happened = request.happened,
                                                   .confirmed_by = caller.name(),
                                                   .confirmed_at = now,
                                                   .reason = request.reason};
        if (!rollback.finished_at) rollback.finished_at = now;
        incident.state = next;
        AddTimeline(
            incident, now, caller, "rollback_confirmed",
            fmt::format("{} confirmed that rollback job {} {}: {}", caller.name(), rollback.job_id,
                        request.happened ? "happened" : "did not happen", request.reason));
        BACKOUT_CHECK(Save(tx, stored));
        updated = incident;
        BACKOUT_CHECK(NoteRollbackFinished(tx, *current, caller, incident, rollback, "", now));
        return Ledger(tx, caller, "incident.rollback_confirmed", subject,
                      {{"job_id", rollback.job_id},
                       {"happened", request.happened},
                       {"reason", request.reason}});
      }));
  return updated;
}

core::Result<AcceptedJob> ControlPlane::RequestValidation(const Caller& caller,
                                                          std::string_view id) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  AcceptedJob accepted;
  BACKOUT_CHECK(Write(
      caller, "incident.validate", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, core::Action::kValidate, caller.user.roles,
                                     current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        const core::Validation* running = incident.LatestValidation();
        bool still_running = running != nullptr && !running->finding;
        if (still_running) {
          // A validation job that failed for good recorded no finding, so it no longer blocks.
          BACKOUT_TRY(int64_t running_job, ParseJobId(running->job_id));
          BACKOUT_TRY(auto job, tx.GetJob(running_job));
          still_running = job && job->state != store::JobState::kFailed;
        }
        if (still_running) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "validation job {} of {} is still running; wait for its finding",
                                 running->job_id, id);
        }
        const core::Rollback* rollback = incident.LatestRollback();
        const std::string rollback_job = rollback ? rollback->job_id : "";

        nlohmann::json payload = {{"incident_id", incident.id},
                                  {"service", incident.service},
                                  {"rollback_job_id", rollback_job},
                                  {"requested_by", caller.name()}};
        BACKOUT_TRY(int64_t job_id, tx.EnqueueJob(kValidationJob, subject, payload, now));
        core::Validation validation{.job_id = std::to_string(job_id),
                                    .rollback_job_id = rollback_job,
                                    .requested_by = caller.name(),
                                    .started_at = now};
        incident.validations.push_back(validation);
        incident.state = next;
        AddTimeline(
            incident, now, caller, "validation_requested",
            fmt::format("{} requested validation (job {})", caller.name(), validation.job_id));
        BACKOUT_CHECK(Save(tx, stored));
        accepted = AcceptedJob{.job_id = validation.job_id, .incident = incident};
        return Ledger(tx, caller, "incident.validation_requested", subject,
                      {{"job_id", validation.job_id}, {"rollback_job_id", rollback_job}});
      }));
  return accepted;
}

core::Result<JobView> ControlPlane::GetJob(const Caller& caller, std::string_view id) {
  const auto current = settings();
  JobView view;
  BACKOUT_CHECK(Read(caller, "job.show", fmt::format("job/{}", id),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       BACKOUT_TRY(int64_t number, ParseJobId(id));
                       BACKOUT_TRY(auto job, tx.GetJob(number));
                       if (!job)
                         return core::MakeError(core::ErrorCode::kNotFound, "job {} not found", id);
                       view = JobView{.id = std::to_string(job->id),
                                      .kind = job->kind,
                                      .state = std::string(store::JobStateName(job->state)),
                                      .attempts = job->attempts,
                                      .subject = job->subject,
                                      .outcome = job->payload.value("outcome", ""),
                                      .message = job->payload.value("message", job->last_error),
                                      .progress = {{"step", job->payload.value("step", "")}}};
                       return {};
                     }));
  return view;
}

}  // namespace backout::app
