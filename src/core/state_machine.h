#pragma once

// The incident state machine: one table of state × action → next state and the roles allowed to
// act. The app layer calls Transition() before every lifecycle step; person-specific rules
// (service grants, separation of duties, break-glass) are in policy.h and apply on top of it.

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/domain.h"
#include "core/error.h"

namespace backout::core {

struct Policy;

enum class Action {
  kAssess,                // store an impact assessment and plan
  kDecideGo,              // approve the assessed plan
  kDecideNoGo,            // decide not to roll back; the incident goes to documenting
  kRollback,              // run the approved plan
  kRollbackEmergency,     // break-glass: run a rollback without (or beyond) the decision
  kRecordOutcome,         // system: a rollback job ended (needs ActionDetail::outcome)
  kConfirm,               // state whether an interrupted or pending rollback happened
  kValidate,              // run the service's recovery checks
  kRecordFinding,         // system: a validation job ended (needs ActionDetail::finding)
  kDocument,              // record root cause, contributing factors, attachments
  kWriteReview,           // store the post-incident review
  kAddActionItem,         // add an action item or an explicit "no action"
  kCompleteActionItem,    // mark an action item done or not_doing
  kClose,                 // close the incident (CheckClosure must pass too)
  kApproveRetroactively,  // a lead approves an emergency rollback after the fact
};
inline constexpr int kActionCount = 15;

std::string_view ActionName(Action action);  // "decide_go"
Result<Action> ParseAction(std::string_view text);
// Every action, in declaration order.
std::span<const Action> AllActions();
// Every incident state, in declaration order.
std::span<const IncidentState> AllIncidentStates();

// Inputs that decide the next state of record_outcome, record_finding and confirm.
struct ActionDetail {
  std::optional<RollbackOutcome> outcome = std::nullopt;    // record_outcome
  std::optional<ValidationFinding> finding = std::nullopt;  // record_finding
  std::optional<bool> happened = std::nullopt;  // confirm: --happened or --did-not-happen
};

// Returns the state after `action` on an incident in `state` by a caller holding `roles`, or:
// - kFailedPrecondition when `state` does not allow `action`, naming the state and the actions it
//   allows with their roles;
// - kPermissionDenied when no role in `roles` may take `action`, naming the roles that may;
// - kInvalidArgument when record_outcome, record_finding or confirm lacks its ActionDetail field.
// The roles for decide_go, decide_no_go and approve_retroactively come from
// Policy::decider_roles; those for rollback, rollback_emergency come from Policy::executor_roles.
// No role bypasses the table: admin alone may take no lifecycle action.
Result<IncidentState> Transition(IncidentState state, Action action, std::span<const Role> roles,
                                 const Policy& policy, const ActionDetail& detail = {});

// The same with the default Policy.
Result<IncidentState> Transition(IncidentState state, Action action, std::span<const Role> roles,
                                 const ActionDetail& detail = {});

// Returns the actions `state` allows, in declaration order, regardless of role.
std::vector<Action> AllowedActions(IncidentState state);

// The roles that may take `action` under `policy` (in any state that allows it).
std::vector<Role> RolesFor(Action action, const Policy& policy);

}  // namespace backout::core
