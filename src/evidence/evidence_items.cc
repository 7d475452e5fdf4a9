// The four SOC 2 CC8.1 evidence items, judged from a bundle's files.
#include <fmt/format.h>

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

EvidenceItem Authorization(const json& decision) {
  EvidenceItem item{.number = 1, .name = "authorization"};
  if (decision.is_discarded()) {
    item.detail = "decision.json is missing";
    return item;
  }
  const std::string ticket = decision.value("external_ticket", "");
  const std::string ticket_text = ticket.empty() ? "no external ticket" : "ticket " + ticket;
  if (decision.value("go", false) && decision.value("approved_digest_matches_assessment", false)) {
    const json& latest = decision["decision"];
    item.present = true;
    item.detail =
        fmt::format("go by {} at {}, approving digest {}; {}", latest.value("decider", ""),
                    latest.value("time", ""), latest.value("approved_digest", ""), ticket_text);
    return item;
  }
  const json retroactive = decision.value("retroactive_approvals", json::array());
  if (!retroactive.empty()) {
    item.present = true;
    item.detail = fmt::format("break-glass, approved afterwards by {} at {}; {}",
                              retroactive.back().value("decider", ""),
                              retroactive.back().value("time", ""), ticket_text);
    return item;
  }
  item.detail = decision.value("go", false)
                    ? "the go decision approved a digest other than the assessment's"
                    : "no go decision and no retroactive approval";
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

std::vector<EvidenceItem> AssessEvidenceItems(const BundleFiles& files) {
  const json decision = internal::ParseFile(files, internal::kDecision);
  const json tool_records = internal::ParseFile(files, internal::kToolRecord);
  const json finding = internal::ParseFile(files, internal::kFinding);
  auto transcript = files.find(internal::kTranscript);
  const bool has_transcript = transcript != files.end() && !transcript->second.empty();
  return {Authorization(decision), IndependentApproval(decision, tool_records),
          RecoveryValidation(finding), DeployLog(tool_records, has_transcript)};
}

}  // namespace backout::evidence
