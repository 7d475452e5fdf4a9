#include "app/review_template.h"

#include <fmt/format.h>

#include "core/time.h"

namespace backout::app {
namespace {

// Keeps table cells on one line and stops a `|` in the text from ending the cell.
std::string Cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string OrPlaceholder(const std::string& text, std::string_view placeholder) {
  return text.empty() ? std::string(placeholder) : text;
}

}  // namespace

std::string RenderReviewTemplate(const core::Incident& incident) {
  std::string out;
  out += fmt::format("# Post-incident review: {} — {}\n\n", incident.id, incident.title);

  out += "## Summary\n\n";
  out += fmt::format("- Service: {} ({})\n", incident.service, incident.environment);
  out += fmt::format("- Severity: {}\n", core::SeverityName(incident.severity));
  out +=
      fmt::format("- Opened: {} by {}\n", core::FormatTime(incident.opened_at), incident.opened_by);
  out += fmt::format("- State: {}\n", core::IncidentStateName(incident.state));
  out +=
      fmt::format("- Suspected change: {}\n", incident.suspected_change_id.value_or("none named"));
  out += fmt::format("- External ticket: {}\n", OrPlaceholder(incident.external_ticket, "none"));
  out += fmt::format("- Emergency rollback: {}\n\n", incident.emergency ? "yes" : "no");

  out += "## Impact\n\n";
  if (incident.assessment) {
    const core::Assessment& assessment = *incident.assessment;
    out += fmt::format("- Affected services: {}\n", fmt::join(assessment.affected_services, ", "));
    out += fmt::format("- Customer-facing: {}\n", assessment.customer_facing ? "yes" : "no");
    out += fmt::format("- Rollback target: {} ({})\n",
                       OrPlaceholder(assessment.target_version, "chosen by the provider"),
                       assessment.target_rule);
    out += fmt::format("- Assessment digest: `{}`\n\n", assessment.digest);
  } else {
    out += "No assessment was made.\n\n";
  }

  out += "## Timeline\n\n| time (UTC) | actor | event | detail |\n| --- | --- | --- | --- |\n";
  for (const core::TimelineEvent& event : incident.timeline) {
    out += fmt::format("| {} | {} | {} | {} |\n", core::FormatTime(event.time), Cell(event.actor),
                       Cell(event.kind), Cell(event.detail));
  }
  out += "\n";

  out += "## Decisions and rollbacks\n\n";
  for (const core::Decision& decision : incident.decisions) {
    out += fmt::format("- {}{} by {} at {}: {}\n", core::DecisionKindName(decision.kind),
                       decision.retroactive ? " (retroactive)" : "", decision.decider,
                       core::FormatTime(decision.time), decision.reason);
  }
  for (const core::Rollback& rollback : incident.rollbacks) {
    out += fmt::format(
        "- Rollback job {} by {} to {}: {}{}\n", rollback.job_id, rollback.executor,
        OrPlaceholder(rollback.target_version, "the provider's target"),
        rollback.outcome ? std::string(core::RollbackOutcomeName(*rollback.outcome)) : "running",
        rollback.message.empty() ? "" : fmt::format(" ({})", rollback.message));
  }
  if (incident.decisions.empty() && incident.rollbacks.empty()) out += "None.\n";
  out += "\n";

  out += "## Validation\n\n";
  for (const core::Validation& validation : incident.validations) {
    out += fmt::format("- Job {}: {}\n", validation.job_id,
                       validation.finding
                           ? std::string(core::ValidationFindingName(*validation.finding))
                           : "running");
    for (const core::Observation& observation : validation.observations) {
      out += fmt::format("  - {} ({}): {} — {}\n", observation.check, observation.kind,
                         core::ObservationResultName(observation.result), observation.detail);
    }
  }
  if (incident.validations.empty()) out += "None.\n";
  out += "\n";

  out += "## Root cause\n\n";
  out += OrPlaceholder(incident.root_cause, "_To be written._") + "\n\n";
  if (!incident.contributing_factors.empty()) {
    out += "### Contributing factors\n\n";
    for (const std::string& factor : incident.contributing_factors) out += "- " + factor + "\n";
    out += "\n";
  }

  out += "## Action items\n\n";
  for (const core::ActionItem& item : incident.action_items) {
    out += fmt::format("- [{}] {} {} — owner {}, due {}\n",
                       item.status == core::ActionItemStatus::kOpen ? " " : "x", item.id,
                       item.title, item.owner, item.due ? core::FormatDate(*item.due) : "none");
  }
  if (!incident.no_action_reason.empty()) {
    out += fmt::format("- No action: {}\n", incident.no_action_reason);
  }
  if (incident.action_items.empty() && incident.no_action_reason.empty()) {
    out += "_To be added._\n";
  }
  return out;
}

}  // namespace backout::app
