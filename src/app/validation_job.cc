// The validation job: the provider's readiness and the service's checks, then the finding.
#include <spdlog/spdlog.h>

#include <filesystem>

#include <fmt/format.h>

#include "app/check_runner.h"
#include "app/job_runner.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/try.h"
#include "core/policy.h"
#include "core/state_machine.h"
#include "http/client.h"
#include "providers/command/process.h"

namespace backout::app {
namespace {

core::Observation ReadinessObservation(const providers::Provider* provider,
                                       const core::Clock& clock) {
  core::Observation observation{.check = "provider readiness",
                                .kind = std::string(core::kReadinessCheckKind)};
  if (provider == nullptr) {
    observation.result = core::ObservationResult::kUnknown;
    observation.detail = "no provider is configured for the service";
  } else if (auto ready = provider->CheckReadiness(); !ready) {
    // A check that cannot be evaluated counts as failed, never as passed.
    observation.result = core::ObservationResult::kUnknown;
    observation.detail = ready.error().message;
  } else {
    observation.result =
        ready->ready ? core::ObservationResult::kPassed : core::ObservationResult::kFailed;
    observation.detail = ready->message;
  }
  observation.observed_at = clock.Now();
  return observation;
}

core::Result<std::vector<std::string>> CheckEnvironment(const CheckConfig& check,
                                                        const std::string& incident_id,
                                                        const std::string& service) {
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                  "BACKOUT_INCIDENT_ID=" + incident_id,
                                  "BACKOUT_SERVICE=" + service, "BACKOUT_CHECK=" + check.name};
  if (auto variables = check.settings.find("env"); variables != check.settings.end()) {
    for (const auto& [name, reference] : variables->items()) {
      BACKOUT_TRY(SecretRef ref, SecretRef::Parse(reference.get<std::string>()));
      BACKOUT_TRY(std::string value, ref.Resolve());
      env.push_back(name + "=" + value);
    }
  }
  return env;
}

// Runs a `command` check: exit status 0 passes, anything else fails, and a check that cannot
// run is unknown. Output tails go into the detail; secrets from `env` are never echoed there
// unless the command itself prints them.
core::Observation CommandObservation(const CheckConfig& check, const std::string& incident_id,
                                     const std::string& service,
                                     const std::filesystem::path& output_dir,
                                     const core::Clock& clock) {
  core::Observation observation{.check = check.name, .kind = "command"};
  auto finish = [&](core::ObservationResult result, std::string detail) {
    observation.result = result;
    observation.detail = std::move(detail);
    observation.observed_at = clock.Now();
    return observation;
  };

  providers::command::ProcessSpec spec;
  if (!check.settings.contains("run") || !check.settings["run"].is_array()) {
    return finish(core::ObservationResult::kUnknown, "the check has no `run` command");
  }
  for (const auto& argument : check.settings["run"])
    spec.argv.push_back(argument.get<std::string>());
  auto env = CheckEnvironment(check, incident_id, service);
  if (!env) return finish(core::ObservationResult::kUnknown, env.error().message);
  spec.env = *std::move(env);
  spec.output_dir = output_dir;

  providers::command::ProcessLimits limits;
  if (check.settings.contains("timeout")) {
    auto timeout = core::ParseDuration(check.settings["timeout"].get<std::string>());
    if (timeout) limits.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout);
  }
  auto run = providers::command::RunProcess(spec, limits, {},
                                            [](const auto&) { return core::Result<void>(); });
  if (!run) return finish(core::ObservationResult::kUnknown, run.error().message);

  std::string detail = run->timed_out ? fmt::format("timed out after {} ms", limits.timeout.count())
                                      : run->exit.Describe();
  if (!run->stdout_output.tail.empty()) detail += "; stdout: " + run->stdout_output.tail;
  if (!run->stderr_output.tail.empty()) detail += "; stderr: " + run->stderr_output.tail;
  return finish(run->exit.Succeeded() && !run->timed_out ? core::ObservationResult::kPassed
                                                         : core::ObservationResult::kFailed,
                detail);
}

// When the rollback being validated ended: observations must be newer than this.
core::Time RollbackEnd(const core::Incident& incident, const std::string& rollback_job_id) {
  for (const core::Rollback& rollback : incident.rollbacks) {
    if (rollback.job_id != rollback_job_id) continue;
    if (rollback.confirmation) return rollback.confirmation->confirmed_at;
    if (rollback.finished_at) return *rollback.finished_at;
    return rollback.requested_at;
  }
  return incident.opened_at;
}

// The times the checks measure against: when the rollback completed and when the suspected change
// was deployed. Read before the checks run, outside the transaction that records the finding.
struct ValidationTimes {
  core::Time rollback_finished_at{};
  core::Time change_at{};
};

core::Result<ValidationTimes> ReadValidationTimes(store::Store& store,
                                                  const std::string& incident_id,
                                                  const std::string& rollback_job_id) {
  ValidationTimes times;
  auto read = store.Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id));
    const core::Incident& incident = stored.value;
    times.rollback_finished_at = RollbackEnd(incident, rollback_job_id);
    times.change_at = times.rollback_finished_at;
    for (const core::Rollback& rollback : incident.rollbacks) {
      if (rollback.job_id == rollback_job_id) times.change_at = rollback.requested_at;
    }
    if (incident.suspected_change_id) {
      BACKOUT_TRY(auto change,
                  Load<core::Change>(tx, kChangeKind, *incident.suspected_change_id, "change"));
      times.change_at = change.value.time;
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return times;
}

// The HTTP client of `http` and `prometheus` checks: one attempt per request, because the checks
// repeat on their own schedule.
std::unique_ptr<http::Client> MakeCheckClient(const core::Clock& clock) {
  http::ClientOptions options;
  options.name = "checks";
  options.retry.max_attempts = 1;
  options.now = [&clock] { return clock.Now(); };
  auto client = http::Client::Create(std::move(options));
  if (!client) {
    spdlog::error("component=checks event=http_client_not_created error=\"{}\"",
                  client.error().message);
    return nullptr;
  }
  return std::move(*client);
}

}  // namespace

void JobRunner::RunValidation(const store::JobLease& lease, std::stop_token stop) {
  const auto settings = plane_.settings();
  const core::Clock& clock = plane_.clock();
  const int64_t job_id = lease.job.id;
  const std::string job = std::to_string(job_id);
  const std::string incident_id = lease.job.payload.value("incident_id", "");
  const std::string service_name = lease.job.payload.value("service", "");
  const std::string rollback_job_id = lease.job.payload.value("rollback_job_id", "");

  // Checks only read, so a validation cut short is simply run again by the next lease.
  std::vector<core::Observation> observations;
  CheckRun module_run;
  bool any_check = false;
  {
    auto provider = settings->providers.find(service_name);
    observations.push_back(ReadinessObservation(
        provider == settings->providers.end() ? nullptr : provider->second.get(), clock));
    const ServiceConfig* service = settings->config.FindService(service_name);
    const std::filesystem::path output_dir = settings->config.data_dir / "run";
    std::error_code ignored;
    std::filesystem::create_directories(output_dir, ignored);

    auto times = ReadValidationTimes(plane_.store(), incident_id, rollback_job_id);
    if (!times) {
      spdlog::error(
          "component=jobs job={} incident={} event=validation_times_not_read "
          "error=\"{}\"",
          job_id, incident_id, times.error().message);
    }
    std::unique_ptr<http::Client> client = MakeCheckClient(clock);
    StoreConfirmations confirmations(plane_.store());
    checks::CheckContext context{
        .incident_id = incident_id,
        .service = service_name,
        .rollback_finished_at = times ? times->rollback_finished_at : core::Time{},
        .change_at = times ? times->change_at : clock.Now(),
        .clock = &clock,
        .http = client.get(),
        .confirmations = &confirmations,
        .stop_requested = [&stop] { return stop.stop_requested(); }};

    for (const CheckConfig& check : service ? service->checks : std::vector<CheckConfig>{}) {
      any_check = true;
      if (check.kind == "command") {
        observations.push_back(
            CommandObservation(check, incident_id, service_name, output_dir, clock));
      } else if (checks::IsCheckKind(check.kind) && times && client) {
        const size_t before = module_run.observations.size();
        RunModuleCheck(check, context, module_run);
        observations.insert(observations.end(), module_run.observations.begin() + before,
                            module_run.observations.end());
      } else if (checks::IsCheckKind(check.kind)) {
        observations.push_back(core::Observation{
            .check = check.name,
            .kind = check.kind,
            .result = core::ObservationResult::kUnknown,
            .detail =
                times ? "the HTTP client for checks could not be created"
                      : "the incident's rollback times could not be read: " + times.error().message,
            .observed_at = clock.Now()});
      } else {
        observations.push_back(core::Observation{
            .check = check.name,
            .kind = check.kind,
            .result = core::ObservationResult::kUnknown,
            .detail = fmt::format("check kind {} cannot be evaluated by this server", check.kind),
            .observed_at = clock.Now()});
      }
    }
  }
  if (stop.stop_requested()) {
    (void)plane_.store().ReleaseJob(job_id, lease.fencing_token);
    return;
  }

  const Caller system = SystemCaller();
  const core::Time now = clock.Now();
  core::ValidationFinding finding = core::ValidationFinding::kNotValidated;
  auto written = plane_.store().Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_CHECK(tx.CheckFence(job_id, lease.fencing_token));
    BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id));
    core::Incident& incident = stored.value;
    finding = core::FindingFromObservations(observations, RollbackEnd(incident, rollback_job_id));
    // The provider's readiness alone never validates a service, because without checks nothing
    // shows recovery, whatever readiness reports.
    if (!any_check) finding = core::ValidationFinding::kNotValidated;
    for (const auto& [digest, body] : module_run.response_bodies) {
      BACKOUT_CHECK(StoreContentByDigest(tx, incident.service, body));
    }
    for (core::Validation& validation : incident.validations) {
      if (validation.job_id != job) continue;
      validation.observations = observations;
      validation.finding = finding;
      validation.finished_at = now;
      validation.metric_series = module_run.metric_series;
    }
    auto next = core::Transition(incident.state, core::Action::kRecordFinding, system.user.roles,
                                 settings->policy, core::ActionDetail{.finding = finding});
    if (next) incident.state = *next;
    AddTimeline(incident, now, system, "validated",
                fmt::format("validation job {} found {} ({} observations)", job,
                            core::ValidationFindingName(finding), observations.size()));
    BACKOUT_CHECK(Save(tx, stored));
    BACKOUT_CHECK(
        NoteValidationFinding(tx, *settings, system, incident, rollback_job_id, finding, now));

    nlohmann::json payload = lease.job.payload;
    payload["step"] = kStepDone;
    payload["outcome"] = core::ValidationFindingName(finding);
    BACKOUT_CHECK(tx.SaveJobProgress(job_id, lease.fencing_token, payload));
    nlohmann::json change = {{"job_id", job},
                             {"finding", core::ValidationFindingName(finding)},
                             {"observations", observations}};
    if (!module_run.metric_series.empty()) change["metric_series"] = module_run.metric_series;
    BACKOUT_CHECK(
        Ledger(tx, system, "incident.validated", IncidentSubject(incident_id), std::move(change)));
    return tx.CompleteJob(job_id, lease.fencing_token);
  });
  if (!written) {
    spdlog::error("component=jobs job={} incident={} event=validation_not_recorded error=\"{}\"",
                  job_id, incident_id, written.error().message);
    // A lost lease leaves the job to its new holder; any other failure would recur on every
    // retry, so the job ends failed and a person requests a new validation.
    if (written.error().code != core::ErrorCode::kConflict) {
      auto failed = plane_.store().Write([&](store::Transaction& tx) {
        return tx.FailJob(job_id, lease.fencing_token, written.error().message, std::nullopt);
      });
      if (!failed) {
        spdlog::error("component=jobs job={} incident={} event=fail_not_recorded error=\"{}\"",
                      job_id, incident_id, failed.error().message);
      }
    }
    return;
  }
  spdlog::info("component=jobs job={} incident={} event=validated finding={}", job_id, incident_id,
               core::ValidationFindingName(finding));
}

}  // namespace backout::app
