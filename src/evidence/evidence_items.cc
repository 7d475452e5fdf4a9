// The four SOC 2 CC8.1 evidence items, judged from a bundle's files.
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/time.h"
#include "evidence/bundle.h"
#include "evidence/bundle_files.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

// Rollbacks whose tool acted: the outcomes after which the tool's record shows the target.
bool Acted(const json& record) {
  const std::string outcome = record.value("outcome", json()).is_string()
                                  ? record["outcome"].get<std::string>()
                                  : std::string();
  return outcome == "rolled_back" || outcome == "skipped_noop";
}

// A string member of a JSON object, or "" when it is absent or not a string.
std::string StringOf(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<core::Time> TimeOf(const json& object, const char* key) {
  auto time = core::ParseTime(StringOf(object, key));
  if (!time) return std::nullopt;
  return *time;
}

// "go by lead-1 at 2026-12-04T10:06:00.000000Z".
std::string Describe(const json& decision) {
  return fmt::format("{} by {} at {}", StringOf(decision, "kind"), StringOf(decision, "decider"),
                     StringOf(decision, "time"));
}

// The go or no-go in force at `time`: the latest one made at or before it that is not a
// retroactive approval, or null. The same rule as core::Incident::DecisionInForceAt.
json DecisionInForceAt(const json& decisions, core::Time time) {
  json in_force = nullptr;
  for (const json& decision : decisions) {
    if (!decision.is_object() || decision.value("retroactive", false)) continue;
    auto decided = TimeOf(decision, "time");
    if (decided && *decided <= time) in_force = decision;
  }
  return in_force;
}

// The retroactive approval of a break-glass rollback: the first one at or after its request by a
// lead other than its executor, or null. The same rule as ApprovalOf in core/policy.cc.
json RetroactiveApprovalOf(const json& decisions, core::Time requested_at,
                           const std::string& executor) {
  for (const json& decision : decisions) {
    if (!decision.is_object() || !decision.value("retroactive", false) ||
        StringOf(decision, "kind") != "go") {
      continue;
    }
    auto decided = TimeOf(decision, "time");
    if (decided && *decided >= requested_at && StringOf(decision, "decider") != executor) {
      return decision;
    }
  }
  return nullptr;
}

internal::RollbackAuthorization AuthorizeEmergency(const json& decisions, const json& rollback,
                                                   core::Time requested_at) {
  internal::RollbackAuthorization result{.job_id = StringOf(rollback, "job_id")};
  result.decision = RetroactiveApprovalOf(decisions, requested_at, StringOf(rollback, "executor"));
  result.authorized = !result.decision.is_null();
  result.detail =
      result.authorized
          ? fmt::format("rollback {}: break-glass, approved afterwards by {} at {}", result.job_id,
                        StringOf(result.decision, "decider"), StringOf(result.decision, "time"))
          : fmt::format(
                "rollback {}: break-glass by {}, with no retroactive approval by another "
                "lead",
                result.job_id, StringOf(rollback, "executor"));
  return result;
}

internal::RollbackAuthorization AuthorizeApproved(const json& decisions, const json& rollback,
                                                  core::Time requested_at) {
  internal::RollbackAuthorization result{.job_id = StringOf(rollback, "job_id")};
  const json in_force = DecisionInForceAt(decisions, requested_at);
  if (in_force.is_null()) {
    result.detail = fmt::format("rollback {}: no go decision was made before its request at {}",
                                result.job_id, StringOf(rollback, "requested_at"));
    return result;
  }
  if (StringOf(in_force, "kind") != "go") {
    result.detail = fmt::format("rollback {}: the decision in force at its request was {}",
                                result.job_id, Describe(in_force));
    return result;
  }
  result.decision = in_force;

  // The go approves an assessment digest, and the rollback records the digest of the assessment
  // whose plan it ran. Approval is bound to that plan, so these two digests are the pair to match.
  const std::string approved = StringOf(in_force, "approved_digest");
  const std::string ran = StringOf(rollback, "plan_digest");
  result.approved_digest_matches_plan = !approved.empty() && approved == ran;
  const std::string approver = StringOf(rollback, "approver");
  if (!result.approved_digest_matches_plan) {
    result.detail = fmt::format(
        "rollback {}: the {} approved digest {}, but the rollback ran "
        "digest {}",
        result.job_id, Describe(in_force), approved.empty() ? "none" : approved,
        ran.empty() ? "none" : ran);
  } else if (!approver.empty() && approver != StringOf(in_force, "decider")) {
    result.detail = fmt::format(
        "rollback {}: it names approver {}, but the decision in force was "
        "the {}",
        result.job_id, approver, Describe(in_force));
  } else {
    result.authorized = true;
    result.detail = fmt::format("rollback {}: {}, approving digest {}, the digest it ran",
                                result.job_id, Describe(in_force), approved);
  }
  return result;
}

EvidenceItem Authorization(const json& decision, const json& tool_records) {
  EvidenceItem item{.number = 1, .name = "authorization"};
  if (decision.is_discarded()) {
    item.detail = "decision.json is missing";
    return item;
  }
  const std::string ticket = decision.value("external_ticket", "");
  const std::string ticket_text = ticket.empty() ? "no external ticket" : "ticket " + ticket;
  const json decisions = decision.value("decisions", json::array());

  // Without an executed rollback, the latest decision is all there is to judge.
  if (!tool_records.is_array() || tool_records.empty()) {
    const json& latest = decision.value("decision", json());
    if (decision.value("go", false) &&
        decision.value("approved_digest_matches_assessment", false)) {
      item.present = true;
      item.detail = fmt::format("go by {} at {}, approving digest {}; no rollback was executed; {}",
                                StringOf(latest, "decider"), StringOf(latest, "time"),
                                StringOf(latest, "approved_digest"), ticket_text);
    } else if (latest.is_object()) {
      item.detail = fmt::format("no rollback was executed, and the latest decision is the {}",
                                Describe(latest));
    } else {
      item.detail = "no rollback was executed, and no decision was made";
    }
    return item;
  }

  std::vector<std::string> parts;
  bool all_authorized = true;
  for (const internal::RollbackAuthorization& authorization :
       internal::AuthorizeRollbacks(decisions, tool_records)) {
    all_authorized = all_authorized && authorization.authorized;
    parts.push_back(authorization.detail);
  }
  const json later = internal::DecisionsAfterLastRollback(decisions, tool_records);
  if (!later.empty()) {
    std::vector<std::string> described;
    for (const json& made : later) described.push_back(Describe(made));
    parts.push_back(fmt::format("later decisions: {}", fmt::join(described, ", ")));
  }
  parts.push_back(ticket_text);
  item.present = all_authorized;
  item.detail = fmt::format("{}", fmt::join(parts, "; "));
  return item;
}

EvidenceItem IndependentApproval(const json& decision, const json& tool_records) {
  EvidenceItem item{.number = 2, .name = "independent approval"};
  if (!tool_records.is_array() || tool_records.empty()) {
    item.detail = "no rollback was executed";
    return item;
  }
  const json retroactive = decision.is_discarded()
                               ? json::array()
                               : decision.value("retroactive_approvals", json::array());
  std::vector<std::string> problems;
  for (const json& record : tool_records) {
    const std::string job = record.value("job_id", "");
    const std::string executor = record.value("executor", "");
    if (record.value("emergency", false)) {
      bool approved = false;
      for (const json& approval : retroactive) {
        if (approval.value("decider", "") != executor) approved = true;
      }
      if (!approved) {
        problems.push_back(
            fmt::format("break-glass rollback {} by {} has no retroactive approval "
                        "by another lead",
                        job, executor));
      }
      continue;
    }
    const std::string approver = record.value("approver", "");
    if (approver.empty()) {
      problems.push_back(fmt::format("rollback {} has no approver", job));
    } else if (approver == executor) {
      problems.push_back(fmt::format("rollback {} was approved and executed by {}", job, executor));
    }
  }
  item.present = problems.empty();
  item.detail = item.present ? "every rollback was approved by someone other than its executor"
                             : fmt::format("{}", fmt::join(problems, "; "));
  return item;
}

EvidenceItem RecoveryValidation(const json& finding) {
  EvidenceItem item{.number = 3, .name = "recovery validation"};
  if (finding.is_discarded()) {
    item.detail = "validation/ is missing: no recovery validation was recorded";
    return item;
  }
  const json value = finding.value("finding", json());
  const std::string name = value.is_string() ? value.get<std::string>() : "none";
  item.present = name == "recovered";
  item.detail = item.present ? fmt::format("recovered, validated at {}",
                                           finding.value("finished_at", json()).is_string()
                                               ? finding["finished_at"].get<std::string>()
                                               : std::string("?"))
                             : fmt::format("the latest validation found {}", name);
  return item;
}

EvidenceItem DeployLog(const json& tool_records, bool has_transcript) {
  EvidenceItem item{.number = 4, .name = "deploy log with time and version"};
  if (!tool_records.is_array() || tool_records.empty()) {
    item.detail = "rollback/tool-record.json is missing: no rollback was executed";
    return item;
  }
  for (const json& record : tool_records) {
    if (!Acted(record) || !record.value("finished_at", json()).is_string()) continue;
    const json& read_back = record.value("read_back", json());
    const std::string version = read_back.is_object() && read_back.contains("version")
                                    ? read_back.value("version", "")
                                    : record.value("live_version", "");
    item.present = has_transcript;
    item.detail =
        has_transcript
            ? fmt::format("rollback {} ended {} at {}; the tool reads back version {}",
                          record.value("job_id", ""), record["outcome"].get<std::string>(),
                          record["finished_at"].get<std::string>(), version)
            : "rollback/transcript.jsonl is missing or empty";
    return item;
  }
  item.detail = "no rollback reached rolled_back or skipped_noop";
  return item;
}

}  // namespace

namespace internal {

std::vector<RollbackAuthorization> AuthorizeRollbacks(const json& decisions,
                                                      const json& rollbacks) {
  std::vector<RollbackAuthorization> results;
  if (!rollbacks.is_array()) return results;
  for (const json& rollback : rollbacks) {
    auto requested_at = TimeOf(rollback, "requested_at");
    if (!requested_at) {
      results.push_back({.job_id = StringOf(rollback, "job_id"),
                         .detail = fmt::format("rollback {}: its request time is missing, so no "
                                               "decision can be matched to it",
                                               StringOf(rollback, "job_id"))});
    } else if (rollback.value("emergency", false)) {
      results.push_back(AuthorizeEmergency(decisions, rollback, *requested_at));
    } else {
      results.push_back(AuthorizeApproved(decisions, rollback, *requested_at));
    }
  }
  return results;
}

json DecisionsAfterLastRollback(const json& decisions, const json& rollbacks) {
  std::optional<core::Time> last;
  if (rollbacks.is_array()) {
    for (const json& rollback : rollbacks) {
      auto requested_at = TimeOf(rollback, "requested_at");
      if (requested_at && (!last || *requested_at > *last)) last = requested_at;
    }
  }
  json later = json::array();
  if (!last || !decisions.is_array()) return later;
  for (const json& decision : decisions) {
    auto decided = TimeOf(decision, "time");
    if (decided && !decision.value("retroactive", false) && *decided > *last) {
      later.push_back(decision);
    }
  }
  return later;
}

}  // namespace internal

std::vector<EvidenceItem> AssessEvidenceItems(const BundleFiles& files) {
  const json decision = internal::ParseFile(files, internal::kDecision);
  const json tool_records = internal::ParseFile(files, internal::kToolRecord);
  const json finding = internal::ParseFile(files, internal::kFinding);
  auto transcript = files.find(internal::kTranscript);
  const bool has_transcript = transcript != files.end() && !transcript->second.empty();
  return {Authorization(decision, tool_records), IndependentApproval(decision, tool_records),
          RecoveryValidation(finding), DeployLog(tool_records, has_transcript)};
}

}  // namespace backout::evidence
