// Backout's own detection: the PromQL rules and HTTP probes of services with a recent change.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/signal_internal.h"
#include "app/try.h"
#include "http/client.h"
#include "signals/probe.h"
#include "signals/prometheus.h"

namespace backout::app {
namespace {

// One rule or probe of a service, with its result, for the change in whose window it ran.
struct Evaluation {
  std::string service;
  std::string change_id;
  core::Time change_time{};
  std::string source;  // "prometheus" or "probe"
  std::string name;
  std::string severity;
  std::string query;  // the PromQL or the probe URL
  signals::ConditionResult result;
  // For a rule that fires: whether it already fired at the change's time.
  signals::ConditionState at_change = signals::ConditionState::kUnknown;
};

// The latest change of each service with rules or probes whose watch window is still open.
core::Result<std::map<std::string, core::Change>> WatchedChanges(store::Store& store,
                                                                 const Config& config,
                                                                 core::Time now) {
  std::map<std::string, core::Change> watched;
  BACKOUT_CHECK(store.Read([&](store::Transaction& tx) -> core::Result<void> {
    for (const ServiceConfig& service : config.services) {
      if (service.detection.rules.empty() && service.detection.probes.empty()) continue;
      BACKOUT_TRY(auto changes, signal_internal::LoadServiceChanges(tx, service.name));
      const core::Change* latest = nullptr;
      for (const core::Change& change : changes) {
        if (change.time > now || now - change.time > service.detection.watch_window) continue;
        if (latest == nullptr || change.time > latest->time) latest = &change;
      }
      if (latest != nullptr) watched.emplace(service.name, *latest);
    }
    return {};
  }));
  return watched;
}

std::string SignalId(const Evaluation& evaluation) {
  return fmt::format("{}:{}/{}/{}", evaluation.source == "prometheus" ? "rule" : "probe",
                     evaluation.service, evaluation.name, evaluation.change_id);
}

}  // namespace

core::Result<int> ControlPlane::EvaluateDetection() {
  const auto current = settings();
  const Config& config = current->config;
  const core::Time now = clock_.Now();

  // Step 1: the services whose watch window is open.
  BACKOUT_TRY(auto watched, WatchedChanges(store_, config, now));
  if (watched.empty()) return 0;

  // Step 2: evaluate, outside any transaction.
  http::ClientOptions options;
  options.retry.max_attempts = 2;
  options.name = "detection";
  auto client = http::Client::Create(options);
  if (!client) {
    return core::MakeError(core::ErrorCode::kInternal, "could not create the HTTP client: {}",
                           client.error().message);
  }
  std::shared_ptr<http::Client> shared(std::move(*client));
  std::unique_ptr<signals::PrometheusClient> prometheus;
  if (config.signals.prometheus) {
    BACKOUT_TRY(prometheus,
                signals::PrometheusClient::Create(config.signals.prometheus->url, shared,
                                                  config.signals.prometheus->timeout));
  }
  std::vector<Evaluation> evaluations;
  for (const auto& [name, change] : watched) {
    const ServiceConfig* service = config.FindService(name);
    for (const DetectionRuleConfig& rule : service->detection.rules) {
      Evaluation evaluation{.service = name,
                            .change_id = change.id,
                            .change_time = change.time,
                            .source = "prometheus",
                            .name = rule.name,
                            .severity = rule.severity,
                            .query = rule.query};
      if (prometheus == nullptr) {
        evaluation.result = {.state = signals::ConditionState::kUnknown,
                             .detail = "signals.prometheus is not configured"};
      } else {
        evaluation.result = prometheus->Evaluate(rule.query);
        if (evaluation.result.state == signals::ConditionState::kFiring) {
          // A condition already true when the change was made predates it.
          evaluation.at_change = prometheus->Evaluate(rule.query, change.time).state;
        }
      }
      evaluations.push_back(std::move(evaluation));
    }
    for (const ProbeConfig& probe : service->detection.probes) {
      evaluations.push_back(Evaluation{
          .service = name,
          .change_id = change.id,
          .change_time = change.time,
          .source = "probe",
          .name = probe.name,
          .severity = probe.severity,
          .query = probe.url,
          .result = signals::RunProbe(
              *shared,
              signals::ProbeSpec{.name = probe.name,
                                 .url = probe.url,
                                 .method = probe.method,
                                 .expected_status = static_cast<int>(probe.expected_status),
                                 .timeout = probe.timeout})});
    }
  }
  for (const Evaluation& evaluation : evaluations) {
    if (evaluation.result.state == signals::ConditionState::kUnknown) {
      spdlog::warn(
          "component=signals event=condition_unknown service={} {}={} change={} "
          "error=\"{}\"",
          evaluation.service, evaluation.source, evaluation.name, evaluation.change_id,
          evaluation.result.detail);
    }
  }

  // Step 3: commit what fired and what cleared, and enqueue the correlation of the new ones.
  int fired_count = 0;
  const Caller system = SystemCaller();
  BACKOUT_CHECK(store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    fired_count = 0;
    std::vector<std::string> fired;
    for (const Evaluation& evaluation : evaluations) {
      const std::string id = SignalId(evaluation);
      BACKOUT_TRY(auto existing, tx.Get(kSignalKind, id));
      if (evaluation.result.state == signals::ConditionState::kFiring && !existing) {
        const bool before_change = evaluation.at_change == signals::ConditionState::kFiring;
        SignalRecord signal{
            .id = id,
            .source = evaluation.source,
            .name = evaluation.name,
            .service = evaluation.service,
            .severity = evaluation.severity,
            .status = "firing",
            // A rule that already fired at the change's time started before it.
            .starts_at =
                before_change ? evaluation.change_time - std::chrono::milliseconds(1) : now,
            .received_at = now,
            .labels = {{"service", evaluation.service}},
            .detail =
                fmt::format("{}: {}{}", evaluation.query, evaluation.result.detail,
                            before_change ? "; it already fired when the change was made" : "")};
        BACKOUT_TRY(auto stored, Insert(tx, kSignalKind, id, signal.service, signal));
        fired.push_back(id);
        BACKOUT_CHECK(Ledger(tx, system, "signal.received", signal_internal::SignalSubject(id),
                             {{"source", signal.source},
                              {"name", signal.name},
                              {"service", signal.service},
                              {"severity", signal.severity},
                              {"status", signal.status},
                              {"starts_at", core::FormatTime(signal.starts_at)},
                              {"query", evaluation.query},
                              {"detail", signal.detail}}));
        continue;
      }
      // Only a clear result resolves a signal; an unknown one leaves it firing.
      if (evaluation.result.state != signals::ConditionState::kClear || !existing) continue;
      BACKOUT_TRY(SignalRecord signal, core::FromJson<SignalRecord>(existing->body));
      if (signal.status != "firing") continue;
      signal.status = "resolved";
      signal.ends_at = now;
      existing->body = nlohmann::json(signal);
      BACKOUT_CHECK(tx.Put(*existing));
      if (!signal.incident_id.empty()) {
        BACKOUT_TRY(auto incident, LoadIncident(tx, signal.incident_id));
        AddTimeline(incident.value, now, system, "signal_resolved",
                    fmt::format("{} {} on {} cleared", signal.source, signal.name, signal.service));
        BACKOUT_CHECK(Save(tx, incident));
      }
      BACKOUT_CHECK(Ledger(tx, system, "signal.resolved", signal_internal::SignalSubject(id),
                           {{"ends_at", core::FormatTime(now)}, {"incident", signal.incident_id}}));
    }
    fired_count = static_cast<int>(fired.size());
    if (!fired.empty()) {
      BACKOUT_TRY(auto job, signal_internal::EnqueueCorrelation(tx, fired, now));
      (void)job;
    }
    return {};
  }));
  if (fired_count > 0) {
    spdlog::info("component=signals event=detection_fired signals={}", fired_count);
  }
  return fired_count;
}

}  // namespace backout::app
