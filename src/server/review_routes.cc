#include "server/review_routes.h"

#include <fmt/format.h>

#include "server/schema.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string ApiPath(std::string_view tail) { return fmt::format("/api/v1{}", tail); }

template <typename T, typename ToJson>
core::Result<HttpResponse> Answer(core::Result<T> result, ToJson to_json, int status = 200) {
  if (!result) return std::unexpected(result.error());
  return HttpResponse{.status = status, .body = to_json(*result)};
}

std::string BodyText(const HttpRequest& request, const char* key) {
  if (!request.body.is_object()) return "";
  auto it = request.body.find(key);
  return it != request.body.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<std::string> QueryString(const HttpRequest& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

json ReviewJson(const app::ReviewView& review) { return app::ToJson(review); }

Schema ReviewSchema() {
  return ObjectSchema(
      "A post-incident review.",
      {Required("incident", StringSchema("")), Required("markdown", StringSchema("")),
       Required("owner", StringSchema("")),
       Required("status", EnumSchema("", {"draft", "in_review", "completed"})),
       Optional("written_by", StringSchema("")),
       Optional("written_at", StringSchema("", "date-time")),
       Optional("completed_at", StringSchema("", "date-time")),
       Optional("history", ArraySchema("Each change of owner or status.", OpenObjectSchema("")))});
}

void AddReviewRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "PUT",
      .path = ApiPath("/incidents/{id}/review"),
      .operation_id = "writeReview",
      .summary = "Store the post-incident review; without markdown, the configured or built-in "
                 "template filled from the incident. Engineering lead.",
      .request_body = ObjectSchema(
          "", {Optional("markdown", StringSchema("Replaces any review stored before.")),
               Optional("owner", StringSchema("A user on the roster; the caller on a first "
                                              "write when absent."))}),
      .response = ReviewSchema(),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::ReviewWrite write{.owner = BodyText(request, "owner")};
        if (request.body.is_object() && request.body.contains("markdown") &&
            request.body["markdown"].is_string()) {
          write.markdown = request.body["markdown"].get<std::string>();
        }
        return Answer(plane.SaveReview(*request.caller, request.path_parameters.at("id"), write),
                      ReviewJson);
      }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/incidents/{id}/review"),
                   .operation_id = "getReview",
                   .summary = "The stored review with its owner, status and history.",
                   .response = ReviewSchema(),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(
                         plane.ShowReview(*request.caller, request.path_parameters.at("id")),
                         ReviewJson);
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/review/status"),
      .operation_id = "updateReview",
      .summary = "Change the review's status (draft, in_review, completed), its owner, or both. "
                 "Engineering lead or the review's owner.",
      .request_body =
          ObjectSchema("", {Optional("status", EnumSchema("", {"draft", "in_review", "completed"})),
                            Optional("owner", StringSchema("A user on the roster."))}),
      .response = ReviewSchema(),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(plane.UpdateReview(*request.caller, request.path_parameters.at("id"),
                                         app::ReviewUpdate{.status = BodyText(request, "status"),
                                                           .owner = BodyText(request, "owner")}),
                      ReviewJson);
      }});
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/incidents/{id}/review/html"),
      .operation_id = "getReviewHtml",
      .summary = "The review rendered to a self-contained HTML page (cmark-gfm).",
      .response_content_type = "text/html; charset=utf-8",
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto html = plane.ReviewHtml(*request.caller, request.path_parameters.at("id"));
        if (!html) return std::unexpected(html.error());
        return HttpResponse{.text = *std::move(html), .content_type = "text/html; charset=utf-8"};
      }});
}

void AddActionItemReportRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(
      Route{.method = "GET",
            .path = ApiPath("/action-items"),
            .operation_id = "listAllActionItems",
            .summary = "Action items of every incident, by due date and then by id, each with its "
                       "service and the days it is overdue.",
            .query = {{"owner", StringSchema("Only items owned by this user.")},
                      {"service", StringSchema("Only items of this service's incidents.")},
                      {"overdue", StringSchema("`true`: only open items past their due date.")}},
            .response = ObjectSchema(
                "Action items.",
                {Required("items", ArraySchema("", OpenObjectSchema(""))),
                 Required("next_after", StringSchema("Always empty: the list is not paged."))}),
            .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
              app::ActionItemFilter filter{.owner = QueryString(request, "owner"),
                                           .service = QueryString(request, "service")};
              if (auto overdue = QueryString(request, "overdue")) {
                if (*overdue != "true" && *overdue != "false") {
                  return core::MakeError(core::ErrorCode::kInvalidArgument,
                                         "query parameter `overdue` must be true or false, got {}",
                                         *overdue);
                }
                filter.overdue_only = *overdue == "true";
              }
              return Answer(plane.ListAllActionItems(*request.caller, filter),
                            [](const std::vector<app::ActionItemRow>& rows) {
                              json items = json::array();
                              for (const app::ActionItemRow& row : rows)
                                items.push_back(app::ToJson(row));
                              return json{{"items", items}, {"next_after", ""}};
                            });
            }});
}

void AddAccessRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/access/review"),
      .operation_id = "getAccessReview",
      .summary = "Who can decide and execute rollbacks of each service, from the live grants, "
                 "compared with the roster; each provider's bypass paths; the differences as "
                 "findings; the SHA-256 an attestation would record. Admin, engineering lead or "
                 "auditor.",
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(plane.AccessReview(*request.caller),
                      [](const app::AccessReviewReport& report) { return app::ToJson(report); });
      }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/access/review/attestations"),
      .operation_id = "attestAccessReview",
      .summary = "Record in the ledger that the caller reviewed the current access list, with "
                 "its SHA-256. Admin or engineering lead.",
      .request_body = ObjectSchema("", {}),
      .success_status = 201,
      .response = ObjectSchema(
          "The attestation.",
          {Required("id", StringSchema("")), Required("attested_by", StringSchema("")),
           Required("attested_at", StringSchema("", "date-time")),
           Required("sha256", StringSchema("")), Required("findings", IntegerSchema(""))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(
            plane.AttestAccessReview(*request.caller),
            [](const app::AccessAttestation& attestation) { return app::ToJson(attestation); },
            201);
      }});
}

}  // namespace

void AddReviewAndAccessRoutes(Router& router, app::ControlPlane& plane) {
  AddReviewRoutes(router, plane);
  AddActionItemReportRoutes(router, plane);
  AddAccessRoutes(router, plane);
}

}  // namespace backout::server
