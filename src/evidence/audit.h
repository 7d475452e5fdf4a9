#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/policy.h"
#include "core/time.h"
#include "store/store.h"

// Audit checks: the findings an auditor would raise, computed from the stored incidents, users
// and ledger before the auditor looks.
namespace backout::evidence {

struct AuditOptions {
  core::Time at;  // evaluate as of this time: later decisions, validations and reviews not yet made
  std::optional<core::Time> from;  // only rollbacks requested at or after this time
  std::optional<core::Time> to;    // only rollbacks requested before this time
  // A rollback's incident must be documented (root cause and review) this long after it ended.
  std::chrono::days document_within{7};
  // An access review must be attested at least this often, counted from the first recorded
  // policy when none was ever attested.
  std::chrono::days access_review_every{90};
  // The roster in force now, for grants held by users.
  core::Policy current_policy;
  // The provider kind configured for each service, such as "kubernetes".
  std::map<std::string, std::string> service_providers;
};

// One problem an auditor would report. `rule` is a stable name such as "approver_is_executor".
struct AuditFinding {
  std::string rule;
  std::string incident;  // empty for a user or ledger finding
  std::string rollback;  // the rollback's job id, when the finding is about one rollback
  std::string user;      // the user at fault, when there is one
  std::string message;   // what is wrong and what fixes it
};

nlohmann::json ToJson(const AuditFinding& finding);

// Runs every rule against `store` and returns the open findings, ordered by incident, rollback
// and rule. The policy a rollback is judged against is the one the ledger recorded
// ("policy.loaded") at or before the rollback's request time. Rollbacks that reconciliation found
// in a tool's history (objects of kind "discovered_rollback") and services it cannot reconcile
// (kind "reconciliation" with `reconcilable` false) are read as stored JSON, as are review owners
// and statuses (kind "review", whose `history` dates each status), access review attestations
// (kind "access_attestation") and release manifests (kind "release_manifest", whose
// `live_problem` says the folder showed no live release). A review counts only once its status
// is completed.
core::Result<std::vector<AuditFinding>> RunAuditChecks(store::Store& store,
                                                       const AuditOptions& options);

}  // namespace backout::evidence
