#include "server/evidence_routes.h"

#include <fmt/format.h>

#include "core/time.h"

namespace backout::server {
namespace {

// Parses an optional RFC 3339 query parameter.
core::Result<std::optional<core::Time>> QueryTime(const HttpRequest& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  auto time = core::ParseTime(it->second);
  if (!time) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "query parameter `{}`: {}; write it as 2026-12-04T17:05:41Z", name,
                           time.error().message);
  }
  return *time;
}

// The date and time of `time` in a form fit for a file name: 20261204T170541Z.
std::string FileDate(core::Time time) {
  std::string text;
  for (char c : core::FormatTime(time).substr(0, 19)) {
    if (c != '-' && c != ':') text += c;
  }
  return text + "Z";
}

}  // namespace

void AddEvidenceRoutes(Router& router, app::ControlPlane& plane) {
  constexpr char kGzip[] = "application/gzip";
  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/incidents/{id}/evidence",
      .operation_id = "getIncidentEvidence",
      .summary = "The incident's evidence bundle: a deterministic tar.gz with a signed manifest "
                 "and ledger proofs. Admin, engineering lead or auditor.",
      .response_content_type = kGzip,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        const std::string& id = request.path_parameters.at("id");
        auto bundle = plane.ExportEvidence(*request.caller, id);
        if (!bundle) return std::unexpected(bundle.error());
        return HttpResponse{
            .text = *std::move(bundle),
            .content_type = kGzip,
            .headers = {{"Content-Disposition",
                         fmt::format("attachment; filename=\"{}-evidence.tar.gz\"", id)}}};
      }});
  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/audit/findings",
      .operation_id = "getAuditFindings",
      .summary = "Open audit findings: undocumented, unauthorized, unapproved or unvalidated "
                 "rollbacks, overdue follow-up, grants off the roster, ledger failures. Admin, "
                 "engineering lead or auditor.",
      .query = {{"at", StringSchema("Evaluate as of this RFC 3339 time; now when absent.")},
                {"from", StringSchema("Only rollbacks requested at or after this time.")},
                {"to", StringSchema("Only rollbacks requested before this time.")}},
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::AuditRequest audit;
        for (auto [name, field] : {std::pair{"at", &audit.at}, std::pair{"from", &audit.from},
                                   std::pair{"to", &audit.to}}) {
          auto time = QueryTime(request, name);
          if (!time) return std::unexpected(time.error());
          *field = *time;
        }
        const core::Time at = audit.at.value_or(plane.clock().Now());
        audit.at = at;
        auto findings = plane.AuditCheck(*request.caller, audit);
        if (!findings) return std::unexpected(findings.error());
        nlohmann::json items = nlohmann::json::array();
        for (const evidence::AuditFinding& finding : *findings) {
          items.push_back(evidence::ToJson(finding));
        }
        return HttpResponse{.body = {{"evaluated_at", core::FormatTime(at)},
                                     {"open", items.size()},
                                     {"findings", items}}};
      }});
  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/evidence",
      .operation_id = "getPeriodEvidence",
      .summary = "The evidence bundle of a period: a deterministic tar.gz with every incident of "
                 "the period, the population, the policies in force and a consistency proof "
                 "between the checkpoints around it. Admin, engineering lead or auditor.",
      .query = {{.name = "from",
                 .schema = StringSchema("Start of the period (RFC 3339), inclusive."),
                 .required = true},
                {.name = "to",
                 .schema = StringSchema("End of the period (RFC 3339), exclusive."),
                 .required = true}},
      .response_content_type = kGzip,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto from = QueryTime(request, "from");
        if (!from) return std::unexpected(from.error());
        auto to = QueryTime(request, "to");
        if (!to) return std::unexpected(to.error());
        if (!*from || !*to) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "query parameters `from` and `to` are both required, e.g. "
                                 "?from=2026-10-01T00:00:00Z&to=2027-01-01T00:00:00Z");
        }
        auto bundle = plane.ExportPeriodEvidence(*request.caller, **from, **to);
        if (!bundle) return std::unexpected(bundle.error());
        return HttpResponse{
            .text = *std::move(bundle),
            .content_type = kGzip,
            .headers = {{"Content-Disposition",
                         fmt::format("attachment; filename=\"evidence-{}-{}.tar.gz\"",
                                     FileDate(**from), FileDate(**to))}}};
      }});
  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/evidence/population",
      .operation_id = "getPopulation",
      .summary = "Every change and rollback of a period, one row each, for an auditor's sample. "
                 "Admin, engineering lead or auditor.",
      .query = {{"from", StringSchema("Start of the period (RFC 3339), inclusive.")},
                {"to", StringSchema("End of the period (RFC 3339), exclusive.")}},
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto from = QueryTime(request, "from");
        if (!from) return std::unexpected(from.error());
        auto to = QueryTime(request, "to");
        if (!to) return std::unexpected(to.error());
        auto rows = plane.Population(*request.caller, *from, *to);
        if (!rows) return std::unexpected(rows.error());
        return HttpResponse{.body = {{"items", *rows}, {"next_after", ""}}};
      }});
}

}  // namespace backout::server
