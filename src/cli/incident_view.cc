#include "cli/incident_view.h"

#include <initializer_list>
#include <vector>

#include <fmt/format.h>

#include "cli/output.h"

namespace backout::cli {
namespace {

// The members of `object` named in `keys` that are present, in the order of `keys`.
Json Pick(const Json& object, std::initializer_list<const char*> keys) {
  Json picked = Json::object();
  for (const char* key : keys) {
    if (object.is_object() && object.contains(key)) {
      picked[key] = object[key];
    }
  }
  return picked;
}

// A titled table of the array `incident[key]`, or "" when it is missing or empty.
std::string RenderSection(const Json& incident, const char* key,
                          const std::vector<Column>& columns) {
  if (!incident.contains(key) || !incident[key].is_array() || incident[key].empty()) {
    return "";
  }
  return fmt::format("\n{}:\n{}", key, IndentText(RenderTable(incident[key], columns), 2));
}

std::string RenderAssessment(const Json& incident) {
  if (!incident.contains("assessment") || !incident["assessment"].is_object()) {
    return "";
  }
  const Json& assessment = incident["assessment"];
  Json summary = Pick(assessment, {"target_version", "target_rule", "affected_services",
                                   "customer_facing", "assessed_by", "assessed_at", "digest"});
  if (assessment.contains("plan") && assessment["plan"].is_object()) {
    const std::string plan_summary = StringField(assessment["plan"], "summary");
    if (!plan_summary.empty()) {
      summary["plan"] = plan_summary;
    }
  }
  return "\nassessment:\n" + IndentText(RenderObject(summary), 2);
}

}  // namespace

std::string RenderIncidentView(const Json& incident) {
  if (!incident.is_object()) {
    return RenderObject(incident);
  }
  std::string out = RenderObject(
      Pick(incident, {"id", "service", "environment", "severity", "title", "state", "emergency",
                      "suspected_change_id", "external_ticket", "opened_by", "opened_at",
                      "root_cause", "contributing_factors", "closed_by", "closed_at"}));
  out += RenderAssessment(incident);
  out += RenderSection(incident, "decisions",
                       {{"TIME", "time"},
                        {"DECIDER", "decider"},
                        {"KIND", "kind"},
                        {"RETROACTIVE", "retroactive"},
                        {"REASON", "reason"}});
  out += RenderSection(incident, "rollbacks",
                       {{"JOB", "job_id"},
                        {"EXECUTOR", "executor"},
                        {"TARGET", "target_version"},
                        {"EMERGENCY", "emergency"},
                        {"OUTCOME", "outcome"},
                        {"FINISHED", "finished_at"},
                        {"MESSAGE", "message"}});
  out += RenderSection(incident, "validations",
                       {{"JOB", "job_id"},
                        {"FINDING", "finding"},
                        {"REQUESTED_BY", "requested_by"},
                        {"FINISHED", "finished_at"}});
  out += RenderSection(incident, "attachments",
                       {{"NAME", "name"}, {"SIZE", "size"}, {"SHA256", "sha256"}});
  out += RenderSection(
      incident, "action_items",
      {{"ID", "id"}, {"STATUS", "status"}, {"OWNER", "owner"}, {"DUE", "due"}, {"TITLE", "title"}});
  out += RenderSection(
      incident, "timeline",
      {{"TIME", "time"}, {"ACTOR", "actor"}, {"EVENT", "kind"}, {"DETAIL", "detail"}});

  if (const std::string writer = StringField(incident, "review_written_by"); !writer.empty()) {
    out += fmt::format("\nreview: written by {} at {}; print it with `backout review show {}`\n",
                       writer, StringField(incident, "review_written_at"),
                       StringField(incident, "id"));
  }
  return out;
}

}  // namespace backout::cli
