#include "core/policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>
#include <set>

#include <fmt/format.h>

#include "core/json_fields.h"

namespace backout::core {
namespace {

using json_fields::ObjectReader;
using json_fields::Put;

bool IsBlank(std::string_view text) {
  return std::ranges::all_of(text,
                             [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

bool HasAnyRole(const User& user, std::span<const Role> roles) {
  return std::ranges::any_of(roles, [&](Role role) { return user.HasRole(role); });
}

std::string JoinRoles(std::span<const Role> roles, std::string_view separator) {
  std::string joined;
  for (const Role role : roles) {
    if (!joined.empty()) joined += separator;
    joined += RoleName(role);
  }
  return joined.empty() ? std::string("no role") : joined;
}

std::string Join(std::span<const std::string> items) {
  std::string joined;
  for (const auto& item : items) {
    if (!joined.empty()) joined += ", ";
    joined += item;
  }
  return joined.empty() ? std::string("none") : joined;
}

// Changes in deployment order, as DeployedBefore defines it.
std::vector<Change> SortedByDeployment(std::span<const Change> changes) {
  std::vector<Change> sorted(changes.begin(), changes.end());
  std::ranges::sort(sorted, DeployedBefore);
  return sorted;
}

// The number at the end of a record id such as "CHG-12", or nullopt when it has none.
std::optional<int64_t> RecordNumber(std::string_view id) {
  const size_t dash = id.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == id.size()) return std::nullopt;
  int64_t number = 0;
  const char* end = id.data() + id.size();
  const auto [parsed_end, error] = std::from_chars(id.data() + dash + 1, end, number);
  if (error != std::errc{} || parsed_end != end) return std::nullopt;
  return number;
}

// The index of the suspected change, or of the latest change when none is named.
std::optional<size_t> SuspectIndex(const std::vector<Change>& sorted,
                                   std::optional<std::string_view> suspected_change_id) {
  if (!suspected_change_id) {
    if (sorted.empty()) return std::nullopt;
    return sorted.size() - 1;
  }
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].id == *suspected_change_id) return i;
  }
  return std::nullopt;
}

// The retroactive decision that approves `rollback`, if any: the first one at or after its
// request, by someone other than its executor.
const Decision* ApprovalOf(const Incident& incident, const Rollback& rollback) {
  for (const Decision& decision : incident.decisions) {
    if (decision.retroactive && decision.kind == DecisionKind::kGo &&
        decision.time >= rollback.requested_at && decision.decider != rollback.executor) {
      return &decision;
    }
  }
  return nullptr;
}

std::vector<const Rollback*> UnapprovedEmergencies(const Incident& incident) {
  std::vector<const Rollback*> unapproved;
  for (const Rollback& rollback : incident.rollbacks) {
    if (rollback.emergency && ApprovalOf(incident, rollback) == nullptr) {
      unapproved.push_back(&rollback);
    }
  }
  return unapproved;
}

constexpr std::pair<RetroactiveApproval, std::string_view> kApprovalNames[] = {
    {RetroactiveApproval::kNotNeeded, "not_needed"},
    {RetroactiveApproval::kPending, "pending"},
    {RetroactiveApproval::kOverdue, "overdue"},
    {RetroactiveApproval::kApprovedInTime, "approved_in_time"},
    {RetroactiveApproval::kApprovedLate, "approved_late"},
};

constexpr std::pair<Operation, std::string_view> kOperationNames[] = {
    {Operation::kOpenIncident, "open_incident"},
    {Operation::kRecordChange, "record_change"},
    {Operation::kVerifyChange, "verify_change"},
    {Operation::kRead, "read"},
    {Operation::kReadLedger, "read_ledger"},
    {Operation::kManageUsers, "manage_users"},
    {Operation::kUnfreezeService, "unfreeze_service"},
    {Operation::kReconcileService, "reconcile_service"},
    {Operation::kResolveDiscoveredRollback, "resolve_discovered_rollback"},
};

std::vector<Role> RolesForOperation(Operation operation, const Policy& policy) {
  using enum Role;
  switch (operation) {
    case Operation::kOpenIncident:
    case Operation::kReconcileService:
    case Operation::kResolveDiscoveredRollback:
      return {kEngineeringLead, kDevopsEngineer};
    case Operation::kRecordChange:
    case Operation::kVerifyChange:
      return {kCi, kEngineeringLead, kDevopsEngineer};
    case Operation::kRead:
      return {kAdmin, kEngineeringLead, kDevopsEngineer, kAuditor, kViewer};
    case Operation::kReadLedger:
      return {kAdmin, kEngineeringLead, kAuditor};
    case Operation::kManageUsers:
      return {kAdmin};
    case Operation::kUnfreezeService:
      return policy.decider_roles;
  }
  return {};
}

}  // namespace

// ---- JSON -----------------------------------------------------------------------------------

void to_json(nlohmann::json& out, const ClosureRequirements& value) {
  out = nlohmann::json::object();
  Put(out, "root_cause", value.root_cause);
  Put(out, "recovered_or_no_go", value.recovered_or_no_go);
  Put(out, "review", value.review);
  Put(out, "action_items", value.action_items);
  Put(out, "retroactive_approval", value.retroactive_approval);
}

void from_json(const nlohmann::json& in, ClosureRequirements& value) {
  ObjectReader reader(in);
  reader.Read("root_cause", value.root_cause);
  reader.Read("recovered_or_no_go", value.recovered_or_no_go);
  reader.Read("review", value.review);
  reader.Read("action_items", value.action_items);
  reader.Read("retroactive_approval", value.retroactive_approval);
  reader.Finish();
}

void to_json(nlohmann::json& out, const Policy& value) {
  out = nlohmann::json::object();
  Put(out, "separation_of_duties", value.separation_of_duties);
  Put(out, "decider_roles", value.decider_roles);
  Put(out, "executor_roles", value.executor_roles);
  Put(out, "break_glass_window_hours", value.break_glass_window);
  Put(out, "closure", value.closure);
  Put(out, "roster", value.roster);
}

void from_json(const nlohmann::json& in, Policy& value) {
  ObjectReader reader(in);
  reader.Read("separation_of_duties", value.separation_of_duties);
  reader.Read("decider_roles", value.decider_roles);
  reader.Read("executor_roles", value.executor_roles);
  reader.Read("break_glass_window_hours", value.break_glass_window);
  reader.Read("closure", value.closure);
  reader.Read("roster", value.roster);
  reader.Finish();
}

// ---- Who may act ----------------------------------------------------------------------------

Result<void> CheckOnRoster(const User& user, const Policy& policy) {
  if (!user.active) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "user {} is deactivated; an admin must reactivate it first", user.name);
  }

  const auto entry = std::ranges::find(policy.roster, user.name, &User::name);
  if (entry == policy.roster.end()) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "user {} is not on the approved roster; add it to `users` in the config "
                     "and reload",
                     user.name);
  }

  for (const Role role : user.roles) {
    if (!entry->HasRole(role)) {
      return MakeError(ErrorCode::kPermissionDenied,
                       "role {} of user {} is not on the approved roster, which lists {}; add it "
                       "to the user's roles in the config or revoke the grant",
                       RoleName(role), user.name, JoinRoles(entry->roles, ", "));
    }
  }
  for (const std::string& service : user.services) {
    if (!entry->HasService(service)) {
      return MakeError(ErrorCode::kPermissionDenied,
                       "service grant {} of user {} is not on the approved roster, which lists "
                       "services [{}]; add it to the user's services in the config or revoke "
                       "the grant",
                       service, user.name, Join(entry->services));
    }
  }
  return {};
}

Result<void> CanDecide(const User& user, const Incident& incident, const Policy& policy) {
  if (auto roster = CheckOnRoster(user, policy); !roster) return roster;
  if (!HasAnyRole(user, policy.decider_roles)) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "deciding go/no-go on {} needs the role {}; user {} has {}", incident.id,
                     JoinRoles(policy.decider_roles, " or "), user.name,
                     JoinRoles(user.roles, ", "));
  }
  return {};
}

Result<void> CanExecute(const User& user, std::string_view service, const Incident& incident,
                        const Policy& policy) {
  if (auto roster = CheckOnRoster(user, policy); !roster) return roster;

  if (!HasAnyRole(user, policy.executor_roles)) {
    return MakeError(
        ErrorCode::kPermissionDenied, "rolling back {} needs the role {}; user {} has {}", service,
        JoinRoles(policy.executor_roles, " or "), user.name, JoinRoles(user.roles, ", "));
  }
  if (!user.HasService(service)) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "user {} has no grant for service {}; an admin must grant it before they "
                     "roll it back",
                     user.name, service);
  }

  // The approver of the plan may not run it, whichever other roles they hold.
  const Decision* decision = incident.LatestDecision();
  if (policy.separation_of_duties && decision != nullptr && decision->kind == DecisionKind::kGo &&
      decision->decider == user.name) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "separation of duties: {} approved the rollback of {} on {} and may not "
                     "execute it; another executor granted {} must",
                     user.name, service, incident.id, service);
  }
  return {};
}

Result<void> CanExecuteEmergency(const User& user, std::string_view service,
                                 const Incident& incident, std::string_view reason,
                                 const Policy& policy) {
  if (IsBlank(reason)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "an emergency rollback of {} on {} needs a reason; pass --reason TEXT",
                     service, incident.id);
  }
  return CanExecute(user, service, incident, policy);
}

Result<void> CanApproveRetroactively(const User& user, const Incident& incident,
                                     const Policy& policy) {
  if (auto roster = CheckOnRoster(user, policy); !roster) return roster;
  if (!HasAnyRole(user, policy.decider_roles)) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "approving an emergency rollback on {} needs the role {}; user {} has {}",
                     incident.id, JoinRoles(policy.decider_roles, " or "), user.name,
                     JoinRoles(user.roles, ", "));
  }

  const auto unapproved = UnapprovedEmergencies(incident);
  if (unapproved.empty()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "incident {} has no emergency rollback waiting for approval", incident.id);
  }
  for (const Rollback* rollback : unapproved) {
    if (rollback->executor == user.name) {
      return MakeError(ErrorCode::kPermissionDenied,
                       "{} executed emergency rollback {} on {} and may not approve it; another "
                       "engineering lead must",
                       user.name, rollback->job_id, incident.id);
    }
  }
  return {};
}

std::string_view RetroactiveApprovalName(RetroactiveApproval approval) {
  for (const auto& [entry, name] : kApprovalNames) {
    if (entry == approval) return name;
  }
  return "unknown";
}

BreakGlassStatus RetroactiveApprovalStatus(const Incident& incident, const Policy& policy,
                                           Time now) {
  BreakGlassStatus status;
  std::optional<BreakGlassStatus> first_unapproved;
  std::optional<BreakGlassStatus> first_late;
  bool any_overdue = false;

  for (const Rollback& rollback : incident.rollbacks) {
    if (!rollback.emergency) continue;
    const Time due = rollback.requested_at + policy.break_glass_window;
    const Decision* approval = ApprovalOf(incident, rollback);
    if (approval == nullptr) {
      any_overdue = any_overdue || now > due;
      if (!first_unapproved) first_unapproved = BreakGlassStatus{{}, rollback.job_id, due};
    } else if (approval->time > due && !first_late) {
      first_late = BreakGlassStatus{RetroactiveApproval::kApprovedLate, rollback.job_id, due};
    }
    status.approval = RetroactiveApproval::kApprovedInTime;
  }

  if (first_unapproved) {
    status = *first_unapproved;
    status.approval = any_overdue ? RetroactiveApproval::kOverdue : RetroactiveApproval::kPending;
  } else if (first_late) {
    status = *first_late;
  }
  return status;
}

std::string_view OperationName(Operation operation) {
  for (const auto& [entry, name] : kOperationNames) {
    if (entry == operation) return name;
  }
  return "unknown";
}

Result<void> CheckOperation(const User& user, Operation operation, const Policy& policy) {
  if (auto roster = CheckOnRoster(user, policy); !roster) return roster;
  const std::vector<Role> roles = RolesForOperation(operation, policy);
  if (!HasAnyRole(user, roles)) {
    return MakeError(ErrorCode::kPermissionDenied, "{} needs the role {}; user {} has {}",
                     OperationName(operation), JoinRoles(roles, " or "), user.name,
                     JoinRoles(user.roles, ", "));
  }
  return {};
}

// ---- Decisions and closure ------------------------------------------------------------------

Result<void> CheckDecision(const Decision& decision, const Assessment& assessment) {
  if (IsBlank(decision.reason)) {
    return MakeError(ErrorCode::kInvalidArgument, "a {} decision needs a reason",
                     DecisionKindName(decision.kind));
  }
  if (decision.kind != DecisionKind::kGo || decision.retroactive) return {};

  if (decision.approved_digest.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a go decision needs the digest of the assessment it approves");
  }
  if (decision.approved_digest != assessment.digest) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the approved digest {} is not the current assessment's digest {}; the "
                     "assessment changed, so read it again and decide on the new digest",
                     decision.approved_digest, assessment.digest);
  }
  return CheckDataImplications(assessment.data_implications, decision.override_reason);
}

std::vector<std::string> UnmetClosureRequirements(const Incident& incident, const Policy& policy) {
  const ClosureRequirements& needs = policy.closure;
  std::vector<std::string> unmet;

  if (needs.root_cause && IsBlank(incident.root_cause)) {
    unmet.push_back("no root cause is recorded (incident document)");
  }

  if (needs.recovered_or_no_go) {
    const Validation* validation = incident.LatestValidation();
    const Decision* decision = incident.LatestDecision();
    const bool recovered =
        validation != nullptr && validation->finding == ValidationFinding::kRecovered;
    const bool no_go = decision != nullptr && decision->kind == DecisionKind::kNoGo;
    if (!recovered && !no_go) {
      unmet.push_back(
          "neither a recovered validation nor a no-go decision is recorded (incident validate, "
          "incident decide)");
    }
  }

  if (needs.review && IsBlank(incident.review_markdown)) {
    unmet.push_back("no post-incident review is stored (review write)");
  }

  if (needs.action_items) {
    const bool has_item = std::ranges::any_of(incident.action_items, [](const ActionItem& item) {
      return !IsBlank(item.owner) && item.due.has_value();
    });
    if (!has_item && IsBlank(incident.no_action_reason)) {
      unmet.push_back(
          "no action item with an owner and a due date, and no explicit no-action reason "
          "(action add)");
    }
  }

  if (needs.retroactive_approval) {
    for (const Rollback* rollback : UnapprovedEmergencies(incident)) {
      unmet.push_back(fmt::format(
          "emergency rollback {} by {} has no retroactive approval by another engineering lead",
          rollback->job_id, rollback->executor));
    }
  }
  return unmet;
}

Result<void> CheckClosure(const Incident& incident, const Policy& policy) {
  const std::vector<std::string> unmet = UnmetClosureRequirements(incident, policy);
  if (unmet.empty()) return {};

  std::string list;
  for (size_t i = 0; i < unmet.size(); ++i) {
    list += fmt::format("{}{}) {}", i == 0 ? "" : "; ", i + 1, unmet[i]);
  }
  return MakeError(ErrorCode::kFailedPrecondition,
                   "incident {} cannot close until {} requirement{} {} met: {}", incident.id,
                   unmet.size(), unmet.size() == 1 ? "" : "s", unmet.size() == 1 ? "is" : "are",
                   list);
}

Result<void> CheckActionItemCompletion(ActionItemStatus status, std::string_view evidence_link,
                                       std::string_view reason) {
  switch (status) {
    case ActionItemStatus::kOpen:
      return MakeError(ErrorCode::kInvalidArgument,
                       "completing an action item needs the status done or not_doing, not open");
    case ActionItemStatus::kDone:
      if (IsBlank(evidence_link)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "marking an action item done needs an evidence link");
      }
      return {};
    case ActionItemStatus::kNotDoing:
      if (IsBlank(reason)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "marking an action item not_doing needs a reason");
      }
      return {};
  }
  return {};
}

// ---- Target and data implications -----------------------------------------------------------

bool DeployedBefore(const Change& a, const Change& b) {
  if (a.time != b.time) return a.time < b.time;
  const std::optional<int64_t> a_number = RecordNumber(a.id);
  const std::optional<int64_t> b_number = RecordNumber(b.id);
  if (a_number.has_value() != b_number.has_value()) return a_number.has_value();
  if (a_number && *a_number != *b_number) return *a_number < *b_number;
  return a.id < b.id;
}

Result<TargetChoice> ChooseTarget(std::span<const Change> changes,
                                  std::optional<std::string_view> suspected_change_id) {
  const std::vector<Change> sorted = SortedByDeployment(changes);
  const std::optional<size_t> suspect = SuspectIndex(sorted, suspected_change_id);
  if (suspected_change_id && !suspect) {
    return MakeError(ErrorCode::kNotFound,
                     "suspected change {} is not among the {} recorded changes of the service; "
                     "link an existing change or record it first",
                     *suspected_change_id, sorted.size());
  }
  if (!suspect) {
    return TargetChoice{std::nullopt, "",
                        fmt::format("{}: no change of the service is recorded", kRuleProvider),
                        true};
  }

  const Change& suspected = sorted[*suspect];
  const std::string suspect_note =
      suspected_change_id ? ""
                          : fmt::format(
                                " (no suspected change is linked, so the latest change {} "
                                "counts as suspected)",
                                suspected.id);
  for (size_t i = *suspect; i-- > 0;) {
    const Change& candidate = sorted[i];
    if (candidate.environment != suspected.environment) continue;
    if (candidate.validated != ChangeValidation::kGood) continue;
    // A good change that deployed the suspect's own version would make the rollback a no-op.
    if (candidate.version == suspected.version) continue;
    return TargetChoice{
        candidate.id, candidate.version,
        fmt::format("{}{}: {} deployed {} at {}", kRuleLastValidatedGood, suspect_note,
                    candidate.id, candidate.version, FormatTime(candidate.time)),
        false};
  }
  return TargetChoice{
      std::nullopt, "",
      fmt::format("{}: no validated-good change of {} in {} before {} is known{}", kRuleProvider,
                  suspected.service, suspected.environment, suspected.id, suspect_note),
      true};
}

std::vector<DataImplication> FindDataImplications(
    std::span<const Change> changes, const TargetChoice& target,
    std::optional<std::string_view> suspected_change_id) {
  const std::vector<Change> sorted = SortedByDeployment(changes);
  const std::optional<size_t> suspect = SuspectIndex(sorted, suspected_change_id);
  if (!suspect) return {};
  const std::string& environment = sorted[*suspect].environment;

  // Under the provider rule the target is somewhere before the suspect, so start at the suspect.
  // NOTE: a provider rule that goes back further than one change can cross older migrations,
  // which this list then misses.
  size_t first = *suspect;
  if (target.change_id) {
    const auto it = std::ranges::find(sorted, *target.change_id, &Change::id);
    if (it != sorted.end()) first = static_cast<size_t>(it - sorted.begin()) + 1;
  }

  std::vector<DataImplication> implications;
  for (size_t i = first; i < sorted.size(); ++i) {
    const Change& change = sorted[i];
    if (change.environment != environment) continue;
    for (const Migration& migration : change.migrations) {
      DataImplication implication;
      implication.change_id = change.id;
      implication.migration_id = migration.id;
      implication.reversible = migration.reversible;
      implication.blocking = !migration.reversible;
      implication.detail =
          migration.reversible
              ? fmt::format(
                    "change {} ({}) ran reversible migration {}; Backout never runs "
                    "down-migrations, so revert it separately if the target needs it",
                    change.id, change.version, migration.id)
              : fmt::format(
                    "change {} ({}) ran irreversible migration {}; the target version "
                    "may not work with the migrated data",
                    change.id, change.version, migration.id);
      implications.push_back(std::move(implication));
    }
  }
  return implications;
}

Result<void> CheckDataImplications(std::span<const DataImplication> implications,
                                   std::string_view override_reason) {
  std::vector<std::string> blocking;
  for (const DataImplication& implication : implications) {
    if (implication.blocking) {
      blocking.push_back(
          fmt::format("{} (change {})", implication.migration_id, implication.change_id));
    }
  }
  if (blocking.empty() || !IsBlank(override_reason)) return {};
  return MakeError(ErrorCode::kFailedPrecondition,
                   "the rollback crosses irreversible migration{} {}; decide go only with an "
                   "override reason, or fix forward instead",
                   blocking.size() == 1 ? "" : "s", Join(blocking));
}

std::vector<std::string> AffectedServices(
    std::string_view service, const std::map<std::string, std::vector<std::string>>& depends_on) {
  std::set<std::string> affected{std::string(service)};
  std::deque<std::string> queue{std::string(service)};
  while (!queue.empty()) {
    const std::string current = queue.front();
    queue.pop_front();
    for (const auto& [dependent, dependencies] : depends_on) {
      if (std::ranges::find(dependencies, current) == dependencies.end()) continue;
      if (affected.insert(dependent).second) queue.push_back(dependent);
    }
  }
  return {affected.begin(), affected.end()};
}

// ---- Validation -----------------------------------------------------------------------------

ValidationFinding FindingFromObservations(std::span<const Observation> observations,
                                          Time rollback_finished_at) {
  bool beyond_readiness = false;
  for (const Observation& observation : observations) {
    // An observation from before the rollback finished cannot show the rolled-back version's
    // health, so it counts as a check that could not be evaluated.
    if (observation.result != ObservationResult::kPassed ||
        observation.observed_at <= rollback_finished_at) {
      return ValidationFinding::kNotRecovered;
    }
    if (observation.kind != kReadinessCheckKind) beyond_readiness = true;
  }
  return beyond_readiness ? ValidationFinding::kRecovered : ValidationFinding::kNotValidated;
}

}  // namespace backout::core
