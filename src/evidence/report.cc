// report.html: one self-contained page for a person reading the bundle.
#include <fmt/format.h>

#include "evidence/bundle_files.h"
#include "evidence/html_escape.h"
#include "evidence/review_document.h"

namespace backout::evidence::internal {
namespace {

using nlohmann::json;

// A JSON value as display text: strings without quotes, null as an empty cell.
std::string Text(const json& value) {
  if (value.is_null() || value.is_discarded()) return "";
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Field(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  return EscapeHtml(Text(object[key]));
}

std::string Row(std::initializer_list<std::string> cells, const char* tag = "td") {
  std::string out = "<tr>";
  for (const std::string& cell : cells) out += fmt::format("<{0}>{1}</{0}>", tag, cell);
  return out + "</tr>\n";
}

std::string ItemsSection(const std::vector<EvidenceItem>& items) {
  std::string out = "<h2>SOC 2 CC8.1 evidence items</h2>\n<table>\n";
  out += Row({"#", "item", "status", "detail"}, "th");
  for (const EvidenceItem& item : items) {
    out += Row({std::to_string(item.number), EscapeHtml(item.name),
                item.present ? "<span class=\"present\">present</span>"
                             : "<span class=\"missing\">missing</span>",
                EscapeHtml(item.detail)});
  }
  return out + "</table>\n";
}

std::string TimelineSection(const json& incident) {
  std::string out = "<h2>Timeline (UTC)</h2>\n<table>\n";
  out += Row({"time", "actor", "event", "detail"}, "th");
  for (const json& event : incident.value("timeline", json::array())) {
    out += Row({Field(event, "time"), Field(event, "actor"), Field(event, "kind"),
                Field(event, "detail")});
  }
  return out + "</table>\n";
}

std::string DecisionSection(const json& decision) {
  std::string out = "<h2>Decision</h2>\n";
  if (decision.is_discarded()) return out + "<p class=\"missing\">No decision file.</p>\n";
  out += "<table>\n";
  out += Row({"decision", "decider", "time", "reason", "approved digest", "retroactive"}, "th");
  for (const json& item : decision.value("decisions", json::array())) {
    out += Row({Field(item, "kind"), Field(item, "decider"), Field(item, "time"),
                Field(item, "reason"), "<code>" + Field(item, "approved_digest") + "</code>",
                Field(item, "retroactive")});
  }
  out += "</table>\n";
  const json authorizations = decision.value("rollback_authorizations", json::array());
  if (!authorizations.empty()) {
    out +=
        "<p>Each rollback is authorized by the decision in force when it was requested; a "
        "later decision does not change that.</p>\n<table>\n";
    out += Row({"rollback", "authorized", "by", "detail"}, "th");
    for (const json& item : authorizations) {
      const json by = item.value("authorized_by", json());
      out += Row({Field(item, "job_id"),
                  item.value("authorized", false) ? "<span class=\"present\">yes</span>"
                                                  : "<span class=\"missing\">no</span>",
                  by.is_object() ? Field(by, "kind") + " by " + Field(by, "decider") : "",
                  Field(item, "detail")});
    }
    out += "</table>\n";
  }
  const json assessment = decision.value("assessment", json());
  const json latest = decision.value("decision", json());
  if (assessment.is_object()) {
    out += fmt::format("<p>Latest assessment by {} at {}: target {} ({}); digest <code>{}</code>.",
                       Field(assessment, "assessed_by"), Field(assessment, "assessed_at"),
                       Field(assessment, "target_version"), Field(assessment, "target_rule"),
                       Field(assessment, "digest"));
    if (latest.is_object()) {
      out += fmt::format(" The latest decision ({} by {}) was made on {}.", Field(latest, "kind"),
                         Field(latest, "decider"),
                         decision.value("approved_digest_matches_assessment", false)
                             ? std::string("this digest")
                             : "digest <code>" + Field(latest, "approved_digest") + "</code>");
    }
    out += "</p>\n";
  }
  const json policy = decision.value("policy_in_force", json());
  if (policy.is_object()) {
    out += fmt::format(
        "<p>Policy in force: ledger entry {}, loaded at {} by {}, config SHA-256 "
        "<code>{}</code>.</p>\n",
        Field(policy, "ledger_sequence"), Field(policy, "time"), Field(policy, "loaded_by"),
        Field(policy, "config_sha256"));
  }
  return out;
}

std::string VersionsSection(const json& tool_records) {
  std::string out = "<h2>Rollbacks and versions</h2>\n";
  if (!tool_records.is_array() || tool_records.empty()) {
    return out + "<p class=\"missing\">No rollback was executed.</p>\n";
  }
  out += "<table>\n";
  out += Row({"job", "provider", "outcome", "from", "target", "live after", "executor", "approver",
              "started", "finished"},
             "th");
  for (const json& record : tool_records) {
    out +=
        Row({Field(record, "job_id"), Field(record, "provider"), Field(record, "outcome"),
             Field(record, "from_version"), Field(record, "target_version"),
             Field(record, "live_version"), Field(record, "executor"),
             Field(record, "approver") + (record.value("emergency", false) ? " (break-glass)" : ""),
             Field(record, "started_at"), Field(record, "finished_at")});
  }
  return out + "</table>\n";
}

std::string ValidationSection(const BundleFiles& files) {
  std::string out = "<h2>Validation</h2>\n";
  const json validations = ParseFile(files, kObservations);
  const json finding = ParseFile(files, kFinding);
  if (validations.is_discarded()) {
    return out + "<p class=\"missing\">No recovery validation was recorded.</p>\n";
  }
  out += fmt::format("<p>Finding: <strong>{}</strong> ({}).</p>\n", Field(finding, "finding"),
                     Field(finding, "rule"));
  out += "<table>\n";
  out += Row({"validation", "check", "kind", "result", "observed at", "detail"}, "th");
  for (const json& validation : validations) {
    for (const json& observation : validation.value("observations", json::array())) {
      out += Row({Field(validation, "job_id"), Field(observation, "check"),
                  Field(observation, "kind"), Field(observation, "result"),
                  Field(observation, "observed_at"), Field(observation, "detail")});
    }
  }
  out += "</table>\n";
  for (auto it = files.lower_bound(kPrometheusFolder);
       it != files.end() && it->first.starts_with(kPrometheusFolder); ++it) {
    if (it->first.ends_with(".svg")) {
      out += fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n", it->second,
                         EscapeHtml(it->first));
    }
  }
  return out;
}

core::Result<std::string> ReviewSection(const BundleFiles& files) {
  std::string out = "<h2>Review</h2>\n";
  auto review = files.find(kReview);
  if (review == files.end()) return out + "<p class=\"missing\">No review was written.</p>\n";
  // The Markdown rendered by cmark-gfm, which escapes raw HTML, inside a bordered block.
  auto html = MarkdownToHtml(review->second);
  if (!html) return std::unexpected(html.error());
  out += "<div class=\"review\">\n" + *html + "</div>\n";
  const json items = ParseFile(files, kActionItems);
  out += "<h3>Action items</h3>\n<table>\n";
  out += Row({"id", "title", "owner", "due", "status", "evidence or reason"}, "th");
  for (const json& item :
       items.is_object() ? items.value("action_items", json::array()) : json::array()) {
    out += Row({Field(item, "id"), Field(item, "title"), Field(item, "owner"), Field(item, "due"),
                Field(item, "status"), Field(item, "evidence_link") + Field(item, "reason")});
  }
  return out + "</table>\n";
}

constexpr char kStyle[] =
    "body{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;"
    "font-size:.9rem}th{background:#f2f2f2}code{font-size:.8rem;word-break:break-all}"
    ".present{color:#0a6b2d;font-weight:bold}.missing{color:#b00020;font-weight:bold}"
    "div.review{background:#fafafa;border:1px solid #ddd;padding:1rem}"
    "figure{margin:1rem 0}";

}  // namespace

core::Result<std::string> RenderReport(const BundleFiles& files,
                                       const std::vector<EvidenceItem>& items) {
  const json incident = ParseFile(files, kIncident);
  const std::string id = Field(incident, "id");
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += fmt::format("<title>Evidence for {}</title>\n<style>{}</style>\n</head>\n<body>\n", id,
                     kStyle);
  out += fmt::format("<h1>Rollback evidence: {} — {}</h1>\n", id, Field(incident, "title"));
  out += fmt::format(
      "<p>Service {} ({}), severity {}, state {}. External ticket: {}. Opened by {} at {}.</p>\n",
      Field(incident, "service"), Field(incident, "environment"), Field(incident, "severity"),
      Field(incident, "state"),
      incident.value("external_ticket", "").empty() ? "none" : Field(incident, "external_ticket"),
      Field(incident, "opened_by"), Field(incident, "opened_at"));
  out += ItemsSection(items);
  out += TimelineSection(incident);
  out += DecisionSection(ParseFile(files, kDecision));
  out += VersionsSection(ParseFile(files, kToolRecord));
  out += ValidationSection(files);
  out += fmt::format("<h2>Root cause</h2>\n<p>{}</p>\n", Field(incident, "root_cause"));
  auto review = ReviewSection(files);
  if (!review) return std::unexpected(review.error());
  out += *review;
  out +=
      "<p>Integrity: run <code>backout evidence verify</code> on the bundle, or follow the "
      "openssl steps of the evidence format documentation.</p>\n</body>\n</html>\n";
  return out;
}

}  // namespace backout::evidence::internal
