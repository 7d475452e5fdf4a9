#include "core/state_machine.h"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "core/policy.h"

namespace backout::core {
namespace {

using enum IncidentState;

constexpr std::array<std::pair<Action, std::string_view>, kActionCount> kActionNames{{
    {Action::kAssess, "assess"},
    {Action::kDecideGo, "decide_go"},
    {Action::kDecideNoGo, "decide_no_go"},
    {Action::kRollback, "rollback"},
    {Action::kRollbackEmergency, "rollback_emergency"},
    {Action::kRecordOutcome, "record_outcome"},
    {Action::kConfirm, "confirm"},
    {Action::kValidate, "validate"},
    {Action::kRecordFinding, "record_finding"},
    {Action::kDocument, "document"},
    {Action::kWriteReview, "write_review"},
    {Action::kAddActionItem, "add_action_item"},
    {Action::kCompleteActionItem, "complete_action_item"},
    {Action::kClose, "close"},
    {Action::kApproveRetroactively, "approve_retroactively"},
}};

constexpr std::array<Action, kActionCount> kActions = [] {
  std::array<Action, kActionCount> actions{};
  for (size_t i = 0; i < kActionNames.size(); ++i) actions[i] = kActionNames[i].first;
  return actions;
}();

constexpr std::array<IncidentState, 7> kStates{kOpen,       kAssessing,   kDecided, kRollingBack,
                                               kValidating, kDocumenting, kClosed};

// One allowed move. An empty `next` means the next state comes from ActionDetail: the rollback
// outcome, the validation finding, or whether an interrupted rollback happened.
struct Move {
  IncidentState state;
  Action action;
  std::optional<IncidentState> next;
};

constexpr Move kMoves[] = {
    {kOpen, Action::kAssess, kAssessing},
    {kOpen, Action::kRollbackEmergency, kRollingBack},

    {kAssessing, Action::kAssess, kAssessing},
    {kAssessing, Action::kDecideGo, kDecided},
    {kAssessing, Action::kDecideNoGo, kDocumenting},
    {kAssessing, Action::kRollbackEmergency, kRollingBack},
    {kAssessing, Action::kApproveRetroactively, kAssessing},

    // Re-assessing withdraws the go decision, because it approved a digest that is now stale.
    {kDecided, Action::kAssess, kAssessing},
    {kDecided, Action::kDecideNoGo, kDocumenting},
    {kDecided, Action::kRollback, kRollingBack},
    {kDecided, Action::kRollbackEmergency, kRollingBack},
    {kDecided, Action::kApproveRetroactively, kDecided},

    {kRollingBack, Action::kRecordOutcome, std::nullopt},
    {kRollingBack, Action::kConfirm, std::nullopt},
    {kRollingBack, Action::kApproveRetroactively, kRollingBack},

    {kValidating, Action::kValidate, kValidating},
    {kValidating, Action::kRecordFinding, std::nullopt},
    {kValidating, Action::kApproveRetroactively, kValidating},

    {kDocumenting, Action::kDocument, kDocumenting},
    {kDocumenting, Action::kWriteReview, kDocumenting},
    {kDocumenting, Action::kAddActionItem, kDocumenting},
    {kDocumenting, Action::kCompleteActionItem, kDocumenting},
    {kDocumenting, Action::kApproveRetroactively, kDocumenting},
    {kDocumenting, Action::kClose, kClosed},

    // Action items are tracked to completion after the incident closes.
    {kClosed, Action::kAddActionItem, kClosed},
    {kClosed, Action::kCompleteActionItem, kClosed},
    {kClosed, Action::kApproveRetroactively, kClosed},
};

const Move* FindMove(IncidentState state, Action action) {
  for (const Move& move : kMoves) {
    if (move.state == state && move.action == action) return &move;
  }
  return nullptr;
}

std::string JoinRoles(std::span<const Role> roles, std::string_view separator) {
  std::string joined;
  for (const Role role : roles) {
    if (!joined.empty()) joined += separator;
    joined += RoleName(role);
  }
  return joined;
}

std::string DescribeAllowed(IncidentState state, const Policy& policy) {
  std::string text;
  for (const Action action : AllowedActions(state)) {
    if (!text.empty()) text += ", ";
    text += fmt::format("{} ({})", ActionName(action), JoinRoles(RolesFor(action, policy), " or "));
  }
  return text;
}

Result<IncidentState> NextFromDetail(Action action, const ActionDetail& detail) {
  switch (action) {
    case Action::kRecordOutcome:
      if (!detail.outcome) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "record_outcome needs the rollback outcome; pass ActionDetail::outcome");
      }
      return NextStateAfter(*detail.outcome);
    case Action::kRecordFinding:
      if (!detail.finding) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "record_finding needs the validation finding; pass ActionDetail::finding");
      }
      return NextStateAfter(*detail.finding);
    case Action::kConfirm:
      if (!detail.happened) {
        return MakeError(
            ErrorCode::kInvalidArgument,
            "confirm needs --happened or --did-not-happen; pass ActionDetail::happened");
      }
      // A rollback that happened is validated like rolled_back; one that did not is like failed.
      return *detail.happened ? kValidating : kAssessing;
    default:
      return MakeError(ErrorCode::kInternal, "action {} has no detail-dependent next state",
                       ActionName(action));
  }
}

}  // namespace

std::string_view ActionName(Action action) {
  for (const auto& [entry, name] : kActionNames) {
    if (entry == action) return name;
  }
  return "unknown";
}

Result<Action> ParseAction(std::string_view text) {
  std::string valid;
  for (const auto& [entry, name] : kActionNames) {
    if (name == text) return entry;
    valid += valid.empty() ? "" : ", ";
    valid += name;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown action '{}': expected one of {}", text,
                   valid);
}

std::span<const Action> AllActions() { return kActions; }

std::span<const IncidentState> AllIncidentStates() { return kStates; }

std::vector<Action> AllowedActions(IncidentState state) {
  std::vector<Action> allowed;
  for (const Action action : kActions) {
    if (FindMove(state, action) != nullptr) allowed.push_back(action);
  }
  return allowed;
}

std::vector<Role> RolesFor(Action action, const Policy& policy) {
  switch (action) {
    case Action::kAssess:
    case Action::kValidate:
    case Action::kWriteReview:
    case Action::kClose:
      return {Role::kEngineeringLead};
    case Action::kDecideGo:
    case Action::kDecideNoGo:
    case Action::kApproveRetroactively:
      return policy.decider_roles;
    case Action::kRollback:
    case Action::kRollbackEmergency:
      return policy.executor_roles;
    case Action::kConfirm: {
      std::vector<Role> roles = policy.executor_roles;
      for (const Role role : policy.decider_roles) {
        if (std::ranges::find(roles, role) == roles.end()) roles.push_back(role);
      }
      return roles;
    }
    case Action::kDocument:
    case Action::kAddActionItem:
    case Action::kCompleteActionItem:
      return {Role::kEngineeringLead, Role::kDevopsEngineer};
    case Action::kRecordOutcome:
    case Action::kRecordFinding:
      return {Role::kSystem};
  }
  return {};
}

Result<IncidentState> Transition(IncidentState state, Action action, std::span<const Role> roles,
                                 const Policy& policy, const ActionDetail& detail) {
  const Move* move = FindMove(state, action);
  if (move == nullptr) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "cannot {} while the incident is {}; allowed actions in state {}: {}",
                     ActionName(action), IncidentStateName(state), IncidentStateName(state),
                     DescribeAllowed(state, policy));
  }

  const std::vector<Role> needed = RolesFor(action, policy);
  const bool permitted = std::ranges::any_of(
      roles, [&](Role role) { return std::ranges::find(needed, role) != needed.end(); });
  if (!permitted) {
    const std::string held = roles.empty() ? std::string("no role") : JoinRoles(roles, ", ");
    if (needed.empty()) {
      return MakeError(ErrorCode::kPermissionDenied,
                       "{} is allowed to no role under the policy in force; the caller has {}",
                       ActionName(action), held);
    }
    return MakeError(ErrorCode::kPermissionDenied, "{} needs the role {}; the caller has {}",
                     ActionName(action), JoinRoles(needed, " or "), held);
  }

  if (move->next) return *move->next;
  return NextFromDetail(action, detail);
}

Result<IncidentState> Transition(IncidentState state, Action action, std::span<const Role> roles,
                                 const ActionDetail& detail) {
  static const Policy kDefaultPolicy;
  return Transition(state, action, roles, kDefaultPolicy, detail);
}

}  // namespace backout::core
