#include "app/review_template.h"

#include <kainjow/mustache.hpp>

#include <fmt/format.h>

#include "core/time.h"

namespace backout::app {
namespace {

using Mustache = kainjow::mustache::mustache;
using MustacheData = kainjow::mustache::data;

constexpr std::string_view kBuiltInTemplate = R"(# Post-incident review: {{id}} — {{title}}

## Summary

{{summary}}
## Timeline (UTC)

{{timeline}}
## Impact

{{impact}}
## Decision

{{decision}}
## Rollback and versions

{{rollback}}
## Validation

{{validation}}
## Root cause

{{root_cause}}
## Contributing factors

{{contributing_factors}}
## Action items

{{action_items}})";

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

std::string Summary(const ReviewInputs& inputs) {
  const core::Incident& incident = inputs.incident;
  std::string out;
  out += fmt::format("- Service: {} ({})\n", incident.service, incident.environment);
  out += fmt::format("- Severity: {}\n", core::SeverityName(incident.severity));
  out +=
      fmt::format("- Opened: {} by {}\n", core::FormatTime(incident.opened_at), incident.opened_by);
  out += fmt::format("- State: {}\n", core::IncidentStateName(incident.state));
  out +=
      fmt::format("- Suspected change: {}\n", incident.suspected_change_id.value_or("none named"));
  out += fmt::format("- External ticket: {}\n", OrPlaceholder(incident.external_ticket, "none"));
  out += fmt::format("- Emergency rollback: {}\n", incident.emergency ? "yes" : "no");
  if (incident.closed_at) {
    out += fmt::format("- Closed: {} by {}\n", core::FormatTime(*incident.closed_at),
                       incident.closed_by);
  }
  return out;
}

std::string Timeline(const core::Incident& incident) {
  std::string out = "| time (UTC) | actor | event | detail |\n| --- | --- | --- | --- |\n";
  for (const core::TimelineEvent& event : incident.timeline) {
    out += fmt::format("| {} | {} | {} | {} |\n", core::FormatTime(event.time), Cell(event.actor),
                       Cell(event.kind), Cell(event.detail));
  }
  return out;
}

std::string Impact(const core::Incident& incident) {
  if (!incident.assessment) return "No assessment was made.\n";
  const core::Assessment& assessment = *incident.assessment;
  std::string out;
  out += fmt::format("- Affected services: {}\n", fmt::join(assessment.affected_services, ", "));
  out += fmt::format("- Customer-facing: {}\n", assessment.customer_facing ? "yes" : "no");
  for (const core::DataImplication& implication : assessment.data_implications) {
    out +=
        fmt::format("- Data: migration {} of {} is {}{}\n", implication.migration_id,
                    implication.change_id, implication.reversible ? "reversible" : "not reversible",
                    implication.detail.empty() ? "" : ": " + implication.detail);
  }
  if (assessment.expected_downtime) {
    out += fmt::format("- Expected downtime: {} s\n", assessment.expected_downtime->count());
  }
  out += fmt::format("- Assessed by {} at {}; digest `{}`\n", assessment.assessed_by,
                     core::FormatTime(assessment.assessed_at), assessment.digest);
  return out;
}

std::string Decisions(const core::Incident& incident) {
  std::string out;
  for (const core::Decision& decision : incident.decisions) {
    out += fmt::format("- {}{} by {} at {}: {}\n", core::DecisionKindName(decision.kind),
                       decision.retroactive ? " (retroactive approval)" : "", decision.decider,
                       core::FormatTime(decision.time), decision.reason);
  }
  return out.empty() ? std::string("No decision was recorded.\n") : out;
}

std::string Rollbacks(const ReviewInputs& inputs) {
  const core::Incident& incident = inputs.incident;
  std::string out;
  if (inputs.suspected_change) {
    const core::Change& change = *inputs.suspected_change;
    out += fmt::format("- Suspected change {}: {} → {}, deployed {} by {}\n", change.id,
                       OrPlaceholder(change.previous_version, "unknown"), change.version,
                       core::FormatTime(change.time), OrPlaceholder(change.deployer, "unknown"));
  }
  if (incident.assessment) {
    out += fmt::format("- Target: {} (chosen by: {})\n",
                       OrPlaceholder(incident.assessment->target_version, "the provider's rule"),
                       incident.assessment->target_rule);
  }
  for (const core::Rollback& rollback : incident.rollbacks) {
    out += fmt::format(
        "- Rollback job {} through {} by {}{}, to {}: {}{}\n", rollback.job_id,
        OrPlaceholder(rollback.provider, "?"), rollback.executor,
        rollback.emergency ? " (break-glass)" : "",
        OrPlaceholder(rollback.target_version, "the provider's target"),
        rollback.outcome ? std::string(core::RollbackOutcomeName(*rollback.outcome)) : "running",
        rollback.message.empty() ? "" : fmt::format(" ({})", rollback.message));
    out += fmt::format("  - requested {}, finished {}\n", core::FormatTime(rollback.requested_at),
                       rollback.finished_at ? core::FormatTime(*rollback.finished_at) : "not yet");
  }
  return out.empty() ? std::string("No rollback was run.\n") : out;
}

std::string Validations(const core::Incident& incident) {
  std::string out;
  for (const core::Validation& validation : incident.validations) {
    out += fmt::format(
        "- Job {} for rollback {}: {}\n", validation.job_id, validation.rollback_job_id,
        validation.finding ? std::string(core::ValidationFindingName(*validation.finding))
                           : "running");
    for (const core::Observation& observation : validation.observations) {
      out += fmt::format("  - {} ({}) at {}: {} — {}\n", observation.check, observation.kind,
                         core::FormatTime(observation.observed_at),
                         core::ObservationResultName(observation.result), observation.detail);
    }
  }
  return out.empty() ? std::string("No validation was run.\n") : out;
}

std::string ContributingFactors(const core::Incident& incident) {
  std::string out;
  for (const std::string& factor : incident.contributing_factors) out += "- " + factor + "\n";
  return out.empty() ? std::string("_To be written._\n") : out;
}

std::string ActionItems(const core::Incident& incident) {
  std::string out;
  for (const core::ActionItem& item : incident.action_items) {
    out += fmt::format("- [{}] {} {} — owner {}, due {}, {}\n",
                       item.status == core::ActionItemStatus::kOpen ? " " : "x", item.id,
                       item.title, item.owner, item.due ? core::FormatDate(*item.due) : "none",
                       core::ActionItemStatusName(item.status));
  }
  if (!incident.no_action_reason.empty()) {
    out += fmt::format("- No action: {}\n", incident.no_action_reason);
  }
  return out.empty() ? std::string("_To be added._\n") : out;
}

}  // namespace

std::string_view BuiltInReviewTemplate() { return kBuiltInTemplate; }

core::Result<void> CheckReviewTemplate(std::string_view text) {
  Mustache parsed{std::string(text)};
  if (!parsed.is_valid()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid review template: {}; see docs/reviews.md for its syntax",
                           parsed.error_message());
  }
  return {};
}

core::Result<std::string> RenderReviewTemplate(const ReviewInputs& inputs,
                                               std::string_view template_text) {
  const core::Incident& incident = inputs.incident;
  Mustache parsed{std::string(template_text.empty() ? kBuiltInTemplate : template_text)};
  if (!parsed.is_valid()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid review template: {}; fix the file named by review.template",
                           parsed.error_message());
  }
  parsed.set_custom_escape([](const std::string& text) { return text; });

  MustacheData data;
  data.set("id", incident.id);
  data.set("title", incident.title);
  data.set("service", incident.service);
  data.set("environment", incident.environment);
  data.set("severity", std::string(core::SeverityName(incident.severity)));
  data.set("owner", OrPlaceholder(inputs.owner, "none yet"));
  data.set("status", OrPlaceholder(inputs.status, "draft"));
  data.set("summary", Summary(inputs));
  data.set("timeline", Timeline(incident));
  data.set("impact", Impact(incident));
  data.set("decision", Decisions(incident));
  data.set("rollback", Rollbacks(inputs));
  data.set("validation", Validations(incident));
  data.set("root_cause", OrPlaceholder(incident.root_cause, "_To be written._") + "\n");
  data.set("contributing_factors", ContributingFactors(incident));
  data.set("action_items", ActionItems(incident));
  std::string out = parsed.render(data);
  if (!parsed.is_valid()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "review template could not be filled: {}", parsed.error_message());
  }
  return out;
}

}  // namespace backout::app
