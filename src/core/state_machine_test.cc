#include "core/state_machine.h"

#include <map>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "core/policy.h"

namespace backout::core {
namespace {

// The expected lifecycle, written out by name apart from the implementation's table. With the
// detail passed by DetailForAll(), record_outcome reports rolled_back, record_finding reports
// recovered and confirm says the rollback happened.
const std::map<std::pair<std::string, std::string>, std::string> kExpectedMoves = {
    {{"open", "assess"}, "assessing"},
    {{"open", "rollback_emergency"}, "rolling_back"},
    {{"assessing", "assess"}, "assessing"},
    {{"assessing", "decide_go"}, "decided"},
    {{"assessing", "decide_no_go"}, "documenting"},
    {{"assessing", "rollback_emergency"}, "rolling_back"},
    {{"assessing", "approve_retroactively"}, "assessing"},
    {{"decided", "assess"}, "assessing"},
    {{"decided", "decide_no_go"}, "documenting"},
    {{"decided", "rollback"}, "rolling_back"},
    {{"decided", "rollback_emergency"}, "rolling_back"},
    {{"decided", "approve_retroactively"}, "decided"},
    {{"rolling_back", "record_outcome"}, "validating"},
    {{"rolling_back", "confirm"}, "validating"},
    {{"rolling_back", "approve_retroactively"}, "rolling_back"},
    {{"validating", "validate"}, "validating"},
    {{"validating", "record_finding"}, "documenting"},
    {{"validating", "approve_retroactively"}, "validating"},
    {{"documenting", "document"}, "documenting"},
    {{"documenting", "write_review"}, "documenting"},
    {{"documenting", "add_action_item"}, "documenting"},
    {{"documenting", "complete_action_item"}, "documenting"},
    {{"documenting", "approve_retroactively"}, "documenting"},
    {{"documenting", "close"}, "closed"},
    {{"closed", "add_action_item"}, "closed"},
    {{"closed", "complete_action_item"}, "closed"},
    {{"closed", "approve_retroactively"}, "closed"},
};

// The roles allowed each action under the default policy.
const std::map<std::string, std::set<std::string>> kExpectedRoles = {
    {"assess", {"engineering-lead"}},
    {"decide_go", {"engineering-lead"}},
    {"decide_no_go", {"engineering-lead"}},
    {"rollback", {"devops-engineer"}},
    {"rollback_emergency", {"devops-engineer"}},
    {"record_outcome", {"system"}},
    {"confirm", {"devops-engineer", "engineering-lead"}},
    {"validate", {"engineering-lead"}},
    {"record_finding", {"system"}},
    {"document", {"engineering-lead", "devops-engineer"}},
    {"write_review", {"engineering-lead"}},
    {"add_action_item", {"engineering-lead", "devops-engineer"}},
    {"complete_action_item", {"engineering-lead", "devops-engineer"}},
    {"close", {"engineering-lead"}},
    {"approve_retroactively", {"engineering-lead"}},
};

constexpr Role kAllRoles[] = {Role::kAdmin,   Role::kEngineeringLead, Role::kDevopsEngineer,
                              Role::kAuditor, Role::kViewer,          Role::kCi,
                              Role::kSystem};

ActionDetail DetailForAll() {
  return ActionDetail{RollbackOutcome::kRolledBack, ValidationFinding::kRecovered, true};
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(StateMachineTest, EveryStateActionRoleTriple) {
  ASSERT_EQ(AllIncidentStates().size(), 7u);
  ASSERT_EQ(AllActions().size(), kExpectedRoles.size());

  int checked = 0;
  for (const IncidentState state : AllIncidentStates()) {
    for (const Action action : AllActions()) {
      for (const Role role : kAllRoles) {
        const std::string state_name(IncidentStateName(state));
        const std::string action_name(ActionName(action));
        const std::string role_name(RoleName(role));
        SCOPED_TRACE(state_name + " × " + action_name + " × " + role_name);
        const Role roles[] = {role};
        const auto result = Transition(state, action, roles, DetailForAll());
        ++checked;

        const auto move = kExpectedMoves.find({state_name, action_name});
        if (move == kExpectedMoves.end()) {
          ASSERT_FALSE(result.has_value()) << "went to " << IncidentStateName(*result);
          EXPECT_EQ(result.error().code, ErrorCode::kFailedPrecondition);
          EXPECT_TRUE(Contains(result.error().message, state_name)) << result.error().message;
          continue;
        }
        if (!kExpectedRoles.at(action_name).contains(role_name)) {
          ASSERT_FALSE(result.has_value()) << "went to " << IncidentStateName(*result);
          EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
          for (const auto& needed : kExpectedRoles.at(action_name)) {
            EXPECT_TRUE(Contains(result.error().message, needed)) << result.error().message;
          }
          continue;
        }
        ASSERT_TRUE(result.has_value()) << result.error().message;
        EXPECT_EQ(IncidentStateName(*result), move->second);
      }
    }
  }
  EXPECT_EQ(checked, 7 * 15 * 7);
}

TEST(StateMachineTest, RefusalNamesStateAndAllowedActions) {
  const Role roles[] = {Role::kEngineeringLead};
  const auto result = Transition(IncidentState::kOpen, Action::kClose, roles);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(result.error().message,
            "cannot close while the incident is open; allowed actions in state open: assess "
            "(engineering-lead), rollback_emergency (devops-engineer)");
}

TEST(StateMachineTest, AllowedActionsListedForEveryState) {
  for (const IncidentState state : AllIncidentStates()) {
    const std::string state_name(IncidentStateName(state));
    std::set<std::string> expected;
    for (const auto& [key, next] : kExpectedMoves) {
      if (key.first == state_name) expected.insert(key.second);
    }
    std::set<std::string> actual;
    for (const Action action : AllowedActions(state)) actual.emplace(ActionName(action));
    EXPECT_EQ(actual, expected) << state_name;
  }
}

TEST(StateMachineTest, PermissionRefusalNamesRoles) {
  const Role roles[] = {Role::kViewer, Role::kAuditor};
  const auto result = Transition(IncidentState::kDecided, Action::kRollback, roles);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(result.error().message,
            "rollback needs the role devops-engineer; the caller has viewer, auditor");
}

TEST(StateMachineTest, NoRolesIsRefused) {
  const auto result = Transition(IncidentState::kOpen, Action::kAssess, std::span<const Role>{});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "has no role")) << result.error().message;
}

TEST(StateMachineTest, AdminBypassesNothing) {
  const Role admin[] = {Role::kAdmin};
  for (const IncidentState state : AllIncidentStates()) {
    for (const Action action : AllowedActions(state)) {
      const auto result = Transition(state, action, admin, DetailForAll());
      ASSERT_FALSE(result.has_value()) << ActionName(action);
      EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied) << ActionName(action);
    }
  }
}

TEST(StateMachineTest, AnyHeldRoleSuffices) {
  const Role roles[] = {Role::kViewer, Role::kDevopsEngineer};
  const auto result = Transition(IncidentState::kDecided, Action::kRollback, roles);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(*result, IncidentState::kRollingBack);
}

TEST(StateMachineTest, EveryOutcomeLeadsToDesignedState) {
  const std::map<std::string, std::string> expected = {
      {"rolled_back", "validating"},
      {"skipped_noop", "validating"},
      {"no_rollback_target", "assessing"},
      {"precondition_failed", "assessing"},
      {"pending_approval", "rolling_back"},
      {"partial", "assessing"},
      {"failed", "assessing"},
      {"reverted_by_controller", "assessing"},
      {"interrupted", "rolling_back"},
  };
  const Role system[] = {Role::kSystem};
  for (const auto& [outcome_name, next] : expected) {
    const auto outcome = ParseRollbackOutcome(outcome_name);
    ASSERT_TRUE(outcome.has_value()) << outcome_name;
    EXPECT_EQ(IncidentStateName(NextStateAfter(*outcome)), next) << outcome_name;
    const auto result = Transition(IncidentState::kRollingBack, Action::kRecordOutcome, system,
                                   ActionDetail{.outcome = *outcome});
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(IncidentStateName(*result), next) << outcome_name;
  }
}

TEST(StateMachineTest, EveryFindingLeadsToDesignedState) {
  const Role system[] = {Role::kSystem};
  const std::tuple<ValidationFinding, IncidentState> cases[] = {
      {ValidationFinding::kRecovered, IncidentState::kDocumenting},
      {ValidationFinding::kNotRecovered, IncidentState::kAssessing},
      {ValidationFinding::kNotValidated, IncidentState::kAssessing},
  };
  for (const auto& [finding, next] : cases) {
    const auto result = Transition(IncidentState::kValidating, Action::kRecordFinding, system,
                                   ActionDetail{.finding = finding});
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(*result, next) << ValidationFindingName(finding);
  }
}

TEST(StateMachineTest, ConfirmDidNotHappenReturnsToAssessing) {
  const Role roles[] = {Role::kDevopsEngineer};
  const auto result = Transition(IncidentState::kRollingBack, Action::kConfirm, roles,
                                 ActionDetail{.happened = false});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(*result, IncidentState::kAssessing);
}

TEST(StateMachineTest, MissingDetailIsInvalidArgument) {
  const Role system[] = {Role::kSystem};
  const Role lead[] = {Role::kEngineeringLead};
  const std::tuple<IncidentState, Action, std::span<const Role>> cases[] = {
      {IncidentState::kRollingBack, Action::kRecordOutcome, system},
      {IncidentState::kValidating, Action::kRecordFinding, system},
      {IncidentState::kRollingBack, Action::kConfirm, lead},
  };
  for (const auto& [state, action, roles] : cases) {
    const auto result = Transition(state, action, roles);
    ASSERT_FALSE(result.has_value()) << ActionName(action);
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << ActionName(action);
  }
}

TEST(StateMachineTest, PolicyChangesDeciderAndExecutorRoles) {
  Policy policy;
  policy.decider_roles = {Role::kDevopsEngineer};
  policy.executor_roles = {Role::kEngineeringLead};
  const Role lead[] = {Role::kEngineeringLead};
  const Role devops[] = {Role::kDevopsEngineer};

  EXPECT_TRUE(Transition(IncidentState::kAssessing, Action::kDecideGo, devops, policy));
  EXPECT_FALSE(Transition(IncidentState::kAssessing, Action::kDecideGo, lead, policy));
  EXPECT_TRUE(Transition(IncidentState::kDecided, Action::kRollback, lead, policy));
  EXPECT_FALSE(Transition(IncidentState::kDecided, Action::kRollback, devops, policy));
}

TEST(StateMachineTest, EmptyRoleListAllowsNobody) {
  Policy policy;
  policy.executor_roles = {};
  const Role devops[] = {Role::kDevopsEngineer};
  const auto result = Transition(IncidentState::kDecided, Action::kRollback, devops, policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "allowed to no role")) << result.error().message;
}

TEST(StateMachineTest, ActionNamesRoundTrip) {
  for (const Action action : AllActions()) {
    const auto parsed = ParseAction(ActionName(action));
    ASSERT_TRUE(parsed.has_value()) << ActionName(action);
    EXPECT_EQ(*parsed, action);
  }
  const auto unknown = ParseAction("rollforward");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_TRUE(Contains(unknown.error().message, "'rollforward'")) << unknown.error().message;
}

}  // namespace
}  // namespace backout::core
