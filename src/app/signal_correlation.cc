// The signal_correlation job: attribute each new signal to a change, open or join its incident,
// and apply the service's automatic policy.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/signal_internal.h"
#include "app/try.h"
#include "signals/correlation.h"

namespace backout::app {
namespace {

using signal_internal::SignalSubject;

constexpr auto kRetryAfter = std::chrono::seconds(10);
constexpr int kMaxAttempts = 5;

std::string NamedChange(const SignalRecord& signal) {
  if (auto label = signal.labels.find("change_id"); label != signal.labels.end()) {
    return label->second;
  }
  if (auto annotation = signal.annotations.find("change_id");
      annotation != signal.annotations.end()) {
    return annotation->second;
  }
  return "";
}

nlohmann::json CandidatesJson(const signals::Correlation& correlation) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const signals::Candidate& candidate : correlation.candidates) {
    candidates.push_back({{"change_id", candidate.change_id},
                          {"service", candidate.service},
                          {"score", fmt::format("{:.3f}", candidate.score)},
                          {"reason", candidate.reason}});
  }
  return candidates;
}

// Opens an incident for `signal`, or joins the open one for the same suspected change (or, when
// unattributed, the open one of the service without a suspect). Returns the incident id.
core::Result<std::string> OpenOrJoinIncident(store::Transaction& tx, const Settings& settings,
                                             const SignalRecord& signal,
                                             const signals::Correlation& correlation,
                                             core::Time now) {
  const Caller system = SystemCaller();
  const bool attributed = correlation.suspected_change_id.has_value();
  const std::string index_kind = attributed ? kSuspectIncidentKind : kUnattributedIncidentKind;
  const std::string index_id = attributed ? *correlation.suspected_change_id : signal.service;

  // NOTE: every joining signal adds a timeline event, so an alert storm on one change grows that
  // incident's stored JSON by one event per alert.
  BACKOUT_TRY(auto index, tx.Get(index_kind, index_id));
  if (index) {
    const std::string incident_id = index->body.value("incident", "");
    BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id));
    if (stored.value.state != core::IncidentState::kClosed) {
      AddTimeline(stored.value, now, system, "signal_joined",
                  fmt::format("{} signal {} ({}) joined: {}", signal.source, signal.name, signal.id,
                              correlation.reason));
      BACKOUT_CHECK(Save(tx, stored));
      return incident_id;
    }
  }

  const ServiceConfig* service = settings.config.FindService(signal.service);
  BACKOUT_TRY(int64_t number, tx.NextNumber(kIncidentKind));
  core::Incident incident{
      .id = fmt::format("INC-{}", number),
      .service = signal.service,
      .environment = service != nullptr ? service->environment : "",
      .severity = signal_internal::IncidentSeverity(signal.severity),
      .title = fmt::format("{} {} fired on {}", signal.source, signal.name, signal.service),
      .state = core::IncidentState::kOpen,
      .suspected_change_id = correlation.suspected_change_id,
      .suspected_change_reason = attributed ? correlation.reason : "",
      .trigger = core::Trigger{.kind = signal.source,
                               .source = signal.id,
                               .detail = {{"labels", signal.labels},
                                          {"annotations", signal.annotations},
                                          {"starts_at", core::FormatTime(signal.starts_at)},
                                          {"group_key", signal.group_key},
                                          {"truncated_alerts", signal.truncated_alerts}}},
      .opened_by = system.name(),
      .opened_at = now};
  AddTimeline(
      incident, now, system, "opened",
      fmt::format("opened by {} signal {} ({}): {}", signal.source, signal.name, signal.id,
                  attributed ? correlation.reason : "no suspected change: " + correlation.reason));
  BACKOUT_TRY(auto stored, Insert(tx, kIncidentKind, incident.id, incident.service, incident));
  store::Object index_object{.kind = index_kind,
                             .id = index_id,
                             .service = signal.service,
                             .body = {{"incident", incident.id}}};
  if (index) index_object.version = index->version;
  BACKOUT_CHECK(tx.Put(index_object));
  BACKOUT_CHECK(
      Ledger(tx, system, "incident.opened", IncidentSubject(incident.id),
             {{"service", incident.service},
              {"severity", core::SeverityName(incident.severity)},
              {"title", incident.title},
              {"suspected_change", attributed ? nlohmann::json(*correlation.suspected_change_id)
                                              : nlohmann::json(nullptr)},
              {"suspected_change_reason", incident.suspected_change_reason},
              {"trigger", signal.id}}));
  return incident.id;
}

}  // namespace

// Declared here, defined in automatic_policy.cc.
void ApplyAutomaticPolicy(ControlPlane& plane, const store::JobLease& lease,
                          const SignalRecord& signal);

namespace {

// Correlates one signal and returns it; a signal already correlated (by an earlier attempt) is
// returned as stored.
core::Result<SignalRecord> CorrelateOne(ControlPlane& plane, const store::JobLease& lease,
                                        const std::string& signal_id) {
  const auto settings = plane.settings();
  const core::Time now = plane.clock().Now();
  const Caller system = SystemCaller();

  // Step 1: read the signal and the candidate changes.
  SignalRecord signal;
  std::vector<core::Change> own;
  std::vector<core::Change> dependencies;
  bool done = false;
  const ServiceConfig* service = nullptr;
  BACKOUT_CHECK(plane.store().Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto stored, Load<SignalRecord>(tx, kSignalKind, signal_id, "signal"));
    signal = std::move(stored.value);
    done = signal.correlated;
    service = settings->config.FindService(signal.service);
    if (done || service == nullptr) return {};
    BACKOUT_TRY(own, signal_internal::LoadServiceChanges(tx, service->name));
    for (const std::string& dependency : service->depends_on) {
      BACKOUT_TRY(auto changes, signal_internal::LoadServiceChanges(tx, dependency));
      dependencies.insert(dependencies.end(), changes.begin(), changes.end());
    }
    return {};
  }));
  if (done) return signal;

  // Step 2: score the candidates.
  signals::Correlation correlation;
  if (service == nullptr) {
    correlation.reason =
        signal.service.empty()
            ? "the alert has no service label, so no change can be attributed to it"
            : fmt::format("service {} is not in the configuration", signal.service);
  } else {
    correlation = signals::Correlate(
        signals::SignalFacts{.service = signal.service,
                             .starts_at = signal.starts_at,
                             .named_change_id = NamedChange(signal)},
        own, dependencies,
        signals::CorrelationOptions{.watch_window = service->detection.watch_window});
  }

  // Step 3: record the decision, on the incident and in the ledger, in one transaction.
  BACKOUT_CHECK(plane.store().Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_CHECK(tx.CheckFence(lease.job.id, lease.fencing_token));
    BACKOUT_TRY(auto stored, Load<SignalRecord>(tx, kSignalKind, signal_id, "signal"));
    if (stored.value.correlated) {
      done = true;
      signal = stored.value;
      return {};
    }
    SignalRecord& current = stored.value;
    if (service != nullptr) {
      BACKOUT_TRY(current.incident_id,
                  OpenOrJoinIncident(tx, *settings, current, correlation, now));
      BACKOUT_TRY(auto incident, LoadIncident(tx, current.incident_id));
      AddTimeline(incident.value, now, system, "signal_correlated",
                  fmt::format("signal {}: {}", current.id, correlation.reason));
      BACKOUT_CHECK(Save(tx, incident));
    }
    current.correlated = true;
    current.suspected_change_id = correlation.suspected_change_id.value_or("");
    current.score = correlation.score;
    current.correlation_reason = correlation.reason;
    BACKOUT_CHECK(Save(tx, stored));
    signal = current;
    return Ledger(tx, system, "signal.correlated", SignalSubject(current.id),
                  {{"incident", current.incident_id},
                   {"suspected_change", correlation.suspected_change_id
                                            ? nlohmann::json(*correlation.suspected_change_id)
                                            : nlohmann::json(nullptr)},
                   // The ledger records integers only, so scores go in as text.
                   {"score", fmt::format("{:.3f}", correlation.score)},
                   {"reason", correlation.reason},
                   {"candidates", CandidatesJson(correlation)}});
  }));
  if (done) return signal;
  spdlog::info(
      "component=signals event=correlated signal={} service={} incident={} suspected={} "
      "reason=\"{}\"",
      signal.id, signal.service, signal.incident_id.empty() ? "-" : signal.incident_id,
      signal.suspected_change_id.empty() ? "-" : signal.suspected_change_id,
      signal.correlation_reason);
  return signal;
}

}  // namespace

void ControlPlane::RunSignalCorrelation(const store::JobLease& lease) {
  std::vector<std::string> ids;
  for (const nlohmann::json& id : lease.job.payload.value("signal_ids", nlohmann::json::array())) {
    if (id.is_string()) ids.push_back(id.get<std::string>());
  }

  std::optional<core::Error> failure;
  for (const std::string& id : ids) {
    auto correlated = CorrelateOne(*this, lease, id);
    if (!correlated) {
      spdlog::error("component=signals job={} signal={} event=correlation_failed error=\"{}\"",
                    lease.job.id, id, correlated.error().message);
      failure = correlated.error();
      continue;
    }
    // Also after a retry of a signal correlated earlier: the automatic_action record, written
    // in the rollback's own transaction, stops a second pass from acting again.
    if (!correlated->suspected_change_id.empty() && correlated->status == "firing") {
      ApplyAutomaticPolicy(*this, lease, *correlated);
    }
  }

  const core::Time now = clock_.Now();
  auto finished = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    if (!failure) return tx.CompleteJob(lease.job.id, lease.fencing_token);
    std::optional<core::Time> retry_at;
    if (lease.job.attempts < kMaxAttempts) retry_at = now + kRetryAfter;
    return tx.FailJob(lease.job.id, lease.fencing_token, failure->message, retry_at);
  });
  if (!finished) {
    spdlog::error("component=signals job={} event=job_not_finished error=\"{}\"", lease.job.id,
                  finished.error().message);
  }
}

}  // namespace backout::app
