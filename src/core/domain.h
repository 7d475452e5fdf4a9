#pragma once

// Domain types of the rollback procedure: users and roles, changes, incidents and everything an
// incident collects on its way from detection to review. They are plain structs with public
// snake_case fields, and the rules that act on them live in state_machine.h and policy.h.
//
// JSON: every type has to_json/from_json found by argument-dependent lookup, so
// `nlohmann::json(value)` and `json.get<T>()` work. Times are RFC 3339 strings (core/time.h), dates
// are YYYY-MM-DD, an enum is its *Name() text, and an empty std::optional is `null`. Reading
// rejects unknown keys and wrong types, and a missing key keeps the field's default. from_json
// throws as nlohmann does, so call FromJson<T>() to get a Result instead.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"

namespace backout::core {

// A calendar date in UTC, for due dates.
using Date = std::chrono::sys_days;

// Formats as YYYY-MM-DD.
std::string FormatDate(Date date);
// Parses YYYY-MM-DD and rejects impossible dates such as 2026-02-30.
Result<Date> ParseDate(std::string_view text);

// ---- Users and roles ------------------------------------------------------------------------

enum class Role {
  kAdmin,            // manages users and tokens; no lifecycle action by this role alone
  kEngineeringLead,  // assesses, decides go/no-go, validates, reviews, closes
  kDevopsEngineer,   // executes rollbacks on the services granted to them, documents
  kAuditor,          // reads everything, including the ledger
  kViewer,           // reads incidents and changes
  kCi,               // records changes and their verifications, nothing else
  kSystem,           // Backout's own workers; never granted to a user (ParseRole rejects it)
};

std::string_view RoleName(Role role);  // "engineering-lead"
// Accepts the names a user may hold: admin, engineering-lead, devops-engineer, auditor, viewer,
// ci. Rejects "system" and anything else with the list of valid names.
Result<Role> ParseRole(std::string_view text);

struct User {
  std::string name;
  std::vector<Role> roles;
  std::vector<std::string> services;  // services this user may execute rollbacks on
  bool active = true;

  bool HasRole(Role role) const;
  bool HasService(std::string_view service) const;

  bool operator==(const User&) const = default;
};

// ---- Changes --------------------------------------------------------------------------------

struct Migration {
  std::string id;
  bool reversible = true;

  bool operator==(const Migration&) const = default;
};

enum class ChangeSource { kRecorded, kDiscovered };  // recorded by CI or a user; found in history
std::string_view ChangeSourceName(ChangeSource source);
Result<ChangeSource> ParseChangeSource(std::string_view text);

enum class ChangeValidation { kUnknown, kGood, kBad };
std::string_view ChangeValidationName(ChangeValidation validation);
Result<ChangeValidation> ParseChangeValidation(std::string_view text);

// The verification posted for a change (`backout change verify`, or CI).
struct Verification {
  bool passed = false;
  std::string verified_by;
  Time verified_at{};
  std::string detail;  // a CI run URL or a sentence

  bool operator==(const Verification&) const = default;
};

// One deployment of a service, from previous_version to version.
struct Change {
  std::string id;  // "CHG-1"
  std::string service;
  std::string environment;
  std::string version;
  std::string previous_version;
  std::string external_ticket;
  std::string approver;
  std::string deployer;
  Time time{};  // when the deployment happened
  std::string risk;
  std::vector<Migration> migrations;
  ChangeSource source = ChangeSource::kRecorded;
  std::string recorded_by;
  ChangeValidation validated = ChangeValidation::kUnknown;
  std::optional<Verification> verification;  // the latest one

  bool operator==(const Change&) const = default;
};

// ---- Incidents ------------------------------------------------------------------------------

enum class Severity { kSev1, kSev2, kSev3, kSev4 };
std::string_view SeverityName(Severity severity);  // "sev1"
Result<Severity> ParseSeverity(std::string_view text);

// Lifecycle state of an incident. See state_machine.h for the actions each state allows.
enum class IncidentState {
  kOpen,         // opened, nothing assessed yet
  kAssessing,    // an assessment exists or is being redone; a go/no-go decision is due
  kDecided,      // a go decision approved a plan; an executor may roll back
  kRollingBack,  // a rollback job runs, waits on the tool's approval, or was interrupted
  kValidating,   // the rollback happened; recovery checks are due
  kDocumenting,  // recovered or no-go: root cause, review and action items are due
  kClosed,
};
std::string_view IncidentStateName(IncidentState state);  // "rolling_back"
Result<IncidentState> ParseIncidentState(std::string_view text);

// Signal that opened the incident: an alert group, a rule, a probe, or a person's report.
struct Trigger {
  std::string kind;  // "manual", "alertmanager", "prometheus", "probe"
  std::string source;
  nlohmann::json detail;  // the signal as received, secrets removed

  bool operator==(const Trigger&) const = default;
};

struct TimelineEvent {
  Time time{};
  std::string actor;
  std::string kind;  // "opened", "assessed", "decided", "rollback_requested", …
  std::string detail;

  bool operator==(const TimelineEvent&) const = default;
};

// The largest attachment a manual check confirmation may carry (a screenshot or a short
// recording), in bytes. The server rejects larger ones, and the CLI checks a file's size before
// reading it.
inline constexpr std::size_t kMaxConfirmationAttachmentBytes = std::size_t{10} << 20;

struct Attachment {
  std::string name;
  std::string sha256;     // lower-case hex digest of the content, which the store keeps by digest
  std::int64_t size = 0;  // bytes
  std::string added_by;
  Time added_at{};

  bool operator==(const Attachment&) const = default;
};

// ---- Assessment -----------------------------------------------------------------------------

// A migration that rolling back to the target would cross.
struct DataImplication {
  std::string change_id;
  std::string migration_id;
  bool reversible = true;
  bool blocking = false;  // an irreversible migration: go needs an override reason
  std::string detail;

  bool operator==(const DataImplication&) const = default;
};

// A provider precondition such as "deployment not paused" or "no GitOps controller owns it".
struct Precondition {
  std::string name;
  bool satisfied = false;
  std::string detail;

  bool operator==(const Precondition&) const = default;
};

struct Assessment {
  std::string service;
  std::vector<std::string> affected_services;  // the service and all transitive dependents
  bool customer_facing = false;
  std::string target_version;  // empty when the provider's own rule picks the target
  std::optional<std::string> target_change_id;
  std::string target_rule;  // the rule that chose the target, in words
  std::vector<DataImplication> data_implications;
  std::vector<Precondition> preconditions;
  std::optional<std::chrono::seconds> expected_downtime;
  nlohmann::json plan;  // the exact action the provider would run, as the provider returns it
  std::string assessed_by;
  Time assessed_at{};
  // SHA-256 hex of CanonicalForDigest(*this), computed by the app layer (core has no hashing).
  std::string digest;

  bool HasBlockingImplication() const;

  bool operator==(const Assessment&) const = default;
};

// Returns the stable text that the assessment digest is computed over: the assessment's JSON
// without `digest`, keys sorted by byte, no whitespace, UTF-8. It equals RFC 8785 for the data
// Backout stores (integers only, ASCII keys). The app layer hashes it with SHA-256 and stores the
// hex digest in Assessment::digest and Decision::approved_digest. Fails on invalid UTF-8.
Result<std::string> CanonicalForDigest(const Assessment& assessment);
// The same canonical form for any JSON value, such as a fresh provider plan to compare.
Result<std::string> CanonicalForDigest(const nlohmann::json& value);

// ---- Decisions and rollbacks ----------------------------------------------------------------

enum class DecisionKind { kGo, kNoGo };
std::string_view DecisionKindName(DecisionKind kind);  // "go", "no_go"
Result<DecisionKind> ParseDecisionKind(std::string_view text);

struct Decision {
  DecisionKind kind = DecisionKind::kGo;
  std::string decider;
  Time time{};
  std::string reason;
  std::string approved_digest;  // the assessment digest the decider saw
  std::string override_reason;  // required to go across an irreversible migration
  bool retroactive = false;     // a lead's later approval of an emergency rollback

  bool operator==(const Decision&) const = default;
};

// Result of one rollback attempt. NextStateAfter() returns the incident's next state for each.
enum class RollbackOutcome {
  kRolledBack,            // the tool did it and reads back the target
  kSkippedNoop,           // the target is already live
  kNoRollbackTarget,      // nothing to roll back to
  kPreconditionFailed,    // paused, auto-synced, live state moved, fresh plan differs
  kPendingApproval,       // the tool itself needs an approval
  kPartial,               // some targets reverted, some not
  kFailed,                // the tool refused or errored
  kRevertedByController,  // a GitOps controller undid it
  kInterrupted,           // Backout died mid-action and cannot tell
};
std::string_view RollbackOutcomeName(RollbackOutcome outcome);  // "skipped_noop"
Result<RollbackOutcome> ParseRollbackOutcome(std::string_view text);
// The incident state that follows an outcome: validating, assessing or rolling_back.
IncidentState NextStateAfter(RollbackOutcome outcome);

// A person's statement, after an interrupted or pending rollback, of whether the action happened.
struct Confirmation {
  bool happened = false;
  std::string confirmed_by;
  Time confirmed_at{};
  std::string reason;

  bool operator==(const Confirmation&) const = default;
};

struct Rollback {
  std::string job_id;
  std::string plan_digest;  // the approved assessment digest this rollback runs
  std::string provider;     // provider kind, e.g. "command"
  std::string target_version;
  std::string target_rule;
  std::string approver;  // decider of the go decision; empty for an emergency rollback
  std::string executor;
  bool emergency = false;
  std::string emergency_reason;
  Time requested_at{};
  std::optional<Time> started_at;
  std::optional<Time> finished_at;
  std::optional<RollbackOutcome> outcome;  // empty while the job runs
  std::string message;
  std::string transcript_ref;  // where the provider transcript is stored
  nlohmann::json read_back;    // the tool's own record of what happened
  std::optional<Confirmation> confirmation;

  bool operator==(const Rollback&) const = default;
};

// ---- Validation -----------------------------------------------------------------------------

enum class ObservationResult { kPassed, kFailed, kUnknown };
std::string_view ObservationResultName(ObservationResult result);
Result<ObservationResult> ParseObservationResult(std::string_view text);

// Kind of the provider's own readiness check. Its observations alone never make a validation
// recovered.
inline constexpr std::string_view kReadinessCheckKind = "readiness";

struct Observation {
  std::string check;
  std::string kind;  // "readiness", "command", "http", "prometheus", "manual"
  ObservationResult result = ObservationResult::kUnknown;
  std::string detail;
  Time observed_at{};

  bool operator==(const Observation&) const = default;
};

enum class ValidationFinding { kRecovered, kNotRecovered, kNotValidated };
std::string_view ValidationFindingName(ValidationFinding finding);
Result<ValidationFinding> ParseValidationFinding(std::string_view text);
// The incident state that follows a finding: documenting for recovered, else assessing.
IncidentState NextStateAfter(ValidationFinding finding);

// The Prometheus data behind a `prometheus` check, kept so the evidence shows the recovery with
// time visible and an auditor can run the same query again. The raw query_range response body is
// stored once per digest, as attachment contents are.
struct MetricSeries {
  std::string check;
  std::string prometheus_url;
  std::string query;
  Time start{};  // query_range start: before the change
  Time end{};    // query_range end: when the check finished
  std::int64_t step_seconds = 0;
  std::string response_sha256;  // lower-case hex SHA-256 of the raw response body
  std::int64_t response_size = 0;
  // The check's condition as configured, such as "below 0.05"; empty in records made before it
  // was kept.
  std::string condition;

  bool operator==(const MetricSeries&) const = default;
};

struct Validation {
  std::string job_id;
  std::string rollback_job_id;  // the rollback being validated
  std::string requested_by;
  Time started_at{};
  std::optional<Time> finished_at;
  std::vector<Observation> observations;
  std::optional<ValidationFinding> finding;  // empty while the job runs
  std::vector<MetricSeries> metric_series;   // one per `prometheus` check that reached Prometheus

  bool operator==(const Validation&) const = default;
};

// ---- Follow-up ------------------------------------------------------------------------------

enum class ActionItemStatus { kOpen, kDone, kNotDoing };
std::string_view ActionItemStatusName(ActionItemStatus status);  // "not_doing"
Result<ActionItemStatus> ParseActionItemStatus(std::string_view text);

struct ActionItem {
  std::string id;  // "AI-1"
  std::string incident_id;
  std::string title;
  std::string owner;
  std::optional<Date> due;
  ActionItemStatus status = ActionItemStatus::kOpen;
  std::string evidence_link;  // required for done
  std::string reason;         // required for not_doing
  std::string created_by;
  Time created_at{};
  std::optional<Time> completed_at;
  std::string completed_by;

  bool operator==(const ActionItem&) const = default;
};

struct Incident {
  std::string id;  // "INC-1"
  std::string service;
  std::string environment;
  Severity severity = Severity::kSev3;
  std::string title;
  IncidentState state = IncidentState::kOpen;
  std::optional<std::string> suspected_change_id;
  std::string suspected_change_reason;
  std::string external_ticket;
  std::optional<Trigger> trigger;
  std::string opened_by;
  Time opened_at{};
  std::optional<Assessment> assessment;  // the latest; older ones stay in the ledger
  std::vector<Decision> decisions;       // in order
  std::vector<Rollback> rollbacks;       // in order
  std::vector<Validation> validations;   // in order
  std::string root_cause;
  std::vector<std::string> contributing_factors;
  std::vector<Attachment> attachments;
  std::string review_markdown;
  std::string review_written_by;
  std::optional<Time> review_written_at;
  std::vector<ActionItem> action_items;
  std::string no_action_reason;  // an explicit "no action items", with the reason
  bool emergency = false;        // a break-glass rollback happened
  std::vector<TimelineEvent> timeline;
  std::string closed_by;
  std::optional<Time> closed_at;

  // Returns the latest go or no-go that is not a retroactive approval, or nullptr.
  const Decision* LatestDecision() const;
  // Returns the decision in force at `time`: the latest go or no-go that is not a retroactive
  // approval and was made at or before `time`, or nullptr. A rollback is judged by the decision
  // in force at its request, not by decisions made after it.
  const Decision* DecisionInForceAt(Time time) const;
  const Rollback* LatestRollback() const;
  const Validation* LatestValidation() const;

  bool operator==(const Incident&) const = default;
};

// ---- JSON -----------------------------------------------------------------------------------

void to_json(nlohmann::json& json, Role value);
void from_json(const nlohmann::json& json, Role& value);
void to_json(nlohmann::json& json, ChangeSource value);
void from_json(const nlohmann::json& json, ChangeSource& value);
void to_json(nlohmann::json& json, ChangeValidation value);
void from_json(const nlohmann::json& json, ChangeValidation& value);
void to_json(nlohmann::json& json, Severity value);
void from_json(const nlohmann::json& json, Severity& value);
void to_json(nlohmann::json& json, IncidentState value);
void from_json(const nlohmann::json& json, IncidentState& value);
void to_json(nlohmann::json& json, DecisionKind value);
void from_json(const nlohmann::json& json, DecisionKind& value);
void to_json(nlohmann::json& json, RollbackOutcome value);
void from_json(const nlohmann::json& json, RollbackOutcome& value);
void to_json(nlohmann::json& json, ObservationResult value);
void from_json(const nlohmann::json& json, ObservationResult& value);
void to_json(nlohmann::json& json, ValidationFinding value);
void from_json(const nlohmann::json& json, ValidationFinding& value);
void to_json(nlohmann::json& json, ActionItemStatus value);
void from_json(const nlohmann::json& json, ActionItemStatus& value);

void to_json(nlohmann::json& json, const User& value);
void from_json(const nlohmann::json& json, User& value);
void to_json(nlohmann::json& json, const Migration& value);
void from_json(const nlohmann::json& json, Migration& value);
void to_json(nlohmann::json& json, const Verification& value);
void from_json(const nlohmann::json& json, Verification& value);
void to_json(nlohmann::json& json, const Change& value);
void from_json(const nlohmann::json& json, Change& value);
void to_json(nlohmann::json& json, const Trigger& value);
void from_json(const nlohmann::json& json, Trigger& value);
void to_json(nlohmann::json& json, const TimelineEvent& value);
void from_json(const nlohmann::json& json, TimelineEvent& value);
void to_json(nlohmann::json& json, const Attachment& value);
void from_json(const nlohmann::json& json, Attachment& value);
void to_json(nlohmann::json& json, const DataImplication& value);
void from_json(const nlohmann::json& json, DataImplication& value);
void to_json(nlohmann::json& json, const Precondition& value);
void from_json(const nlohmann::json& json, Precondition& value);
void to_json(nlohmann::json& json, const Assessment& value);
void from_json(const nlohmann::json& json, Assessment& value);
void to_json(nlohmann::json& json, const Decision& value);
void from_json(const nlohmann::json& json, Decision& value);
void to_json(nlohmann::json& json, const Confirmation& value);
void from_json(const nlohmann::json& json, Confirmation& value);
void to_json(nlohmann::json& json, const Rollback& value);
void from_json(const nlohmann::json& json, Rollback& value);
void to_json(nlohmann::json& json, const Observation& value);
void from_json(const nlohmann::json& json, Observation& value);
void to_json(nlohmann::json& json, const MetricSeries& value);
void from_json(const nlohmann::json& json, MetricSeries& value);
void to_json(nlohmann::json& json, const Validation& value);
void from_json(const nlohmann::json& json, Validation& value);
void to_json(nlohmann::json& json, const ActionItem& value);
void from_json(const nlohmann::json& json, ActionItem& value);
void to_json(nlohmann::json& json, const Incident& value);
void from_json(const nlohmann::json& json, Incident& value);

// Converts JSON to T without throwing. A failure is kInvalidArgument naming the field path, such
// as "field rollbacks[0].outcome: unknown rollback outcome 'done': expected one of …".
template <typename T>
Result<T> FromJson(const nlohmann::json& json) {
  try {
    return json.get<T>();
  } catch (const std::exception& error) {
    return MakeError(ErrorCode::kInvalidArgument, "{}", error.what());
  }
}

}  // namespace backout::core
