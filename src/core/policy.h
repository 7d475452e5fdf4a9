#pragma once

// Access and procedure policy: who may decide and execute, separation of duties, break-glass,
// what closing an incident needs, how the rollback target is chosen and which migrations block
// it. Every function is pure: the caller passes the current time where one matters.

#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/domain.h"
#include "core/error.h"
#include "core/time.h"

namespace backout::core {

// Each requirement that closing an incident checks, all on by default.
struct ClosureRequirements {
  bool root_cause = true;
  bool recovered_or_no_go = true;  // a `recovered` validation, or a no-go as the latest decision
  bool review = true;
  bool action_items = true;          // one item with owner and due date, or a "no action" reason
  bool retroactive_approval = true;  // every emergency rollback approved by a lead afterwards

  bool operator==(const ClosureRequirements&) const = default;
};

struct Policy {
  bool separation_of_duties = true;  // the approver of a rollback may not execute it
  std::vector<Role> decider_roles{Role::kEngineeringLead};
  std::vector<Role> executor_roles{Role::kDevopsEngineer};  // and a grant for the service
  std::chrono::hours break_glass_window{24};                // time for the retroactive approval
  ClosureRequirements closure;
  // The approved roster from the config: a user's roles and service grants count only where the
  // roster entry of the same name lists them. The app adds the bootstrap admin.
  std::vector<User> roster;

  bool operator==(const Policy&) const = default;
};

void to_json(nlohmann::json& json, const ClosureRequirements& value);
void from_json(const nlohmann::json& json, ClosureRequirements& value);
void to_json(nlohmann::json& json, const Policy& value);  // break_glass_window_hours
void from_json(const nlohmann::json& json, Policy& value);

// ---- Who may act ----------------------------------------------------------------------------

// Checks that `user` is active and that the roster entry of that name lists each of the user's
// roles and services. kPermissionDenied names the first grant missing from the roster.
Result<void> CheckOnRoster(const User& user, const Policy& policy);

// Checks that `user` may decide go/no-go on `incident`: on the roster, holding a decider role.
Result<void> CanDecide(const User& user, const Incident& incident, const Policy& policy);

// Checks that `user` may execute a rollback of `service`: on the roster, holding an executor role
// and a grant for `service`, and, with separation of duties on, not the decider of the incident's
// latest decision. Holding the admin role changes nothing.
Result<void> CanExecute(const User& user, std::string_view service, const Incident& incident,
                        const Policy& policy);

// CanExecute plus the break-glass rule: `reason` must not be blank.
Result<void> CanExecuteEmergency(const User& user, std::string_view service,
                                 const Incident& incident, std::string_view reason,
                                 const Policy& policy);

// Checks that `user` may approve the incident's emergency rollbacks after the fact: a decider on
// the roster who executed none of them, with at least one emergency rollback not yet approved.
Result<void> CanApproveRetroactively(const User& user, const Incident& incident,
                                     const Policy& policy);

enum class RetroactiveApproval {
  kNotNeeded,       // no emergency rollback
  kPending,         // approval missing, window still open
  kOverdue,         // approval missing, window passed
  kApprovedInTime,  // every emergency rollback approved within the window
  kApprovedLate,    // approved, but at least one approval came after its window closed
};
std::string_view RetroactiveApprovalName(RetroactiveApproval approval);

struct BreakGlassStatus {
  RetroactiveApproval approval = RetroactiveApproval::kNotNeeded;
  // For pending and overdue: the earliest unapproved emergency rollback and its deadline
  // (requested_at + window). For approved_late: the first late one and its deadline.
  std::string rollback_job_id;
  std::optional<Time> due;
};

// Tells whether the incident's emergency rollbacks have their retroactive approval, at `now`.
// An emergency rollback counts as approved by the first retroactive decision at or after its
// requested_at made by someone other than its executor.
BreakGlassStatus RetroactiveApprovalStatus(const Incident& incident, const Policy& policy,
                                           Time now);

// Actions outside the incident lifecycle.
enum class Operation {
  kOpenIncident,     // engineering-lead, devops-engineer
  kRecordChange,     // ci, engineering-lead, devops-engineer
  kVerifyChange,     // ci, engineering-lead, devops-engineer
  kRead,             // every role but ci
  kReadLedger,       // admin, engineering-lead, auditor
  kManageUsers,      // admin
  kUnfreezeService,  // Policy::decider_roles

  // Both need engineering-lead or devops-engineer. Resolving a discovered rollback links it to an
  // incident or documents why it happened.
  kReconcileService,
  kResolveDiscoveredRollback,
};
std::string_view OperationName(Operation operation);

// Checks that `user` is on the roster and has a role allowed to perform `operation`.
Result<void> CheckOperation(const User& user, Operation operation, const Policy& policy);

// ---- Decisions and closure ------------------------------------------------------------------

// Checks a go/no-go before it is stored. Every decision needs a reason. A go decision also needs
// an approved digest equal to the assessment's, and an override reason when a data implication
// blocks. A retroactive approval needs only the reason.
Result<void> CheckDecision(const Decision& decision, const Assessment& assessment);

// Lists every closure requirement `incident` does not meet, as sentences; empty when it may close.
std::vector<std::string> UnmetClosureRequirements(const Incident& incident, const Policy& policy);

// kFailedPrecondition listing every unmet requirement in one message, or success.
Result<void> CheckClosure(const Incident& incident, const Policy& policy);

// Checks the fields a completion needs: done needs an evidence link, not_doing a reason, and open
// is no completion.
Result<void> CheckActionItemCompletion(ActionItemStatus status, std::string_view evidence_link,
                                       std::string_view reason);

// ---- Target and data implications -----------------------------------------------------------

inline constexpr std::string_view kRuleLastValidatedGood =
    "last validated-good change before the suspected one";
inline constexpr std::string_view kRuleProvider = "provider rule";

// Orders two changes of one service by when they were deployed. Changes with the same time are
// in the order Backout recorded them, by the number in their ids ("CHG-9" before "CHG-10"), and
// an id without a number sorts after the numbered ones. Reconciliation records a tool's history
// oldest first in the tool's own order, so two git commits of the same second keep their
// first-parent order.
// NOTE: a change recorded by CI in the same second as one discovered in the tool's history is
// ordered by when each was recorded, which need not be the order of the deployments.
bool DeployedBefore(const Change& a, const Change& b);

struct TargetChoice {
  std::optional<std::string> change_id;  // the chosen change; empty under the provider rule
  std::string version;                   // empty under the provider rule
  std::string rule;                      // starts with one of the kRule* texts
  bool provider_rule = false;
};

// Chooses the rollback target among `changes` of one service, in any order. The target is the
// latest change validated good before the suspected change by DeployedBefore, in the same
// environment, with a different version. Without a suspected change the latest change counts as
// suspected, and the rule text states it. When no such change exists, the provider's own rule
// applies. Fails with kNotFound when `suspected_change_id` is not among `changes`.
Result<TargetChoice> ChooseTarget(std::span<const Change> changes,
                                  std::optional<std::string_view> suspected_change_id);

// Lists the migrations a rollback to `target` would cross: those of every change in the suspect's
// environment after the target change up to the latest, or, under the provider rule, from the
// suspected change (the latest when none) on. An irreversible migration is blocking.
std::vector<DataImplication> FindDataImplications(
    std::span<const Change> changes, const TargetChoice& target,
    std::optional<std::string_view> suspected_change_id);

// kFailedPrecondition naming every blocking migration unless `override_reason` is non-blank.
Result<void> CheckDataImplications(std::span<const DataImplication> implications,
                                   std::string_view override_reason);

// Returns `service` and every service that depends on it, directly or transitively, sorted.
// `depends_on` maps each service to the services it depends on.
std::vector<std::string> AffectedServices(
    std::string_view service, const std::map<std::string, std::vector<std::string>>& depends_on);

// ---- Validation -----------------------------------------------------------------------------

// Derives the finding from a validation's observations. Any failed or unknown observation, or one
// not newer than `rollback_finished_at`, makes it not_recovered. Without a passed observation of a
// kind other than readiness it is not_validated. Otherwise it is recovered.
ValidationFinding FindingFromObservations(std::span<const Observation> observations,
                                          Time rollback_finished_at);

}  // namespace backout::core
