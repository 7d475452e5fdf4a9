// The rollback job: plan check, execute, wait for readiness, read back, each step committed.
#include <spdlog/spdlog.h>

#include <thread>

#include <fmt/format.h>

#include "app/job_runner.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/release_manifest.h"
#include "app/rollback_target_check.h"
#include "app/signal_internal.h"
#include "app/try.h"
#include "core/state_machine.h"

namespace backout::app {
namespace {

// Outcomes after which the job counts as done rather than failed.
bool JobSucceeded(core::RollbackOutcome outcome) {
  return outcome == core::RollbackOutcome::kRolledBack ||
         outcome == core::RollbackOutcome::kSkippedNoop ||
         outcome == core::RollbackOutcome::kPendingApproval;
}

// Errors that may pass on their own, so the step is worth retrying later.
bool Transient(const core::Error& error) {
  return error.code == core::ErrorCode::kUnavailable || error.code == core::ErrorCode::kTimeout;
}

// One run of one leased rollback job. Keeps the job's payload in memory and commits it with the
// fencing token after every step.
class RollbackJob {
 public:
  RollbackJob(ControlPlane& plane, const JobRunnerOptions& options, const store::JobLease& lease)
      : plane_(plane),
        store_(plane.store()),
        options_(options),
        job_id_(lease.job.id),
        token_(lease.fencing_token),
        attempts_(lease.job.attempts),
        payload_(lease.job.payload),
        incident_id_(payload_.value("incident_id", "")),
        settings_(plane.settings()) {}

  void Run(std::stop_token stop) {
    while (true) {
      const std::string step = payload_.value("step", kStepPlanCheck);
      if (step == kStepDone) return;
      // On shutdown a job that has not acted yet goes back to the queue. One that has acted
      // finishes its short remaining steps, so its outcome is recorded before the exit.
      const bool acted = step == kStepWait || step == kStepReadBack;
      if (stop.stop_requested() && !acted) {
        Release();
        return;
      }
      stopping_ = stop.stop_requested();
      core::Result<void> done = RunStep(step);
      if (!done) {
        spdlog::error("component=jobs job={} incident={} step={} error=\"{}\"", job_id_,
                      incident_id_, step, done.error().message);
        // A lost lease means another worker owns the job now; anything else ends it.
        if (done.error().code != core::ErrorCode::kConflict) {
          (void)Finish(core::RollbackOutcome::kFailed,
                       fmt::format("step {} failed: {}", step, done.error().message));
        }
        return;
      }
    }
  }

 private:
  core::Result<void> RunStep(const std::string& step) {
    if (step == kStepPlanCheck) return PlanCheck();
    if (step == kStepExecute) return Execute();
    if (step == kStepExecuting) return ResumeExecution();
    if (step == kStepWait) return WaitForReadiness();
    if (step == kStepReadBack) return ReadBack();
    return core::MakeError(core::ErrorCode::kCorruption, "job {} is at unknown step {}", job_id_,
                           step);
  }

  const providers::Provider* Provider() const {
    auto found = settings_->providers.find(payload_.value("service", ""));
    return found == settings_->providers.end() ? nullptr : found->second.get();
  }

  core::Result<providers::Plan> CurrentPlan() const {
    return providers::PlanFromJson(payload_.at("plan"));
  }

  // Commits the payload and whatever `extra` writes, under the lease's fencing token.
  core::Result<void> Commit(const std::function<core::Result<void>(store::Transaction&)>& extra) {
    return store_.Write([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_CHECK(tx.CheckFence(job_id_, token_));
      BACKOUT_CHECK(tx.SaveJobProgress(job_id_, token_, payload_));
      return extra ? extra(tx) : core::Result<void>();
    });
  }

  core::Result<void> LedgerStep(std::string_view action, nlohmann::json change) {
    change["job_id"] = std::to_string(job_id_);
    return Commit([&](store::Transaction& tx) {
      return Ledger(tx, SystemCaller(), action, IncidentSubject(incident_id_), change);
    });
  }

  core::Result<void> PlanCheck() {
    const providers::Provider* provider = Provider();
    if (provider == nullptr) {
      return Finish(
          core::RollbackOutcome::kFailed,
          fmt::format("no provider is configured for service {}", payload_.value("service", "")));
    }

    std::optional<providers::Plan> approved;
    if (!payload_["plan"].is_null()) {
      BACKOUT_TRY(approved, CurrentPlan());
    }
    const std::string target =
        approved ? approved->target_version : payload_.value("target_version", "");
    auto fresh = provider->MakePlan(target);
    if (!fresh) {
      if (Transient(fresh.error())) return Retry(fresh.error());
      const bool no_target = fresh.error().code == core::ErrorCode::kNotFound ||
                             fresh.error().code == core::ErrorCode::kInvalidArgument;
      return Finish(
          no_target ? core::RollbackOutcome::kNoRollbackTarget : core::RollbackOutcome::kFailed,
          fmt::format("planning the rollback to {} failed: {}",
                      target.empty() ? "the provider's target" : target, fresh.error().message));
    }
    // With no target given, as in a break-glass rollback without an assessed target, the
    // provider chose one just now, and no assessment checked it against the suspected change.
    if (target.empty()) {
      auto refusal = CheckProviderTarget(*fresh);
      if (!refusal) {
        if (Transient(refusal.error())) return Retry(refusal.error());
        return Finish(core::RollbackOutcome::kFailed,
                      fmt::format("the provider's target {} could not be checked against the "
                                  "suspected change: {}",
                                  fresh->target_version, refusal.error().message));
      }
      if (!refusal->empty()) return Finish(core::RollbackOutcome::kPreconditionFailed, *refusal);
    }
    if (approved && fresh->digest != approved->digest) {
      return Finish(core::RollbackOutcome::kPreconditionFailed,
                    fmt::format("the live state moved since the decision: a fresh plan has digest "
                                "{} but the approved plan has {}; assess and decide again",
                                fresh->digest, approved->digest));
    }

    auto preconditions = provider->Preconditions();
    if (!preconditions) {
      if (Transient(preconditions.error())) return Retry(preconditions.error());
      return Finish(core::RollbackOutcome::kPreconditionFailed,
                    fmt::format("the provider's preconditions could not be checked: {}",
                                preconditions.error().message));
    }
    std::vector<std::string> unmet;
    for (const core::Precondition& check : *preconditions) {
      if (!check.satisfied) unmet.push_back(fmt::format("{} ({})", check.name, check.detail));
    }
    if (!unmet.empty()) {
      return Finish(core::RollbackOutcome::kPreconditionFailed,
                    fmt::format("preconditions not met: {}", fmt::join(unmet, "; ")));
    }

    payload_["plan"] = providers::ToJson(*fresh);
    if (fresh->noop) {
      providers::ExecutionResult noop;
      noop.outcome = core::RollbackOutcome::kSkippedNoop;
      noop.message = fmt::format("{} is already live; nothing to do", fresh->target_version);
      noop.target_version = fresh->target_version;
      noop.live_version = fresh->target_version;
      noop.started_at = plane_.clock().Now();
      noop.finished_at = noop.started_at;
      payload_["result"] = providers::ToJson(noop);
      payload_["step"] = kStepReadBack;
    } else {
      payload_["step"] = kStepExecute;
    }
    return LedgerStep("rollback.plan_checked",
                      {{"plan_digest", fresh->digest}, {"noop", fresh->noop}});
  }

  // Returns why the target of `plan`, which the provider chose, cannot be used because it keeps
  // the suspected change's code live, or "" when it can be used.
  core::Result<std::string> CheckProviderTarget(const providers::Plan& plan) {
    core::Incident incident;
    std::vector<core::Change> changes;
    BACKOUT_CHECK(store_.Read([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id_));
      incident = std::move(stored.value);
      BACKOUT_TRY(changes, signal_internal::LoadServiceChanges(tx, incident.service));
      return {};
    }));
    constexpr std::string_view kAdvice =
        "a break-glass rollback runs the assessed target once there is one";
    auto allowed =
        CheckTargetBeforeSuspect(incident, changes, plan.target_version,
                                 "chosen by the provider's own rule when the job ran", false);
    if (!allowed) return fmt::format("{}; {}", allowed.error().message, kAdvice);

    // The release manifest's checks, which the assessment applies to a target it plans.
    BACKOUT_TRY(auto advisor,
                ReleaseTargetAdvisor::Load(store_, *plane_.settings(), incident.service));
    std::optional<std::string_view> suspected;
    if (incident.suspected_change_id) suspected = *incident.suspected_change_id;
    const std::string unusable = advisor.WhyNotTarget(changes, suspected, plan.target_version);
    if (unusable.empty()) return std::string();
    return fmt::format("the provider's own rule chose release {} when the job ran, but {}; {}",
                       plan.target_version, unusable, kAdvice);
  }

  providers::ExecutionContext Context() {
    providers::ExecutionContext context;
    context.incident_id = incident_id_;
    context.executor = payload_.value("executor", "");
    // Jobs enqueued before the approver was carried in the payload have none.
    context.approver = payload_.value("approver", "");
    context.on_started = [this](const providers::StartedAction& started) -> core::Result<void> {
      payload_["started"] = providers::ToJson(started);
      return Commit(nullptr);
    };
    return context;
  }

  core::Result<void> Execute() {
    const providers::Provider* provider = Provider();
    if (provider == nullptr) {
      return Finish(core::RollbackOutcome::kFailed, "the service's provider is gone");
    }
    BACKOUT_TRY(providers::Plan plan, CurrentPlan());

    // The intent is committed before the provider is called: a job found at this step after a
    // restart was mid-action and is resumed, never run again.
    payload_["step"] = kStepExecuting;
    payload_["intent_at"] = core::FormatTime(plane_.clock().Now());
    BACKOUT_CHECK(LedgerStep("rollback.executing", {{"plan_digest", plan.digest},
                                                    {"executor", payload_.value("executor", "")},
                                                    {"target_version", plan.target_version}}));

    core::Result<providers::ExecutionResult> result =
        provider->Execute(plan, payload_.value("idempotency_key", ""), Context());
    return RecordExecution(plan, std::move(result), "rollback.executed");
  }

  core::Result<void> ResumeExecution() {
    const providers::Provider* provider = Provider();
    if (provider == nullptr) {
      return Finish(core::RollbackOutcome::kInterrupted,
                    "the job stopped mid-action and the service's provider is gone");
    }
    BACKOUT_TRY(providers::Plan plan, CurrentPlan());
    providers::ResumeRequest request{.plan = plan,
                                     .idempotency_key = payload_.value("idempotency_key", "")};
    if (payload_.contains("started") && !payload_["started"].is_null()) {
      BACKOUT_TRY(request.started, providers::StartedActionFromJson(payload_["started"]));
    }
    spdlog::warn("component=jobs job={} incident={} event=resuming started_recorded={}", job_id_,
                 incident_id_, request.started.has_value());

    core::Result<providers::ExecutionResult> result = provider->Resume(request, Context());
    return RecordExecution(plan, std::move(result), "rollback.resumed");
  }

  core::Result<void> RecordExecution(const providers::Plan& plan,
                                     core::Result<providers::ExecutionResult> result,
                                     std::string_view action) {
    if (!result) {
      providers::ExecutionResult failed;
      failed.outcome = core::RollbackOutcome::kFailed;
      failed.message = result.error().message;
      failed.target_version = plan.target_version;
      failed.started_at = plane_.clock().Now();
      failed.finished_at = failed.started_at;
      result = std::move(failed);
    }
    payload_["result"] = providers::ToJson(*result);
    payload_["step"] = kStepWait;
    return LedgerStep(action, {{"outcome", core::RollbackOutcomeName(result->outcome)},
                               {"message", result->message},
                               {"live_version", result->live_version},
                               {"transcript_entries", result->transcript.entries.size()}});
  }

  core::Result<providers::ExecutionResult> StoredResult() const {
    return providers::ExecutionResultFromJson(payload_.at("result"));
  }

  core::Result<void> WaitForReadiness() {
    BACKOUT_TRY(providers::ExecutionResult result, StoredResult());
    const providers::Provider* provider = Provider();
    nlohmann::json readiness = {{"checked", false}};
    if (provider != nullptr && result.outcome == core::RollbackOutcome::kRolledBack) {
      const int attempts = stopping_ ? 1 : options_.readiness_attempts;
      for (int attempt = 1; attempt <= attempts; ++attempt) {
        auto ready = provider->CheckReadiness();
        if (!ready) {
          readiness = {{"checked", false}, {"message", ready.error().message}};
          if (ready.error().code == core::ErrorCode::kFailedPrecondition) break;
        } else {
          readiness = {{"checked", true},
                       {"ready", ready->ready},
                       {"failed", ready->failed},
                       {"message", ready->message},
                       {"attempts", attempt}};
          if (ready->ready || ready->failed) break;
        }
        if (attempt < attempts) {
          std::this_thread::sleep_for(options_.readiness_interval);
        }
      }
    }
    payload_["readiness"] = readiness;
    payload_["step"] = kStepReadBack;
    return Commit(nullptr);
  }

  core::Result<void> ReadBack() {
    BACKOUT_TRY(providers::ExecutionResult result, StoredResult());
    nlohmann::json read_back = nullptr;
    const providers::Provider* provider = Provider();
    const bool acted = result.outcome == core::RollbackOutcome::kRolledBack ||
                       result.outcome == core::RollbackOutcome::kSkippedNoop ||
                       result.outcome == core::RollbackOutcome::kPartial ||
                       result.outcome == core::RollbackOutcome::kRevertedByController;
    if (provider != nullptr && acted) {
      auto record = provider->ReadBack(result);
      read_back =
          record ? providers::ToJson(*record) : nlohmann::json{{"error", record.error().message}};
      // The tool's own record outranks the execution's account: a controller that undid the
      // rollback after Execute returned (a GitOps revert of the revert) leaves the old version
      // live, so the rollback did not hold.
      if (record && result.outcome == core::RollbackOutcome::kRolledBack) {
        auto undo = record->details.find("reverted_by_controller");
        if (undo != record->details.end() && undo->is_object()) {
          result.outcome = core::RollbackOutcome::kRevertedByController;
          result.message = fmt::format(
              "the tool's record shows the rollback undone by {} ({}); {} is live again",
              undo->value("author", "an unknown author"), undo->value("commit", "no commit id"),
              undo->value("version", record->version));
        }
      }
    }
    return Finish(result.outcome, result.message, read_back, &result);
  }

  // Gives the job up for now: transient trouble is retried later, up to max_attempts.
  core::Result<void> Retry(const core::Error& error) {
    if (attempts_ >= options_.max_attempts) {
      return Finish(core::RollbackOutcome::kFailed,
                    fmt::format("gave up after {} attempts: {}", attempts_, error.message));
    }
    const core::Time retry_at = plane_.clock().Now() + options_.retry_after;
    spdlog::warn("component=jobs job={} incident={} event=retry_later attempt={} error=\"{}\"",
                 job_id_, incident_id_, attempts_, error.message);
    BACKOUT_CHECK(store_.Write([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_CHECK(tx.SaveJobProgress(job_id_, token_, payload_));
      return tx.FailJob(job_id_, token_, error.message, retry_at);
    }));
    payload_["step"] = kStepDone;  // this run ends; the queue hands the job out again
    return {};
  }

  void Release() {
    auto released = store_.ReleaseJob(job_id_, token_);
    spdlog::info("component=jobs job={} incident={} event=released_on_shutdown ok={}", job_id_,
                 incident_id_, released.has_value());
  }

  // Records the outcome on the incident, moves its state and ends the job, in one transaction.
  core::Result<void> Finish(core::RollbackOutcome outcome, std::string message,
                            nlohmann::json read_back = nullptr,
                            const providers::ExecutionResult* result = nullptr) {
    const core::Time now = plane_.clock().Now();
    const std::string job = std::to_string(job_id_);
    payload_["step"] = kStepDone;
    payload_["outcome"] = core::RollbackOutcomeName(outcome);
    payload_["message"] = message;
    const Caller system = SystemCaller();

    auto written = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_CHECK(tx.CheckFence(job_id_, token_));
      BACKOUT_CHECK(tx.SaveJobProgress(job_id_, token_, payload_));
      BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id_));
      core::Incident& incident = stored.value;
      for (core::Rollback& rollback : incident.rollbacks) {
        if (rollback.job_id != job) continue;
        rollback.outcome = outcome;
        rollback.message = message;
        rollback.finished_at = now;
        rollback.read_back = read_back;
        rollback.transcript_ref = fmt::format("job/{}", job);
        if (result != nullptr) {
          rollback.started_at = result->started_at;
          if (!result->target_version.empty()) rollback.target_version = result->target_version;
        }
      }
      auto next = core::Transition(incident.state, core::Action::kRecordOutcome, system.user.roles,
                                   settings_->policy, core::ActionDetail{.outcome = outcome});
      if (next) {
        incident.state = *next;
      } else {
        spdlog::error("component=jobs job={} incident={} event=state_not_moved error=\"{}\"",
                      job_id_, incident_id_, next.error().message);
      }
      for (const core::Rollback& rollback : incident.rollbacks) {
        if (rollback.job_id != job) continue;
        BACKOUT_CHECK(NoteRollbackFinished(tx, *settings_, system, incident, rollback,
                                           result != nullptr ? result->from_version : "", now));
      }
      AddTimeline(incident, now, system, "rollback_finished",
                  fmt::format("rollback job {} ended {}: {}", job,
                              core::RollbackOutcomeName(outcome), message));
      BACKOUT_CHECK(Save(tx, stored));
      BACKOUT_CHECK(Ledger(tx, system, "incident.rollback_finished", IncidentSubject(incident_id_),
                           {{"job_id", job},
                            {"outcome", core::RollbackOutcomeName(outcome)},
                            {"message", message},
                            {"read_back", read_back}}));
      BACKOUT_CHECK(EnqueueNotification(
          tx, settings_->config, now,
          NotificationEvent{
              .event = JobSucceeded(outcome) ? "rollback.finished" : "rollback.failed",
              .subject = IncidentSubject(incident_id_),
              .service = incident.service,
              .summary = fmt::format("rollback job {} of {} ended {}: {}", job, incident_id_,
                                     core::RollbackOutcomeName(outcome), message),
              .data = {{"incident", incident_id_},
                       {"job_id", job},
                       {"outcome", core::RollbackOutcomeName(outcome)},
                       {"message", message}}}));
      if (JobSucceeded(outcome)) return tx.CompleteJob(job_id_, token_);
      return tx.FailJob(job_id_, token_, message, std::nullopt);
    });
    if (written) {
      spdlog::info("component=jobs job={} incident={} event=rollback_finished outcome={}", job_id_,
                   incident_id_, core::RollbackOutcomeName(outcome));
    }
    return written;
  }

  ControlPlane& plane_;
  store::Store& store_;
  const JobRunnerOptions& options_;
  int64_t job_id_;
  int64_t token_;
  int attempts_;
  nlohmann::json payload_;
  std::string incident_id_;
  std::shared_ptr<const Settings> settings_;
  bool stopping_ = false;  // shutdown requested: poll readiness once instead of waiting
};

}  // namespace

void JobRunner::RunRollback(const store::JobLease& lease, std::stop_token stop) {
  RollbackJob job(plane_, options_, lease);
  job.Run(stop);
}

}  // namespace backout::app
