#pragma once

// Records of step 1 of the procedure (detect the failed change): the signals Backout received or
// raised, and the automatic actions the per-service policy took on them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "store/store.h"

namespace backout::signals {
struct WebhookPayload;
}  // namespace backout::signals

namespace backout::app {

inline constexpr char kSignalKind[] = "signal";
// One per change the automatic policy acted on (or decided not to), keyed by change id, so it
// never acts twice for one change.
inline constexpr char kAutomaticActionKind[] = "automatic_action";
// Maps a suspected change id to its open incident, so later signals join it.
inline constexpr char kSuspectIncidentKind[] = "suspect_incident";
// Maps a service to its open incident without a suspected change.
inline constexpr char kUnattributedIncidentKind[] = "unattributed_incident";

// One signal: an Alertmanager alert, a Backout PromQL rule or an HTTP probe that fired.
struct SignalRecord {
  std::string id;       // "am:FINGERPRINT@STARTS_AT", "rule:SERVICE/RULE/CHANGE", "probe:…"
  std::string source;   // "alertmanager", "prometheus", "probe"
  std::string name;     // alertname, rule or probe name
  std::string service;  // empty when the signal names none
  std::string severity;
  std::string status;  // "firing" or "resolved"
  core::Time starts_at{};
  std::optional<core::Time> ends_at;
  core::Time received_at{};
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string detail;  // the rule's samples or the probe's answer
  // Alertmanager context: the group and how many alerts it dropped (max_alerts).
  std::string group_key;
  std::string receiver;
  int64_t truncated_alerts = 0;
  int64_t deliveries = 1;
  // Correlation, filled by the worker.
  bool correlated = false;
  std::string incident_id;
  std::string suspected_change_id;
  double score = 0;
  std::string correlation_reason;
};

void to_json(nlohmann::json& json, const SignalRecord& signal);
void from_json(const nlohmann::json& json, SignalRecord& signal);
// Serializes `signal` to the same bytes as store::SerializeBody(nlohmann::json(signal)), with
// the same errors, without building the nlohmann object. The intake does this once per alert.
core::Result<store::SerializedBody> SerializeSignal(const SignalRecord& signal);

// One Alertmanager delivery turned into signal records and their stored JSON text before the
// intake's write transaction, so that concurrent deliveries do this work in parallel while one
// of them commits. Made by ControlPlane::PrepareAlertmanager. When some alerts are not new, the
// batch moves their ledger lines out and hands them back.
struct PreparedDelivery {
  const signals::WebhookPayload* payload = nullptr;
  std::vector<SignalRecord> records;  // one per alert, in the payload's order
  // Each record serialized as stored, or why it cannot be stored. The batch stores the text of a
  // firing alert and fails with the error as Transaction::Put would.
  std::vector<core::Result<store::SerializedBody>> bodies;
  std::vector<nlohmann::json> received;  // each record as the delivery's ledger entry lists it
  // The delivery's "signal.received" entry listing every record, which the batch appends when
  // every alert is new. Empty when it cannot be encoded, and then the batch encodes the entry
  // itself and reports the error as before.
  std::optional<ledger::PreparedEntry> entry;
};

// What one webhook delivery did.
struct SignalIntake {
  int received = 0;    // alerts in the body
  int recorded = 0;    // new signals committed
  int duplicates = 0;  // already recorded (retries, Alertmanager replicas)
  int resolved = 0;    // signals closed by a resolved alert
  int invalid = 0;     // alerts that could not be decoded
  int64_t truncated_alerts = 0;
  std::string job_id;  // the correlation job, empty when nothing new fired
  size_t batch = 1;    // deliveries committed in the same transaction
};

// Logs one committed delivery at info level. The receiver calls it on the request's thread
// after the group commit, so that the batch's writer does not wait on the log.
void LogCommittedDelivery(const signals::WebhookPayload& payload, const SignalIntake& intake);

}  // namespace backout::app
