#include "core/policy.h"

#include <string>

#include <gtest/gtest.h>

namespace backout::core {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

Time At(std::string_view text) { return ParseTime(text).value(); }

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

User Lead(std::string name) { return User{std::move(name), {Role::kEngineeringLead}, {}, true}; }

User Engineer(std::string name, std::vector<std::string> services) {
  return User{std::move(name), {Role::kDevopsEngineer}, std::move(services), true};
}

// A roster with two leads, two engineers on checkout, one on payments, a lead who is also an
// engineer on checkout, an admin, a viewer and a CI account.
Policy RosterPolicy() {
  Policy policy;
  policy.roster = {
      Lead("lead-1"),
      Lead("lead-2"),
      Engineer("sre-1", {"checkout"}),
      Engineer("sre-2", {"checkout"}),
      Engineer("sre-3", {"payments"}),
      User{"lead-sre", {Role::kEngineeringLead, Role::kDevopsEngineer}, {"checkout"}, true},
      User{"root",
           {Role::kAdmin, Role::kEngineeringLead, Role::kDevopsEngineer},
           {"checkout"},
           true},
      User{"watcher", {Role::kViewer}, {}, true},
      User{"pipeline", {Role::kCi}, {}, true},
  };
  return policy;
}

User RosterUser(const Policy& policy, std::string_view name) {
  for (const User& user : policy.roster) {
    if (user.name == name) return user;
  }
  ADD_FAILURE() << "no roster entry " << name;
  return {};
}

Incident DecidedIncident(std::string decider) {
  Incident incident;
  incident.id = "INC-1";
  incident.service = "checkout";
  incident.state = IncidentState::kDecided;
  incident.decisions.push_back(Decision{DecisionKind::kGo, std::move(decider),
                                        At("2026-03-01T10:00:00Z"), "error rate 40%", "d1", "",
                                        false});
  return incident;
}

Rollback EmergencyRollback(std::string job_id, std::string executor, Time requested_at) {
  Rollback rollback;
  rollback.job_id = std::move(job_id);
  rollback.executor = std::move(executor);
  rollback.emergency = true;
  rollback.emergency_reason = "checkout down, no lead reachable";
  rollback.requested_at = requested_at;
  return rollback;
}

Decision RetroactiveApproval(std::string decider, Time time) {
  return Decision{
      DecisionKind::kGo, std::move(decider), time, "emergency was justified", "", "", true};
}

// ---- Roster ---------------------------------------------------------------------------------

TEST(RosterTest, UserOnRosterPasses) {
  const Policy policy = RosterPolicy();
  EXPECT_TRUE(CheckOnRoster(Engineer("sre-1", {"checkout"}), policy));
}

TEST(RosterTest, UserNotOnRosterRefused) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(Engineer("intruder", {"checkout"}), "checkout", DecidedIncident("lead-1"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "intruder is not on the approved roster"))
      << result.error().message;
}

TEST(RosterTest, RoleGrantNotOnRosterRefused) {
  const Policy policy = RosterPolicy();
  User user = Engineer("sre-1", {"checkout"});
  user.roles.push_back(Role::kEngineeringLead);
  const auto result = CanDecide(user, DecidedIncident("lead-1"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "role engineering-lead of user sre-1"))
      << result.error().message;
}

TEST(RosterTest, ServiceGrantNotOnRosterRefused) {
  const Policy policy = RosterPolicy();
  const auto result = CanExecute(Engineer("sre-3", {"payments", "checkout"}), "checkout",
                                 DecidedIncident("lead-1"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "service grant checkout of user sre-3"))
      << result.error().message;
}

TEST(RosterTest, InactiveUserRefused) {
  const Policy policy = RosterPolicy();
  User user = Engineer("sre-1", {"checkout"});
  user.active = false;
  const auto result = CheckOnRoster(user, policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message, "deactivated")) << result.error().message;
}

// ---- Separation of duties and grants --------------------------------------------------------

TEST(SeparationOfDutiesTest, OtherExecutorMayRunApprovedPlan) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(RosterUser(policy, "sre-1"), "checkout", DecidedIncident("lead-1"), policy);
  EXPECT_TRUE(result.has_value()) << result.error().message;
}

TEST(SeparationOfDutiesTest, ApproverMayNotExecute) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(RosterUser(policy, "lead-sre"), "checkout", DecidedIncident("lead-sre"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "separation of duties")) << result.error().message;
}

TEST(SeparationOfDutiesTest, AdminApproverMayNotExecute) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(RosterUser(policy, "root"), "checkout", DecidedIncident("root"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message, "separation of duties")) << result.error().message;
}

TEST(SeparationOfDutiesTest, ApproverMayNotUseBreakGlassEither) {
  const Policy policy = RosterPolicy();
  const auto result = CanExecuteEmergency(RosterUser(policy, "lead-sre"), "checkout",
                                          DecidedIncident("lead-sre"), "urgent", policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message, "separation of duties")) << result.error().message;
}

TEST(SeparationOfDutiesTest, SwitchedOffAllowsApproverToExecute) {
  Policy policy = RosterPolicy();
  policy.separation_of_duties = false;
  const auto result =
      CanExecute(RosterUser(policy, "lead-sre"), "checkout", DecidedIncident("lead-sre"), policy);
  EXPECT_TRUE(result.has_value()) << result.error().message;
}

TEST(SeparationOfDutiesTest, NoGoDeciderIsNoApprover) {
  const Policy policy = RosterPolicy();
  Incident incident = DecidedIncident("lead-sre");
  incident.decisions.back().kind = DecisionKind::kNoGo;
  EXPECT_TRUE(CanExecute(RosterUser(policy, "lead-sre"), "checkout", incident, policy));
}

TEST(ServiceGrantTest, EngineerWithoutGrantRefused) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(RosterUser(policy, "sre-3"), "checkout", DecidedIncident("lead-1"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(result.error().message, "no grant for service checkout"))
      << result.error().message;
}

TEST(ServiceGrantTest, EngineerWithGrantAllowedOnThatService) {
  const Policy policy = RosterPolicy();
  Incident incident = DecidedIncident("lead-1");
  incident.service = "payments";
  EXPECT_TRUE(CanExecute(RosterUser(policy, "sre-3"), "payments", incident, policy));
}

TEST(ServiceGrantTest, NonExecutorRoleRefused) {
  const Policy policy = RosterPolicy();
  const auto result =
      CanExecute(RosterUser(policy, "lead-2"), "checkout", DecidedIncident("lead-1"), policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message, "needs the role devops-engineer"))
      << result.error().message;
}

TEST(DeciderTest, LeadMayDecideEngineerMayNot) {
  const Policy policy = RosterPolicy();
  const Incident incident = DecidedIncident("lead-1");
  EXPECT_TRUE(CanDecide(RosterUser(policy, "lead-2"), incident, policy));
  const auto refused = CanDecide(RosterUser(policy, "sre-1"), incident, policy);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
}

TEST(OperationTest, RolesPerOperation) {
  const Policy policy = RosterPolicy();
  const User ci = RosterUser(policy, "pipeline");
  const User viewer = RosterUser(policy, "watcher");
  const User admin = RosterUser(policy, "root");

  EXPECT_TRUE(CheckOperation(ci, Operation::kRecordChange, policy));
  EXPECT_TRUE(CheckOperation(ci, Operation::kVerifyChange, policy));
  EXPECT_FALSE(CheckOperation(ci, Operation::kRead, policy));
  EXPECT_FALSE(CheckOperation(ci, Operation::kOpenIncident, policy));
  EXPECT_TRUE(CheckOperation(viewer, Operation::kRead, policy));
  EXPECT_FALSE(CheckOperation(viewer, Operation::kManageUsers, policy));
  EXPECT_TRUE(CheckOperation(admin, Operation::kManageUsers, policy));
  EXPECT_TRUE(CheckOperation(RosterUser(policy, "lead-1"), Operation::kUnfreezeService, policy));
  EXPECT_FALSE(CheckOperation(RosterUser(policy, "sre-1"), Operation::kUnfreezeService, policy));
}

// ---- Break-glass ----------------------------------------------------------------------------

TEST(BreakGlassTest, EmergencyNeedsReason) {
  const Policy policy = RosterPolicy();
  Incident incident = DecidedIncident("lead-1");
  incident.decisions.clear();
  const auto result =
      CanExecuteEmergency(RosterUser(policy, "sre-1"), "checkout", incident, "  ", policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(result.error().message, "needs a reason")) << result.error().message;
}

TEST(BreakGlassTest, EmergencyWithReasonAllowed) {
  const Policy policy = RosterPolicy();
  Incident incident = DecidedIncident("lead-1");
  incident.decisions.clear();
  EXPECT_TRUE(
      CanExecuteEmergency(RosterUser(policy, "sre-1"), "checkout", incident, "site down", policy));
}

TEST(BreakGlassTest, NoEmergencyNeedsNoApproval) {
  const BreakGlassStatus status =
      RetroactiveApprovalStatus(DecidedIncident("lead-1"), Policy{}, At("2026-03-05T00:00:00Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kNotNeeded);
}

TEST(BreakGlassTest, PendingWithinWindow) {
  Incident incident;
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));
  const BreakGlassStatus status =
      RetroactiveApprovalStatus(incident, Policy{}, At("2026-03-02T09:59:59Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kPending);
  EXPECT_EQ(status.rollback_job_id, "JOB-1");
  ASSERT_TRUE(status.due.has_value());
  EXPECT_EQ(FormatTime(*status.due), "2026-03-02T10:00:00.000000Z");
}

TEST(BreakGlassTest, OverdueAfterWindow) {
  Incident incident;
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));
  const BreakGlassStatus status =
      RetroactiveApprovalStatus(incident, Policy{}, At("2026-03-02T10:00:01Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kOverdue);
}

TEST(BreakGlassTest, WindowFollowsPolicy) {
  Policy policy;
  policy.break_glass_window = hours(2);
  Incident incident;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));
  EXPECT_EQ(RetroactiveApprovalStatus(incident, policy, At("2026-03-01T12:30:00Z")).approval,
            RetroactiveApproval::kOverdue);
}

TEST(BreakGlassTest, TimelyApprovalByOtherLead) {
  const Policy policy = RosterPolicy();
  Incident incident;
  incident.id = "INC-7";
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));

  EXPECT_TRUE(CanApproveRetroactively(RosterUser(policy, "lead-1"), incident, policy));
  incident.decisions.push_back(RetroactiveApproval("lead-1", At("2026-03-01T15:00:00Z")));

  const BreakGlassStatus status =
      RetroactiveApprovalStatus(incident, policy, At("2026-03-03T00:00:00Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kApprovedInTime);
}

TEST(BreakGlassTest, ExecutorMayNotApproveOwnEmergency) {
  const Policy policy = RosterPolicy();
  Incident incident;
  incident.id = "INC-7";
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));

  const auto refused = CanApproveRetroactively(RosterUser(policy, "lead-sre"), incident, policy);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Contains(refused.error().message, "lead-sre executed emergency rollback JOB-1"))
      << refused.error().message;

  // Even if stored, a self-approval does not count.
  incident.decisions.push_back(RetroactiveApproval("lead-sre", At("2026-03-01T11:00:00Z")));
  EXPECT_EQ(RetroactiveApprovalStatus(incident, policy, At("2026-03-01T12:00:00Z")).approval,
            RetroactiveApproval::kPending);
}

TEST(BreakGlassTest, EngineerMayNotApprove) {
  const Policy policy = RosterPolicy();
  Incident incident;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "sre-1", At("2026-03-01T10:00:00Z")));
  const auto refused = CanApproveRetroactively(RosterUser(policy, "sre-2"), incident, policy);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
}

TEST(BreakGlassTest, LateApprovalFlagged) {
  Incident incident;
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "lead-sre", At("2026-03-01T10:00:00Z")));
  incident.decisions.push_back(RetroactiveApproval("lead-1", At("2026-03-02T10:00:01Z")));

  const BreakGlassStatus status =
      RetroactiveApprovalStatus(incident, Policy{}, At("2026-03-04T00:00:00Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kApprovedLate);
  EXPECT_EQ(status.rollback_job_id, "JOB-1");
}

TEST(BreakGlassTest, ApprovalBeforeSecondEmergencyDoesNotCoverIt) {
  Incident incident;
  incident.rollbacks.push_back(EmergencyRollback("JOB-1", "sre-1", At("2026-03-01T10:00:00Z")));
  incident.decisions.push_back(RetroactiveApproval("lead-1", At("2026-03-01T11:00:00Z")));
  incident.rollbacks.push_back(EmergencyRollback("JOB-2", "sre-2", At("2026-03-01T12:00:00Z")));

  const BreakGlassStatus status =
      RetroactiveApprovalStatus(incident, Policy{}, At("2026-03-01T13:00:00Z"));
  EXPECT_EQ(status.approval, RetroactiveApproval::kPending);
  EXPECT_EQ(status.rollback_job_id, "JOB-2");
}

TEST(BreakGlassTest, NothingToApproveRefused) {
  const Policy policy = RosterPolicy();
  const auto refused =
      CanApproveRetroactively(RosterUser(policy, "lead-1"), DecidedIncident("lead-2"), policy);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
}

// ---- Closure --------------------------------------------------------------------------------

// An incident that meets every closure requirement.
Incident ClosableIncident() {
  Incident incident = DecidedIncident("lead-1");
  incident.state = IncidentState::kDocumenting;
  incident.rollbacks.push_back(Rollback{});
  incident.rollbacks.back().job_id = "JOB-1";
  incident.rollbacks.back().executor = "sre-1";
  incident.validations.push_back(Validation{});
  incident.validations.back().finding = ValidationFinding::kRecovered;
  incident.root_cause = "a config flag flipped the payment timeout to 0";
  incident.review_markdown = "# Review\n";
  ActionItem item;
  item.title = "Add a config schema check";
  item.owner = "sre-2";
  item.due = ParseDate("2026-04-01").value();
  incident.action_items.push_back(item);
  return incident;
}

TEST(ClosureTest, CompleteIncidentCloses) {
  const auto result = CheckClosure(ClosableIncident(), Policy{});
  EXPECT_TRUE(result.has_value()) << result.error().message;
}

TEST(ClosureTest, MissingRootCause) {
  Incident incident = ClosableIncident();
  incident.root_cause = " ";
  const auto unmet = UnmetClosureRequirements(incident, Policy{});
  ASSERT_EQ(unmet.size(), 1u);
  EXPECT_TRUE(Contains(unmet[0], "root cause")) << unmet[0];
}

TEST(ClosureTest, MissingRecoveryOrNoGo) {
  Incident incident = ClosableIncident();
  incident.validations.back().finding = ValidationFinding::kNotValidated;
  const auto unmet = UnmetClosureRequirements(incident, Policy{});
  ASSERT_EQ(unmet.size(), 1u);
  EXPECT_TRUE(Contains(unmet[0], "recovered validation")) << unmet[0];
}

TEST(ClosureTest, NoGoReplacesRecovery) {
  Incident incident = ClosableIncident();
  incident.validations.clear();
  incident.rollbacks.clear();
  incident.decisions.back().kind = DecisionKind::kNoGo;
  EXPECT_TRUE(UnmetClosureRequirements(incident, Policy{}).empty());
}

TEST(ClosureTest, MissingReview) {
  Incident incident = ClosableIncident();
  incident.review_markdown.clear();
  const auto unmet = UnmetClosureRequirements(incident, Policy{});
  ASSERT_EQ(unmet.size(), 1u);
  EXPECT_TRUE(Contains(unmet[0], "review")) << unmet[0];
}

TEST(ClosureTest, MissingActionItems) {
  Incident incident = ClosableIncident();
  incident.action_items.clear();
  const auto unmet = UnmetClosureRequirements(incident, Policy{});
  ASSERT_EQ(unmet.size(), 1u);
  EXPECT_TRUE(Contains(unmet[0], "action item")) << unmet[0];
}

TEST(ClosureTest, ActionItemWithoutDueDateDoesNotCount) {
  Incident incident = ClosableIncident();
  incident.action_items.back().due.reset();
  EXPECT_EQ(UnmetClosureRequirements(incident, Policy{}).size(), 1u);
}

TEST(ClosureTest, ExplicitNoActionReplacesItems) {
  Incident incident = ClosableIncident();
  incident.action_items.clear();
  incident.no_action_reason = "the fix shipped during the incident";
  EXPECT_TRUE(UnmetClosureRequirements(incident, Policy{}).empty());
}

TEST(ClosureTest, MissingRetroactiveApproval) {
  Incident incident = ClosableIncident();
  incident.emergency = true;
  incident.rollbacks.push_back(EmergencyRollback("JOB-2", "sre-1", At("2026-03-01T10:00:00Z")));
  const auto unmet = UnmetClosureRequirements(incident, Policy{});
  ASSERT_EQ(unmet.size(), 1u);
  EXPECT_TRUE(Contains(unmet[0], "JOB-2")) << unmet[0];
}

TEST(ClosureTest, EachRequirementCanBeSwitchedOff) {
  Incident incident = ClosableIncident();
  incident.root_cause.clear();
  incident.validations.clear();
  incident.review_markdown.clear();
  incident.action_items.clear();
  incident.rollbacks.push_back(EmergencyRollback("JOB-2", "sre-1", At("2026-03-01T10:00:00Z")));

  Policy policy;
  policy.closure = ClosureRequirements{false, false, false, false, false};
  EXPECT_TRUE(CheckClosure(incident, policy).has_value());

  bool ClosureRequirements::*const fields[] = {
      &ClosureRequirements::root_cause, &ClosureRequirements::recovered_or_no_go,
      &ClosureRequirements::review, &ClosureRequirements::action_items,
      &ClosureRequirements::retroactive_approval};
  for (auto field : fields) {
    Policy one;
    one.closure = ClosureRequirements{false, false, false, false, false};
    one.closure.*field = true;
    EXPECT_EQ(UnmetClosureRequirements(incident, one).size(), 1u);
  }
}

TEST(ClosureTest, EveryUnmetRequirementInOneMessage) {
  Incident incident = ClosableIncident();
  incident.id = "INC-9";
  incident.root_cause.clear();
  incident.validations.clear();
  incident.review_markdown.clear();
  incident.action_items.clear();
  incident.rollbacks.push_back(EmergencyRollback("JOB-2", "sre-1", At("2026-03-01T10:00:00Z")));

  const auto result = CheckClosure(incident, Policy{});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kFailedPrecondition);
  const std::string& message = result.error().message;
  EXPECT_TRUE(Contains(message, "INC-9 cannot close until 5 requirements are met")) << message;
  EXPECT_TRUE(Contains(message, "1) no root cause")) << message;
  EXPECT_TRUE(Contains(message, "2) neither a recovered validation")) << message;
  EXPECT_TRUE(Contains(message, "3) no post-incident review")) << message;
  EXPECT_TRUE(Contains(message, "4) no action item")) << message;
  EXPECT_TRUE(Contains(message, "5) emergency rollback JOB-2")) << message;
}

TEST(ActionItemTest, CompletionNeedsEvidenceOrReason) {
  EXPECT_TRUE(CheckActionItemCompletion(ActionItemStatus::kDone, "https://ci/run/1", ""));
  EXPECT_FALSE(CheckActionItemCompletion(ActionItemStatus::kDone, "", "done anyway"));
  EXPECT_TRUE(CheckActionItemCompletion(ActionItemStatus::kNotDoing, "", "superseded"));
  EXPECT_FALSE(CheckActionItemCompletion(ActionItemStatus::kNotDoing, "https://x", " "));
  EXPECT_FALSE(CheckActionItemCompletion(ActionItemStatus::kOpen, "https://x", "r"));
}

// ---- Target choice --------------------------------------------------------------------------

Change MakeChange(std::string id, std::string version, std::string time,
                  ChangeValidation validated) {
  Change change;
  change.id = std::move(id);
  change.service = "checkout";
  change.environment = "production";
  change.version = std::move(version);
  change.time = At(time);
  change.validated = validated;
  return change;
}

std::vector<Change> History() {
  using enum ChangeValidation;
  return {
      MakeChange("CHG-1", "v1", "2026-03-01T08:00:00Z", kGood),
      MakeChange("CHG-2", "v2", "2026-03-01T09:00:00Z", kGood),
      MakeChange("CHG-3", "v3", "2026-03-01T10:00:00Z", kBad),
      MakeChange("CHG-4", "v4", "2026-03-01T11:00:00Z", kUnknown),
      MakeChange("CHG-5", "v5", "2026-03-01T12:00:00Z", kUnknown),
  };
}

TEST(TargetTest, LastValidatedGoodBeforeSuspect) {
  const auto changes = History();
  const auto target = ChooseTarget(changes, "CHG-4");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  EXPECT_EQ(target->version, "v2");
  EXPECT_EQ(target->change_id, "CHG-2");
  EXPECT_FALSE(target->provider_rule);
  EXPECT_TRUE(target->rule.starts_with(kRuleLastValidatedGood)) << target->rule;
}

TEST(TargetTest, SkipsBadAndUnknownChanges) {
  auto changes = History();
  changes[1].validated = ChangeValidation::kBad;  // CHG-2
  const auto target = ChooseTarget(changes, "CHG-5");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  EXPECT_EQ(target->change_id, "CHG-1");
}

TEST(TargetTest, NoneKnownFallsBackToProviderRule) {
  auto changes = History();
  changes[0].validated = ChangeValidation::kUnknown;
  changes[1].validated = ChangeValidation::kUnknown;
  const auto target = ChooseTarget(changes, "CHG-4");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  EXPECT_TRUE(target->provider_rule);
  EXPECT_FALSE(target->change_id.has_value());
  EXPECT_TRUE(target->version.empty());
  EXPECT_TRUE(target->rule.starts_with(kRuleProvider)) << target->rule;
}

TEST(TargetTest, FirstChangeHasNoTarget) {
  const auto changes = History();
  const auto target = ChooseTarget(changes, "CHG-1");
  ASSERT_TRUE(target.has_value());
  EXPECT_TRUE(target->provider_rule);
}

TEST(TargetTest, UnknownSuspectIsNotFound) {
  const auto changes = History();
  const auto target = ChooseTarget(changes, "CHG-99");
  ASSERT_FALSE(target.has_value());
  EXPECT_EQ(target.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(target.error().message, "CHG-99")) << target.error().message;
}

TEST(TargetTest, WithoutSuspectLatestCounts) {
  const auto changes = History();
  const auto target = ChooseTarget(changes, std::nullopt);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->change_id, "CHG-2");
  EXPECT_TRUE(Contains(target->rule, "latest change CHG-5")) << target->rule;
}

TEST(TargetTest, SameTimeKeepsRecordingOrder) {
  using enum ChangeValidation;
  // Listed in id order, where "CHG-10" sorts before "CHG-9" as text.
  const std::vector<Change> changes = {
      MakeChange("CHG-10", "v10", "2026-03-01T09:00:00Z", kUnknown),
      MakeChange("CHG-8", "v8", "2026-03-01T08:00:00Z", kGood),
      MakeChange("CHG-9", "v9", "2026-03-01T09:00:00Z", kGood),
  };
  EXPECT_TRUE(DeployedBefore(changes[2], changes[0]));
  EXPECT_FALSE(DeployedBefore(changes[0], changes[2]));
  EXPECT_TRUE(DeployedBefore(changes[1], changes[2]));

  const auto target = ChooseTarget(changes, "CHG-10");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  EXPECT_EQ(target->change_id, "CHG-9");

  const auto latest = ChooseTarget(changes, std::nullopt);
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  EXPECT_EQ(latest->change_id, "CHG-9");
  EXPECT_TRUE(Contains(latest->rule, "latest change CHG-10")) << latest->rule;
}

TEST(TargetTest, IdWithoutNumberSortsLast) {
  const Change numbered =
      MakeChange("CHG-2", "v2", "2026-03-01T09:00:00Z", ChangeValidation::kGood);
  const Change named =
      MakeChange("imported", "v3", "2026-03-01T09:00:00Z", ChangeValidation::kGood);
  EXPECT_TRUE(DeployedBefore(numbered, named));
  EXPECT_FALSE(DeployedBefore(named, numbered));
  EXPECT_FALSE(DeployedBefore(named, named));
}

TEST(TargetTest, NoChangesUsesProviderRule) {
  const auto target = ChooseTarget(std::span<const Change>{}, std::nullopt);
  ASSERT_TRUE(target.has_value());
  EXPECT_TRUE(target->provider_rule);
}

TEST(TargetTest, IgnoresOtherEnvironmentsAndSameVersion) {
  auto changes = History();
  changes[1].environment = "staging";  // CHG-2
  changes[0].version = "v4";           // CHG-1 deployed the suspect's version
  const auto target = ChooseTarget(changes, "CHG-4");
  ASSERT_TRUE(target.has_value());
  EXPECT_TRUE(target->provider_rule) << target->rule;
}

TEST(TargetTest, SortsByTimeFirst) {
  auto changes = History();
  std::swap(changes[0], changes[4]);
  std::swap(changes[1], changes[3]);
  const auto target = ChooseTarget(changes, "CHG-4");
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->change_id, "CHG-2");
}

// ---- Data implications ----------------------------------------------------------------------

TEST(DataImplicationTest, IrreversibleMigrationBlocksUnlessOverridden) {
  auto changes = History();
  changes[2].migrations = {{"041_add_index", true}, {"042_drop_column", false}};  // CHG-3
  const auto target = ChooseTarget(changes, "CHG-4").value();
  const auto implications = FindDataImplications(changes, target, "CHG-4");

  ASSERT_EQ(implications.size(), 2u);
  EXPECT_EQ(implications[0].migration_id, "041_add_index");
  EXPECT_FALSE(implications[0].blocking);
  EXPECT_EQ(implications[1].migration_id, "042_drop_column");
  EXPECT_TRUE(implications[1].blocking);
  EXPECT_EQ(implications[1].change_id, "CHG-3");

  const auto blocked = CheckDataImplications(implications, "");
  ASSERT_FALSE(blocked.has_value());
  EXPECT_EQ(blocked.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(blocked.error().message, "042_drop_column (change CHG-3)"))
      << blocked.error().message;
  EXPECT_TRUE(CheckDataImplications(implications, "column unused since v1; verified"));
}

TEST(DataImplicationTest, ReversibleMigrationsDoNotBlock) {
  auto changes = History();
  changes[3].migrations = {{"043_add_table", true}};
  const auto target = ChooseTarget(changes, "CHG-4").value();
  const auto implications = FindDataImplications(changes, target, "CHG-4");
  ASSERT_EQ(implications.size(), 1u);
  EXPECT_TRUE(CheckDataImplications(implications, ""));
}

TEST(DataImplicationTest, TargetsOwnMigrationIsNotCrossed) {
  auto changes = History();
  changes[1].migrations = {{"040_drop_table", false}};  // CHG-2, the target
  const auto target = ChooseTarget(changes, "CHG-4").value();
  EXPECT_TRUE(FindDataImplications(changes, target, "CHG-4").empty());
}

TEST(DataImplicationTest, LaterChangesAreCrossedToo) {
  auto changes = History();
  changes[4].migrations = {{"050_rename", false}};  // CHG-5, after the suspect
  const auto target = ChooseTarget(changes, "CHG-4").value();
  const auto implications = FindDataImplications(changes, target, "CHG-4");
  ASSERT_EQ(implications.size(), 1u);
  EXPECT_EQ(implications[0].change_id, "CHG-5");
}

TEST(DataImplicationTest, ProviderRuleStartsAtSuspect) {
  auto changes = History();
  for (auto& change : changes) change.validated = ChangeValidation::kUnknown;
  changes[2].migrations = {{"042_drop_column", false}};  // CHG-3, before the suspect
  changes[3].migrations = {{"043_drop_index", false}};   // CHG-4, the suspect
  const auto target = ChooseTarget(changes, "CHG-4").value();
  const auto implications = FindDataImplications(changes, target, "CHG-4");
  ASSERT_EQ(implications.size(), 1u);
  EXPECT_EQ(implications[0].migration_id, "043_drop_index");
}

TEST(DecisionTest, GoNeedsMatchingDigestAndOverride) {
  Assessment assessment;
  assessment.digest = "abc";
  assessment.data_implications = {{"CHG-3", "042", false, true, ""}};

  Decision decision{
      DecisionKind::kGo, "lead-1", At("2026-03-01T10:00:00Z"), "errors", "abc", "", false};
  const auto blocked = CheckDecision(decision, assessment);
  ASSERT_FALSE(blocked.has_value());
  EXPECT_EQ(blocked.error().code, ErrorCode::kFailedPrecondition);

  decision.override_reason = "column unused";
  EXPECT_TRUE(CheckDecision(decision, assessment));

  decision.approved_digest = "stale";
  const auto stale = CheckDecision(decision, assessment);
  ASSERT_FALSE(stale.has_value());
  EXPECT_TRUE(Contains(stale.error().message, "stale")) << stale.error().message;

  decision.reason.clear();
  EXPECT_EQ(CheckDecision(decision, assessment).error().code, ErrorCode::kInvalidArgument);
}

TEST(DecisionTest, NoGoNeedsOnlyReason) {
  Assessment assessment;
  assessment.digest = "abc";
  assessment.data_implications = {{"CHG-3", "042", false, true, ""}};
  const Decision decision{DecisionKind::kNoGo,
                          "lead-1",
                          At("2026-03-01T10:00:00Z"),
                          "forward fix is faster",
                          "",
                          "",
                          false};
  EXPECT_TRUE(CheckDecision(decision, assessment));
}

// ---- Affected services and findings ---------------------------------------------------------

TEST(AffectedServicesTest, IncludesTransitiveDependents) {
  const std::map<std::string, std::vector<std::string>> depends_on = {
      {"checkout", {"payments"}},         {"storefront", {"checkout"}},
      {"payments", {"ledger-db"}},        {"search", {}},
      {"loop-a", {"loop-b", "payments"}}, {"loop-b", {"loop-a"}},
  };
  const auto affected = AffectedServices("payments", depends_on);
  const std::vector<std::string> expected = {"checkout", "loop-a", "loop-b", "payments",
                                             "storefront"};
  EXPECT_EQ(affected, expected);
}

TEST(AffectedServicesTest, ServiceWithoutDependentsIsAlone) {
  const auto affected = AffectedServices("search", {});
  EXPECT_EQ(affected, std::vector<std::string>{"search"});
}

TEST(FindingTest, FromObservations) {
  const Time rolled_back = At("2026-03-01T10:00:00Z");
  const Time later = rolled_back + minutes(5);
  const Observation ready{"rollout", "readiness", ObservationResult::kPassed, "", later};
  const Observation smoke{"smoke", "command", ObservationResult::kPassed, "", later};
  const Observation failing{"smoke", "command", ObservationResult::kFailed, "exit 1", later};
  const Observation unknown{"p99", "prometheus", ObservationResult::kUnknown, "no data", later};
  const Observation stale{"smoke", "command", ObservationResult::kPassed, "", rolled_back};

  using Obs = std::vector<Observation>;
  EXPECT_EQ(FindingFromObservations(Obs{}, rolled_back), ValidationFinding::kNotValidated);
  EXPECT_EQ(FindingFromObservations(Obs{ready}, rolled_back), ValidationFinding::kNotValidated);
  EXPECT_EQ(FindingFromObservations(Obs{ready, smoke}, rolled_back), ValidationFinding::kRecovered);
  EXPECT_EQ(FindingFromObservations(Obs{ready, failing}, rolled_back),
            ValidationFinding::kNotRecovered);
  EXPECT_EQ(FindingFromObservations(Obs{smoke, unknown}, rolled_back),
            ValidationFinding::kNotRecovered);
  EXPECT_EQ(FindingFromObservations(Obs{ready, stale}, rolled_back),
            ValidationFinding::kNotRecovered);
}

// ---- Policy JSON ----------------------------------------------------------------------------

TEST(PolicyJsonTest, RoundTrips) {
  Policy policy = RosterPolicy();
  policy.separation_of_duties = false;
  policy.break_glass_window = hours(48);
  policy.closure.review = false;
  const nlohmann::json json = policy;
  EXPECT_EQ(json.at("break_glass_window_hours"), 48);
  const auto back = FromJson<Policy>(json);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(*back, policy);
}

TEST(PolicyJsonTest, DefaultsWhenKeysMissing) {
  const auto policy = FromJson<Policy>(nlohmann::json::object());
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(*policy, Policy{});
}

TEST(PolicyJsonTest, UnknownKeyRejected) {
  const auto policy = FromJson<Policy>(nlohmann::json{{"closure", {{"reviews", true}}}});
  ASSERT_FALSE(policy.has_value());
  EXPECT_TRUE(Contains(policy.error().message, "field closure.reviews: unknown field"))
      << policy.error().message;
}

}  // namespace
}  // namespace backout::core
