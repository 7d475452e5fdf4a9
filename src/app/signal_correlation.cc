// The signal_correlation job: attribute each new signal to a change, open or join its incident,
// and apply the service's automatic policy.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <span>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_write.h"
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

// A signal read for correlation, with the decision taken before the write transaction.
struct PendingSignal {
  std::string id;
  bool correlated = false;  // by an earlier attempt of the job, so there is nothing to decide
  bool configured = false;  // its service is in the configuration
  signals::Correlation correlation;
};

// A signal as the write transaction left it.
struct RecordedSignal {
  SignalRecord signal;
  bool correlated_now = false;  // false when an earlier attempt of the job correlated it
};

// The incidents that one write transaction opened or changed, by id. Each is saved once, after
// all of the transaction's signals are applied, rather than once per signal.
using IncidentsInWrite = std::map<std::string, Stored<core::Incident>>;

// Returns incident `id` from `incidents`, loading it into them on first use.
core::Result<Stored<core::Incident>*> IncidentForWrite(store::Transaction& tx,
                                                       IncidentsInWrite& incidents,
                                                       const std::string& id) {
  auto found = incidents.find(id);
  if (found == incidents.end()) {
    BACKOUT_TRY(auto stored, LoadIncidentForUpdate(tx, id));
    found = incidents.emplace(id, std::move(stored)).first;
  }
  return &found->second;
}

// Opens an incident for `signal`, or joins the open one for the same suspected change (or, when
// unattributed, the open one of the service without a suspect). Returns the incident id. The
// incident is changed in `incidents` only; the caller saves it.
core::Result<std::string> OpenOrJoinIncident(store::Transaction& tx, const Settings& settings,
                                             const SignalRecord& signal,
                                             const signals::Correlation& correlation,
                                             core::Time now, IncidentsInWrite& incidents) {
  const Caller system = SystemCaller();
  const bool attributed = correlation.suspected_change_id.has_value();
  const std::string index_kind = attributed ? kSuspectIncidentKind : kUnattributedIncidentKind;
  const std::string index_id = attributed ? *correlation.suspected_change_id : signal.service;

  // NOTE: every joining signal adds a timeline event, so an alert storm on one change grows that
  // incident's stored JSON by one event per alert.
  BACKOUT_TRY(auto index, tx.Get(index_kind, index_id));
  if (index) {
    const std::string incident_id = index->body.value("incident", "");
    BACKOUT_TRY(Stored<core::Incident> * stored, IncidentForWrite(tx, incidents, incident_id));
    if (stored->value.state != core::IncidentState::kClosed) {
      AddTimeline(stored->value, now, system, "signal_joined",
                  fmt::format("{} signal {} ({}) joined: {}", signal.source, signal.name, signal.id,
                              correlation.reason));
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
  // Version 0, so the caller's save inserts it.
  incidents.emplace(incident.id, Stored<core::Incident>{store::Object{.kind = kIncidentKind,
                                                                      .id = incident.id,
                                                                      .service = incident.service},
                                                        incident});
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

// Step 1 of a batch: reads the signals `ids` and the changes of their services and of the
// services they depend on, then decides each correlation. A signal that cannot be read is logged
// and left out, and `failure` records its error.
core::Result<std::vector<PendingSignal>> DecideBatch(ControlPlane& plane,
                                                     const store::JobLease& lease,
                                                     const Settings& settings,
                                                     std::span<const std::string> ids,
                                                     std::optional<core::Error>& failure) {
  std::vector<SignalRecord> signals;
  std::map<std::string, std::vector<core::Change>> changes_by_service;
  BACKOUT_CHECK(plane.store().Read([&](store::Transaction& tx) -> core::Result<void> {
    for (const std::string& id : ids) {
      auto stored = Load<SignalRecord>(tx, kSignalKind, id, "signal");
      if (!stored) {
        spdlog::error("component=signals job={} signal={} event=correlation_failed error=\"{}\"",
                      lease.job.id, id, stored.error().message);
        failure = stored.error();
        continue;
      }
      SignalRecord& signal = stored->value;
      const ServiceConfig* service = settings.config.FindService(signal.service);
      if (!signal.correlated && service != nullptr) {
        std::vector<std::string> services = service->depends_on;
        services.push_back(service->name);
        for (const std::string& name : services) {
          if (changes_by_service.contains(name)) continue;
          BACKOUT_TRY(changes_by_service[name], signal_internal::LoadServiceChanges(tx, name));
        }
      }
      signals.push_back(std::move(signal));
    }
    return {};
  }));

  std::vector<PendingSignal> pending;
  pending.reserve(signals.size());
  for (const SignalRecord& signal : signals) {
    PendingSignal& decided = pending.emplace_back(PendingSignal{.id = signal.id});
    decided.correlated = signal.correlated;
    const ServiceConfig* service = settings.config.FindService(signal.service);
    decided.configured = service != nullptr;
    if (decided.correlated) continue;
    if (service == nullptr) {
      decided.correlation.reason =
          signal.service.empty()
              ? "the alert has no service label, so no change can be attributed to it"
              : fmt::format("service {} is not in the configuration", signal.service);
      continue;
    }
    std::vector<core::Change> dependencies;
    for (const std::string& dependency : service->depends_on) {
      const std::vector<core::Change>& changes = changes_by_service.at(dependency);
      dependencies.insert(dependencies.end(), changes.begin(), changes.end());
    }
    decided.correlation = signals::Correlate(
        signals::SignalFacts{.service = signal.service,
                             .starts_at = signal.starts_at,
                             .named_change_id = NamedChange(signal)},
        changes_by_service.at(service->name), dependencies,
        signals::CorrelationOptions{.watch_window = service->detection.watch_window});
  }
  return pending;
}

// Step 2 of a batch: records the decisions in one transaction, on the incidents and in the
// ledger. Each incident is written once, however many of the signals it gets. A signal that an
// earlier attempt of the job correlated is returned as stored.
core::Result<std::vector<RecordedSignal>> RecordBatch(ControlPlane& plane,
                                                      const store::JobLease& lease,
                                                      const Settings& settings,
                                                      const std::vector<PendingSignal>& pending,
                                                      core::Time now) {
  const Caller system = SystemCaller();
  std::vector<RecordedSignal> recorded;
  const std::string description = fmt::format("recording the correlation of {} signals from {}",
                                              pending.size(), pending.front().id);
  const auto record = [&](store::Transaction& tx) -> core::Result<void> {
    recorded.clear();
    IncidentsInWrite incidents;
    for (const PendingSignal& decided : pending) {
      BACKOUT_TRY(auto stored, Load<SignalRecord>(tx, kSignalKind, decided.id, "signal"));
      SignalRecord& current = stored.value;
      if (current.correlated) {
        recorded.push_back(RecordedSignal{.signal = std::move(current)});
        continue;
      }
      const signals::Correlation& correlation = decided.correlation;
      if (decided.configured) {
        BACKOUT_TRY(current.incident_id,
                    OpenOrJoinIncident(tx, settings, current, correlation, now, incidents));
        AddTimeline(incidents.at(current.incident_id).value, now, system, "signal_correlated",
                    fmt::format("signal {}: {}", current.id, correlation.reason));
      }
      current.correlated = true;
      current.suspected_change_id = correlation.suspected_change_id.value_or("");
      current.score = correlation.score;
      current.correlation_reason = correlation.reason;
      BACKOUT_CHECK(Save(tx, stored));
      BACKOUT_CHECK(
          Ledger(tx, system, "signal.correlated", SignalSubject(current.id),
                 {{"incident", current.incident_id},
                  {"suspected_change", correlation.suspected_change_id
                                           ? nlohmann::json(*correlation.suspected_change_id)
                                           : nlohmann::json(nullptr)},
                  // The ledger records integers only, so scores go in as text.
                  {"score", fmt::format("{:.3f}", correlation.score)},
                  {"reason", correlation.reason},
                  {"candidates", CandidatesJson(correlation)}}));
      recorded.push_back(RecordedSignal{.signal = std::move(current), .correlated_now = true});
    }
    for (auto& [id, incident] : incidents) BACKOUT_CHECK(Save(tx, incident));
    return {};
  };
  BACKOUT_CHECK(WriteForJob(plane.store(), lease, description, record));
  return recorded;
}

}  // namespace

// Declared here, defined in automatic_policy.cc.
void ApplyAutomaticPolicy(ControlPlane& plane, const store::JobLease& lease,
                          const SignalRecord& signal);

void ControlPlane::RunSignalCorrelation(const store::JobLease& lease) {
  std::vector<std::string> ids;
  for (const nlohmann::json& id : lease.job.payload.value("signal_ids", nlohmann::json::array())) {
    if (id.is_string()) ids.push_back(id.get<std::string>());
  }
  const auto settings = this->settings();

  std::optional<core::Error> failure;
  for (size_t start = 0; start < ids.size(); start += signal_internal::kCorrelationBatchSize) {
    const std::span<const std::string> batch = std::span(ids).subspan(
        start, std::min(signal_internal::kCorrelationBatchSize, ids.size() - start));
    auto pending = DecideBatch(*this, lease, *settings, batch, failure);
    if (pending && pending->empty()) continue;
    core::Result<std::vector<RecordedSignal>> recorded = std::unexpected(core::Error{});
    if (pending) {
      recorded = RecordBatch(*this, lease, *settings, *pending, clock_.Now());
    } else {
      recorded = std::unexpected(pending.error());
    }
    if (!recorded) {
      // The job is retried as a whole later, and the signals correlated by then are skipped.
      spdlog::error(
          "component=signals job={} event=correlation_failed first_signal={} signals={} "
          "error=\"{}\"",
          lease.job.id, batch.front(), batch.size(), recorded.error().message);
      failure = recorded.error();
      break;
    }

    for (const RecordedSignal& entry : *recorded) {
      const SignalRecord& signal = entry.signal;
      if (entry.correlated_now) {
        spdlog::info(
            "component=signals event=correlated job={} signal={} service={} incident={} "
            "suspected={} reason=\"{}\"",
            lease.job.id, signal.id, signal.service,
            signal.incident_id.empty() ? "-" : signal.incident_id,
            signal.suspected_change_id.empty() ? "-" : signal.suspected_change_id,
            signal.correlation_reason);
      }
      // Also after a retry of a signal correlated earlier: the automatic_action record, written
      // in the rollback's own transaction, stops a second pass from acting again.
      if (!signal.suspected_change_id.empty() && signal.status == "firing") {
        ApplyAutomaticPolicy(*this, lease, signal);
      }
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
