#include "core/domain.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <utility>

#include "core/json_fields.h"

namespace backout::core {
namespace {

using json_fields::FieldError;
using json_fields::ObjectReader;
using json_fields::Put;
using nlohmann::json;

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

template <typename E, size_t N>
std::string_view NameIn(const NameTable<E, N>& table, E value) {
  for (const auto& [entry, name] : table) {
    if (entry == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
Result<E> ParseIn(const NameTable<E, N>& table, std::string_view text, std::string_view what) {
  std::string valid;
  for (const auto& [entry, name] : table) {
    if (name == text) return entry;
    valid += valid.empty() ? "" : ", ";
    valid += name;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown {} '{}': expected one of {}", what, text,
                   valid);
}

constexpr NameTable<Role, 6> kUserRoles{{
    {Role::kAdmin, "admin"},
    {Role::kEngineeringLead, "engineering-lead"},
    {Role::kDevopsEngineer, "devops-engineer"},
    {Role::kAuditor, "auditor"},
    {Role::kViewer, "viewer"},
    {Role::kCi, "ci"},
}};

constexpr NameTable<ChangeSource, 2> kChangeSources{{
    {ChangeSource::kRecorded, "recorded"},
    {ChangeSource::kDiscovered, "discovered"},
}};

constexpr NameTable<ChangeValidation, 3> kChangeValidations{{
    {ChangeValidation::kUnknown, "unknown"},
    {ChangeValidation::kGood, "good"},
    {ChangeValidation::kBad, "bad"},
}};

constexpr NameTable<Severity, 4> kSeverities{{
    {Severity::kSev1, "sev1"},
    {Severity::kSev2, "sev2"},
    {Severity::kSev3, "sev3"},
    {Severity::kSev4, "sev4"},
}};

constexpr NameTable<IncidentState, 7> kIncidentStates{{
    {IncidentState::kOpen, "open"},
    {IncidentState::kAssessing, "assessing"},
    {IncidentState::kDecided, "decided"},
    {IncidentState::kRollingBack, "rolling_back"},
    {IncidentState::kValidating, "validating"},
    {IncidentState::kDocumenting, "documenting"},
    {IncidentState::kClosed, "closed"},
}};

constexpr NameTable<DecisionKind, 2> kDecisionKinds{{
    {DecisionKind::kGo, "go"},
    {DecisionKind::kNoGo, "no_go"},
}};

constexpr NameTable<RollbackOutcome, 9> kRollbackOutcomes{{
    {RollbackOutcome::kRolledBack, "rolled_back"},
    {RollbackOutcome::kSkippedNoop, "skipped_noop"},
    {RollbackOutcome::kNoRollbackTarget, "no_rollback_target"},
    {RollbackOutcome::kPreconditionFailed, "precondition_failed"},
    {RollbackOutcome::kPendingApproval, "pending_approval"},
    {RollbackOutcome::kPartial, "partial"},
    {RollbackOutcome::kFailed, "failed"},
    {RollbackOutcome::kRevertedByController, "reverted_by_controller"},
    {RollbackOutcome::kInterrupted, "interrupted"},
}};

constexpr NameTable<ObservationResult, 3> kObservationResults{{
    {ObservationResult::kPassed, "passed"},
    {ObservationResult::kFailed, "failed"},
    {ObservationResult::kUnknown, "unknown"},
}};

constexpr NameTable<ValidationFinding, 3> kValidationFindings{{
    {ValidationFinding::kRecovered, "recovered"},
    {ValidationFinding::kNotRecovered, "not_recovered"},
    {ValidationFinding::kNotValidated, "not_validated"},
}};

constexpr NameTable<ActionItemStatus, 3> kActionItemStatuses{{
    {ActionItemStatus::kOpen, "open"},
    {ActionItemStatus::kDone, "done"},
    {ActionItemStatus::kNotDoing, "not_doing"},
}};

// Writes an enum as its name and reads it back through its Parse function.
void EnumToJson(json& out, std::string_view name) { out = std::string(name); }

template <typename E, typename ParseFunction>
void EnumFromJson(const json& in, E& value, ParseFunction parse) {
  if (!in.is_string()) {
    throw FieldError(fmt::format("expected a string, got {}", in.type_name()));
  }
  auto parsed = parse(in.get_ref<const std::string&>());
  if (!parsed) throw FieldError(parsed.error().message);
  value = *parsed;
}

}  // namespace

std::string FormatDate(Date date) {
  const std::chrono::year_month_day ymd{date};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

Result<Date> ParseDate(std::string_view text) {
  auto invalid = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid date '{}': expected YYYY-MM-DD such as 2026-12-04", text);
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return invalid();
  int fields[3] = {0, 0, 0};
  const std::pair<size_t, size_t> spans[3] = {{0, 4}, {5, 2}, {8, 2}};
  for (int i = 0; i < 3; ++i) {
    for (size_t pos = spans[i].first; pos < spans[i].first + spans[i].second; ++pos) {
      if (!std::isdigit(static_cast<unsigned char>(text[pos]))) return invalid();
      fields[i] = fields[i] * 10 + (text[pos] - '0');
    }
  }
  const std::chrono::year_month_day ymd{std::chrono::year{fields[0]},
                                        std::chrono::month{static_cast<unsigned>(fields[1])},
                                        std::chrono::day{static_cast<unsigned>(fields[2])}};
  if (!ymd.ok()) return invalid();
  return Date{ymd};
}

std::string_view RoleName(Role role) {
  if (role == Role::kSystem) return "system";
  return NameIn(kUserRoles, role);
}

Result<Role> ParseRole(std::string_view text) {
  if (text == "system") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "role 'system' is reserved for Backout's own workers and cannot be granted");
  }
  return ParseIn(kUserRoles, text, "role");
}

bool User::HasRole(Role role) const { return std::ranges::find(roles, role) != roles.end(); }

bool User::HasService(std::string_view service) const {
  return std::ranges::find(services, service) != services.end();
}

std::string_view ChangeSourceName(ChangeSource source) { return NameIn(kChangeSources, source); }
Result<ChangeSource> ParseChangeSource(std::string_view text) {
  return ParseIn(kChangeSources, text, "change source");
}

std::string_view ChangeValidationName(ChangeValidation validation) {
  return NameIn(kChangeValidations, validation);
}
Result<ChangeValidation> ParseChangeValidation(std::string_view text) {
  return ParseIn(kChangeValidations, text, "change validation");
}

std::string_view SeverityName(Severity severity) { return NameIn(kSeverities, severity); }
Result<Severity> ParseSeverity(std::string_view text) {
  return ParseIn(kSeverities, text, "severity");
}

std::string_view IncidentStateName(IncidentState state) { return NameIn(kIncidentStates, state); }
Result<IncidentState> ParseIncidentState(std::string_view text) {
  return ParseIn(kIncidentStates, text, "incident state");
}

std::string_view DecisionKindName(DecisionKind kind) { return NameIn(kDecisionKinds, kind); }
Result<DecisionKind> ParseDecisionKind(std::string_view text) {
  return ParseIn(kDecisionKinds, text, "decision");
}

std::string_view RollbackOutcomeName(RollbackOutcome outcome) {
  return NameIn(kRollbackOutcomes, outcome);
}
Result<RollbackOutcome> ParseRollbackOutcome(std::string_view text) {
  return ParseIn(kRollbackOutcomes, text, "rollback outcome");
}

IncidentState NextStateAfter(RollbackOutcome outcome) {
  switch (outcome) {
    case RollbackOutcome::kRolledBack:
    case RollbackOutcome::kSkippedNoop:
      return IncidentState::kValidating;
    case RollbackOutcome::kPendingApproval:
    case RollbackOutcome::kInterrupted:
      return IncidentState::kRollingBack;
    case RollbackOutcome::kNoRollbackTarget:
    case RollbackOutcome::kPreconditionFailed:
    case RollbackOutcome::kPartial:
    case RollbackOutcome::kFailed:
    case RollbackOutcome::kRevertedByController:
      return IncidentState::kAssessing;
  }
  return IncidentState::kAssessing;
}

std::string_view ObservationResultName(ObservationResult result) {
  return NameIn(kObservationResults, result);
}
Result<ObservationResult> ParseObservationResult(std::string_view text) {
  return ParseIn(kObservationResults, text, "observation result");
}

std::string_view ValidationFindingName(ValidationFinding finding) {
  return NameIn(kValidationFindings, finding);
}
Result<ValidationFinding> ParseValidationFinding(std::string_view text) {
  return ParseIn(kValidationFindings, text, "validation finding");
}

IncidentState NextStateAfter(ValidationFinding finding) {
  return finding == ValidationFinding::kRecovered ? IncidentState::kDocumenting
                                                  : IncidentState::kAssessing;
}

std::string_view ActionItemStatusName(ActionItemStatus status) {
  return NameIn(kActionItemStatuses, status);
}
Result<ActionItemStatus> ParseActionItemStatus(std::string_view text) {
  return ParseIn(kActionItemStatuses, text, "action item status");
}

bool Assessment::HasBlockingImplication() const {
  return std::ranges::any_of(data_implications, &DataImplication::blocking);
}

const Decision* Incident::LatestDecision() const {
  for (auto it = decisions.rbegin(); it != decisions.rend(); ++it) {
    if (!it->retroactive) return &*it;
  }
  return nullptr;
}

const Decision* Incident::DecisionInForceAt(Time time) const {
  const Decision* in_force = nullptr;
  for (const Decision& decision : decisions) {
    if (!decision.retroactive && decision.time <= time) in_force = &decision;
  }
  return in_force;
}

const Rollback* Incident::LatestRollback() const {
  return rollbacks.empty() ? nullptr : &rollbacks.back();
}

const Validation* Incident::LatestValidation() const {
  return validations.empty() ? nullptr : &validations.back();
}

Result<std::string> CanonicalForDigest(const nlohmann::json& value) {
  // nlohmann's objects are std::map, so dump() writes keys in byte order; strict error handling
  // rejects invalid UTF-8 instead of writing a replacement that two encoders could disagree on.
  try {
    return value.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception& error) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "cannot build the canonical form for the digest: {}", error.what());
  }
}

Result<std::string> CanonicalForDigest(const Assessment& assessment) {
  json value = assessment;
  value.erase("digest");
  return CanonicalForDigest(value);
}

// ---- JSON: enums ----------------------------------------------------------------------------

void to_json(json& out, Role value) { EnumToJson(out, RoleName(value)); }
void from_json(const json& in, Role& value) { EnumFromJson(in, value, ParseRole); }
void to_json(json& out, ChangeSource value) { EnumToJson(out, ChangeSourceName(value)); }
void from_json(const json& in, ChangeSource& value) { EnumFromJson(in, value, ParseChangeSource); }
void to_json(json& out, ChangeValidation value) { EnumToJson(out, ChangeValidationName(value)); }
void from_json(const json& in, ChangeValidation& value) {
  EnumFromJson(in, value, ParseChangeValidation);
}
void to_json(json& out, Severity value) { EnumToJson(out, SeverityName(value)); }
void from_json(const json& in, Severity& value) { EnumFromJson(in, value, ParseSeverity); }
void to_json(json& out, IncidentState value) { EnumToJson(out, IncidentStateName(value)); }
void from_json(const json& in, IncidentState& value) {
  EnumFromJson(in, value, ParseIncidentState);
}
void to_json(json& out, DecisionKind value) { EnumToJson(out, DecisionKindName(value)); }
void from_json(const json& in, DecisionKind& value) { EnumFromJson(in, value, ParseDecisionKind); }
void to_json(json& out, RollbackOutcome value) { EnumToJson(out, RollbackOutcomeName(value)); }
void from_json(const json& in, RollbackOutcome& value) {
  EnumFromJson(in, value, ParseRollbackOutcome);
}
void to_json(json& out, ObservationResult value) { EnumToJson(out, ObservationResultName(value)); }
void from_json(const json& in, ObservationResult& value) {
  EnumFromJson(in, value, ParseObservationResult);
}
void to_json(json& out, ValidationFinding value) { EnumToJson(out, ValidationFindingName(value)); }
void from_json(const json& in, ValidationFinding& value) {
  EnumFromJson(in, value, ParseValidationFinding);
}
void to_json(json& out, ActionItemStatus value) { EnumToJson(out, ActionItemStatusName(value)); }
void from_json(const json& in, ActionItemStatus& value) {
  EnumFromJson(in, value, ParseActionItemStatus);
}

// ---- JSON: structs --------------------------------------------------------------------------

void to_json(json& out, const User& value) {
  out = json::object();
  Put(out, "name", value.name);
  Put(out, "roles", value.roles);
  Put(out, "services", value.services);
  Put(out, "active", value.active);
}

void from_json(const json& in, User& value) {
  ObjectReader reader(in);
  reader.Read("name", value.name);
  reader.Read("roles", value.roles);
  reader.Read("services", value.services);
  reader.Read("active", value.active);
  reader.Finish();
}

void to_json(json& out, const Migration& value) {
  out = json::object();
  Put(out, "id", value.id);
  Put(out, "reversible", value.reversible);
}

void from_json(const json& in, Migration& value) {
  ObjectReader reader(in);
  reader.Read("id", value.id);
  reader.Read("reversible", value.reversible);
  reader.Finish();
}

void to_json(json& out, const Verification& value) {
  out = json::object();
  Put(out, "passed", value.passed);
  Put(out, "verified_by", value.verified_by);
  Put(out, "verified_at", value.verified_at);
  Put(out, "detail", value.detail);
}

void from_json(const json& in, Verification& value) {
  ObjectReader reader(in);
  reader.Read("passed", value.passed);
  reader.Read("verified_by", value.verified_by);
  reader.Read("verified_at", value.verified_at);
  reader.Read("detail", value.detail);
  reader.Finish();
}

void to_json(json& out, const Change& value) {
  out = json::object();
  Put(out, "id", value.id);
  Put(out, "service", value.service);
  Put(out, "environment", value.environment);
  Put(out, "version", value.version);
  Put(out, "previous_version", value.previous_version);
  Put(out, "external_ticket", value.external_ticket);
  Put(out, "approver", value.approver);
  Put(out, "deployer", value.deployer);
  Put(out, "time", value.time);
  Put(out, "risk", value.risk);
  Put(out, "migrations", value.migrations);
  Put(out, "source", value.source);
  Put(out, "recorded_by", value.recorded_by);
  Put(out, "validated", value.validated);
  Put(out, "verification", value.verification);
}

void from_json(const json& in, Change& value) {
  ObjectReader reader(in);
  reader.Read("id", value.id);
  reader.Read("service", value.service);
  reader.Read("environment", value.environment);
  reader.Read("version", value.version);
  reader.Read("previous_version", value.previous_version);
  reader.Read("external_ticket", value.external_ticket);
  reader.Read("approver", value.approver);
  reader.Read("deployer", value.deployer);
  reader.Read("time", value.time);
  reader.Read("risk", value.risk);
  reader.Read("migrations", value.migrations);
  reader.Read("source", value.source);
  reader.Read("recorded_by", value.recorded_by);
  reader.Read("validated", value.validated);
  reader.Read("verification", value.verification);
  reader.Finish();
}

void to_json(json& out, const Trigger& value) {
  out = json::object();
  Put(out, "kind", value.kind);
  Put(out, "source", value.source);
  Put(out, "detail", value.detail);
}

void from_json(const json& in, Trigger& value) {
  ObjectReader reader(in);
  reader.Read("kind", value.kind);
  reader.Read("source", value.source);
  reader.Read("detail", value.detail);
  reader.Finish();
}

void to_json(json& out, const TimelineEvent& value) {
  out = json::object();
  Put(out, "time", value.time);
  Put(out, "actor", value.actor);
  Put(out, "kind", value.kind);
  Put(out, "detail", value.detail);
}

void from_json(const json& in, TimelineEvent& value) {
  ObjectReader reader(in);
  reader.Read("time", value.time);
  reader.Read("actor", value.actor);
  reader.Read("kind", value.kind);
  reader.Read("detail", value.detail);
  reader.Finish();
}

void to_json(json& out, const Attachment& value) {
  out = json::object();
  Put(out, "name", value.name);
  Put(out, "sha256", value.sha256);
  Put(out, "size", value.size);
  Put(out, "added_by", value.added_by);
  Put(out, "added_at", value.added_at);
}

void from_json(const json& in, Attachment& value) {
  ObjectReader reader(in);
  reader.Read("name", value.name);
  reader.Read("sha256", value.sha256);
  reader.Read("size", value.size);
  reader.Read("added_by", value.added_by);
  reader.Read("added_at", value.added_at);
  reader.Finish();
}

void to_json(json& out, const DataImplication& value) {
  out = json::object();
  Put(out, "change_id", value.change_id);
  Put(out, "migration_id", value.migration_id);
  Put(out, "reversible", value.reversible);
  Put(out, "blocking", value.blocking);
  Put(out, "detail", value.detail);
}

void from_json(const json& in, DataImplication& value) {
  ObjectReader reader(in);
  reader.Read("change_id", value.change_id);
  reader.Read("migration_id", value.migration_id);
  reader.Read("reversible", value.reversible);
  reader.Read("blocking", value.blocking);
  reader.Read("detail", value.detail);
  reader.Finish();
}

void to_json(json& out, const Precondition& value) {
  out = json::object();
  Put(out, "name", value.name);
  Put(out, "satisfied", value.satisfied);
  Put(out, "detail", value.detail);
}

void from_json(const json& in, Precondition& value) {
  ObjectReader reader(in);
  reader.Read("name", value.name);
  reader.Read("satisfied", value.satisfied);
  reader.Read("detail", value.detail);
  reader.Finish();
}

void to_json(json& out, const Assessment& value) {
  out = json::object();
  Put(out, "service", value.service);
  Put(out, "affected_services", value.affected_services);
  Put(out, "customer_facing", value.customer_facing);
  Put(out, "target_version", value.target_version);
  Put(out, "target_change_id", value.target_change_id);
  Put(out, "target_rule", value.target_rule);
  Put(out, "data_implications", value.data_implications);
  Put(out, "preconditions", value.preconditions);
  Put(out, "expected_downtime_seconds", value.expected_downtime);
  Put(out, "plan", value.plan);
  Put(out, "assessed_by", value.assessed_by);
  Put(out, "assessed_at", value.assessed_at);
  Put(out, "digest", value.digest);
}

void from_json(const json& in, Assessment& value) {
  ObjectReader reader(in);
  reader.Read("service", value.service);
  reader.Read("affected_services", value.affected_services);
  reader.Read("customer_facing", value.customer_facing);
  reader.Read("target_version", value.target_version);
  reader.Read("target_change_id", value.target_change_id);
  reader.Read("target_rule", value.target_rule);
  reader.Read("data_implications", value.data_implications);
  reader.Read("preconditions", value.preconditions);
  reader.Read("expected_downtime_seconds", value.expected_downtime);
  reader.Read("plan", value.plan);
  reader.Read("assessed_by", value.assessed_by);
  reader.Read("assessed_at", value.assessed_at);
  reader.Read("digest", value.digest);
  reader.Finish();
}

void to_json(json& out, const Decision& value) {
  out = json::object();
  Put(out, "kind", value.kind);
  Put(out, "decider", value.decider);
  Put(out, "time", value.time);
  Put(out, "reason", value.reason);
  Put(out, "approved_digest", value.approved_digest);
  Put(out, "override_reason", value.override_reason);
  Put(out, "retroactive", value.retroactive);
}

void from_json(const json& in, Decision& value) {
  ObjectReader reader(in);
  reader.Read("kind", value.kind);
  reader.Read("decider", value.decider);
  reader.Read("time", value.time);
  reader.Read("reason", value.reason);
  reader.Read("approved_digest", value.approved_digest);
  reader.Read("override_reason", value.override_reason);
  reader.Read("retroactive", value.retroactive);
  reader.Finish();
}

void to_json(json& out, const Confirmation& value) {
  out = json::object();
  Put(out, "happened", value.happened);
  Put(out, "confirmed_by", value.confirmed_by);
  Put(out, "confirmed_at", value.confirmed_at);
  Put(out, "reason", value.reason);
}

void from_json(const json& in, Confirmation& value) {
  ObjectReader reader(in);
  reader.Read("happened", value.happened);
  reader.Read("confirmed_by", value.confirmed_by);
  reader.Read("confirmed_at", value.confirmed_at);
  reader.Read("reason", value.reason);
  reader.Finish();
}

void to_json(json& out, const Rollback& value) {
  out = json::object();
  Put(out, "job_id", value.job_id);
  Put(out, "plan_digest", value.plan_digest);
  Put(out, "provider", value.provider);
  Put(out, "target_version", value.target_version);
  Put(out, "target_rule", value.target_rule);
  Put(out, "approver", value.approver);
  Put(out, "executor", value.executor);
  Put(out, "emergency", value.emergency);
  Put(out, "emergency_reason", value.emergency_reason);
  Put(out, "requested_at", value.requested_at);
  Put(out, "started_at", value.started_at);
  Put(out, "finished_at", value.finished_at);
  Put(out, "outcome", value.outcome);
  Put(out, "message", value.message);
  Put(out, "transcript_ref", value.transcript_ref);
  Put(out, "read_back", value.read_back);
  Put(out, "confirmation", value.confirmation);
}

void from_json(const json& in, Rollback& value) {
  ObjectReader reader(in);
  reader.Read("job_id", value.job_id);
  reader.Read("plan_digest", value.plan_digest);
  reader.Read("provider", value.provider);
  reader.Read("target_version", value.target_version);
  reader.Read("target_rule", value.target_rule);
  reader.Read("approver", value.approver);
  reader.Read("executor", value.executor);
  reader.Read("emergency", value.emergency);
  reader.Read("emergency_reason", value.emergency_reason);
  reader.Read("requested_at", value.requested_at);
  reader.Read("started_at", value.started_at);
  reader.Read("finished_at", value.finished_at);
  reader.Read("outcome", value.outcome);
  reader.Read("message", value.message);
  reader.Read("transcript_ref", value.transcript_ref);
  reader.Read("read_back", value.read_back);
  reader.Read("confirmation", value.confirmation);
  reader.Finish();
}

void to_json(json& out, const Observation& value) {
  out = json::object();
  Put(out, "check", value.check);
  Put(out, "kind", value.kind);
  Put(out, "result", value.result);
  Put(out, "detail", value.detail);
  Put(out, "observed_at", value.observed_at);
}

void from_json(const json& in, Observation& value) {
  ObjectReader reader(in);
  reader.Read("check", value.check);
  reader.Read("kind", value.kind);
  reader.Read("result", value.result);
  reader.Read("detail", value.detail);
  reader.Read("observed_at", value.observed_at);
  reader.Finish();
}

void to_json(json& out, const MetricSeries& value) {
  out = json::object();
  Put(out, "check", value.check);
  Put(out, "prometheus_url", value.prometheus_url);
  Put(out, "query", value.query);
  Put(out, "start", value.start);
  Put(out, "end", value.end);
  Put(out, "step_seconds", value.step_seconds);
  Put(out, "response_sha256", value.response_sha256);
  Put(out, "response_size", value.response_size);
  if (!value.condition.empty()) Put(out, "condition", value.condition);
}

void from_json(const json& in, MetricSeries& value) {
  ObjectReader reader(in);
  reader.Read("check", value.check);
  reader.Read("prometheus_url", value.prometheus_url);
  reader.Read("query", value.query);
  reader.Read("start", value.start);
  reader.Read("end", value.end);
  reader.Read("step_seconds", value.step_seconds);
  reader.Read("response_sha256", value.response_sha256);
  reader.Read("response_size", value.response_size);
  reader.Read("condition", value.condition);
  reader.Finish();
}

void to_json(json& out, const Validation& value) {
  out = json::object();
  Put(out, "job_id", value.job_id);
  Put(out, "rollback_job_id", value.rollback_job_id);
  Put(out, "requested_by", value.requested_by);
  Put(out, "started_at", value.started_at);
  Put(out, "finished_at", value.finished_at);
  Put(out, "observations", value.observations);
  Put(out, "finding", value.finding);
  if (!value.metric_series.empty()) Put(out, "metric_series", value.metric_series);
}

void from_json(const json& in, Validation& value) {
  ObjectReader reader(in);
  reader.Read("job_id", value.job_id);
  reader.Read("rollback_job_id", value.rollback_job_id);
  reader.Read("requested_by", value.requested_by);
  reader.Read("started_at", value.started_at);
  reader.Read("finished_at", value.finished_at);
  reader.Read("observations", value.observations);
  reader.Read("finding", value.finding);
  reader.Read("metric_series", value.metric_series);
  reader.Finish();
}

void to_json(json& out, const ActionItem& value) {
  out = json::object();
  Put(out, "id", value.id);
  Put(out, "incident_id", value.incident_id);
  Put(out, "title", value.title);
  Put(out, "owner", value.owner);
  Put(out, "due", value.due);
  Put(out, "status", value.status);
  Put(out, "evidence_link", value.evidence_link);
  Put(out, "reason", value.reason);
  Put(out, "created_by", value.created_by);
  Put(out, "created_at", value.created_at);
  Put(out, "completed_at", value.completed_at);
  Put(out, "completed_by", value.completed_by);
}

void from_json(const json& in, ActionItem& value) {
  ObjectReader reader(in);
  reader.Read("id", value.id);
  reader.Read("incident_id", value.incident_id);
  reader.Read("title", value.title);
  reader.Read("owner", value.owner);
  reader.Read("due", value.due);
  reader.Read("status", value.status);
  reader.Read("evidence_link", value.evidence_link);
  reader.Read("reason", value.reason);
  reader.Read("created_by", value.created_by);
  reader.Read("created_at", value.created_at);
  reader.Read("completed_at", value.completed_at);
  reader.Read("completed_by", value.completed_by);
  reader.Finish();
}

void to_json(json& out, const Incident& value) {
  out = json::object();
  Put(out, "id", value.id);
  Put(out, "service", value.service);
  Put(out, "environment", value.environment);
  Put(out, "severity", value.severity);
  Put(out, "title", value.title);
  Put(out, "state", value.state);
  Put(out, "suspected_change_id", value.suspected_change_id);
  Put(out, "suspected_change_reason", value.suspected_change_reason);
  Put(out, "external_ticket", value.external_ticket);
  Put(out, "trigger", value.trigger);
  Put(out, "opened_by", value.opened_by);
  Put(out, "opened_at", value.opened_at);
  Put(out, "assessment", value.assessment);
  Put(out, "decisions", value.decisions);
  Put(out, "rollbacks", value.rollbacks);
  Put(out, "validations", value.validations);
  Put(out, "root_cause", value.root_cause);
  Put(out, "contributing_factors", value.contributing_factors);
  Put(out, "attachments", value.attachments);
  Put(out, "review_markdown", value.review_markdown);
  Put(out, "review_written_by", value.review_written_by);
  Put(out, "review_written_at", value.review_written_at);
  Put(out, "action_items", value.action_items);
  Put(out, "no_action_reason", value.no_action_reason);
  Put(out, "emergency", value.emergency);
  Put(out, "timeline", value.timeline);
  Put(out, "closed_by", value.closed_by);
  Put(out, "closed_at", value.closed_at);
}

void from_json(const json& in, Incident& value) {
  ObjectReader reader(in);
  reader.Read("id", value.id);
  reader.Read("service", value.service);
  reader.Read("environment", value.environment);
  reader.Read("severity", value.severity);
  reader.Read("title", value.title);
  reader.Read("state", value.state);
  reader.Read("suspected_change_id", value.suspected_change_id);
  reader.Read("suspected_change_reason", value.suspected_change_reason);
  reader.Read("external_ticket", value.external_ticket);
  reader.Read("trigger", value.trigger);
  reader.Read("opened_by", value.opened_by);
  reader.Read("opened_at", value.opened_at);
  reader.Read("assessment", value.assessment);
  reader.Read("decisions", value.decisions);
  reader.Read("rollbacks", value.rollbacks);
  reader.Read("validations", value.validations);
  reader.Read("root_cause", value.root_cause);
  reader.Read("contributing_factors", value.contributing_factors);
  reader.Read("attachments", value.attachments);
  reader.Read("review_markdown", value.review_markdown);
  reader.Read("review_written_by", value.review_written_by);
  reader.Read("review_written_at", value.review_written_at);
  reader.Read("action_items", value.action_items);
  reader.Read("no_action_reason", value.no_action_reason);
  reader.Read("emergency", value.emergency);
  reader.Read("timeline", value.timeline);
  reader.Read("closed_by", value.closed_by);
  reader.Read("closed_at", value.closed_at);
  reader.Finish();
}

}  // namespace backout::core
