#include "server/reconciliation_routes.h"

#include <fmt/format.h>

#include "server/api_json.h"
#include "server/schema.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string ApiPath(std::string_view tail) { return fmt::format("/api/v1{}", tail); }

const app::Caller& CallerOf(const HttpRequest& request) { return *request.caller; }

const std::string& Parameter(const HttpRequest& request, const char* name) {
  return request.path_parameters.at(name);
}

std::optional<std::string> QueryString(const HttpRequest& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

core::Result<app::ListOptions> ListOptionsOf(const HttpRequest& request, std::string_view prefix) {
  app::ListOptions options;
  if (auto limit = ReadPageLimit(request, options); !limit) return std::unexpected(limit.error());
  if (auto cursor = ReadPageCursor(request, IdForm::kNumbered, prefix, options); !cursor) {
    return std::unexpected(cursor.error());
  }
  return options;
}

template <typename T, typename ToJson>
core::Result<HttpResponse> Answer(core::Result<T> result, ToJson to_json) {
  if (!result) return std::unexpected(result.error());
  return HttpResponse{.status = 200, .body = to_json(*result)};
}

std::vector<QueryParameter> PageParameters() {
  return {{"limit", PageLimitSchema()},
          {"after", StringSchema("Return the items that follow this id in list order (from "
                                 "next_after).")}};
}

Schema ListResponse(std::string description) {
  return ObjectSchema(std::move(description),
                      {Required("items", ArraySchema("The page's items.", OpenObjectSchema(""))),
                       Required("next_after", StringSchema("Pass as `after` for the next page; "
                                                           "empty on the last page."))});
}

// The body app::ToJson(ReconcileReport) writes.
Schema ReconcileReportSchema() {
  return ObjectSchema(
      "What the run read and recorded.",
      {Required("service", StringSchema("The service reconciled.")),
       Required("reconcilable",
                BooleanSchema("false when the provider keeps no history to read; see `reason`.")),
       Required("reason", StringSchema("Why the service cannot be reconciled; empty when it can.")),
       Required("entries_read", IntegerSchema("History entries the provider returned.")),
       Required("already_known", IntegerSchema("Entries an earlier run reconciled.")),
       Required("matched", IntegerSchema("Entries that match a recorded change or one of "
                                         "Backout's rollbacks.")),
       Required("discovered_changes",
                ArraySchema("Ids of the changes recorded from the history.", StringSchema(""))),
       Required("discovered_rollbacks",
                ArraySchema("Ids of the discovered rollbacks recorded.", StringSchema(""))),
       Required("live_problem", StringSchema("Why the tool shows no live version; empty when it "
                                             "shows one."))});
}

json DiscoveredJson(const app::DiscoveredRollback& found) { return app::ToJson(found); }

// A delivery as the API shows it: the body it sends, parsed back when it is JSON.
json NotificationJson(const app::Notification& notification) {
  json out = app::ToJson(notification);
  out["body"] = json::parse(notification.body, nullptr, /*allow_exceptions=*/false);
  if (out["body"].is_discarded()) out["body"] = notification.body;
  return out;
}

void AddDiscoveredRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(
      Route{.method = "GET",
            .path = ApiPath("/discovered-rollbacks"),
            .operation_id = "listDiscoveredRollbacks",
            .summary = "Rollbacks found in the tools' own history that Backout did not perform.",
            .query =
                [] {
                  auto query = PageParameters();
                  query.push_back({"service", StringSchema("Only those of this service.")});
                  query.push_back({"state", EnumSchema("Only those in this state.",
                                                       {"open", "linked", "documented"})});
                  return query;
                }(),
            .response = ListResponse("Discovered rollbacks in the order recorded."),
            .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
              auto options = ListOptionsOf(request, "DRB-");
              if (!options) return std::unexpected(options.error());
              app::DiscoveredRollbackFilter filter{.service = QueryString(request, "service"),
                                                   .state = QueryString(request, "state")};
              return Answer(plane.ListDiscoveredRollbacks(CallerOf(request), filter, *options),
                            [](const auto& page) { return PageJson(page, DiscoveredJson); });
            }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/discovered-rollbacks/{id}"),
                   .operation_id = "getDiscoveredRollback",
                   .summary = "One discovered rollback.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(
                         plane.GetDiscoveredRollback(CallerOf(request), Parameter(request, "id")),
                         DiscoveredJson);
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/discovered-rollbacks/{id}/link"),
      .operation_id = "linkDiscoveredRollback",
      .summary = "Link an open discovered rollback to an incident of the same service. "
                 "Engineering lead or devops engineer.",
      .request_body = ObjectSchema("", {Required("incident", StringSchema("An incident id."))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(plane.LinkDiscoveredRollback(CallerOf(request), Parameter(request, "id"),
                                                   request.body.at("incident").get<std::string>()),
                      DiscoveredJson);
      }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/discovered-rollbacks/{id}/document"),
      .operation_id = "documentDiscoveredRollback",
      .summary = "Close an open discovered rollback with the reason it happened. Engineering lead "
                 "or devops engineer.",
      .request_body =
          ObjectSchema("", {Required("reason", StringSchema("Why the rollback happened."))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(
            plane.DocumentDiscoveredRollback(CallerOf(request), Parameter(request, "id"),
                                             request.body.at("reason").get<std::string>()),
            DiscoveredJson);
      }});
}

void AddServiceReconciliationRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/services/{name}/reconcile"),
      .operation_id = "reconcileService",
      .summary = "Read the provider's history now and record what Backout did not: discovered "
                 "changes and discovered rollbacks. Engineering lead or devops engineer.",
      .request_body = ObjectSchema("", {}),
      .response = ReconcileReportSchema(),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(plane.Reconcile(CallerOf(request), Parameter(request, "name")),
                      [](const app::ReconcileReport& report) { return app::ToJson(report); });
      }});
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/services/{name}/timeline"),
      .operation_id = "getServiceTimeline",
      .summary = "The service's changes, rollbacks, discovered rollbacks and incidents, oldest "
                 "first.",
      .response = ListResponse("Timeline items with time, kind, id, actor and summary."),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        return Answer(plane.ServiceTimeline(CallerOf(request), Parameter(request, "name")),
                      [](const json& items) {
                        return json{{"items", items}, {"next_after", ""}};
                      });
      }});
}

void AddNotificationRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/notifications"),
      .operation_id = "listNotifications",
      .summary = "Webhook deliveries with their state and attempts, in the order recorded; with "
                 "failed=true only the dead-lettered ones.",
      .query =
          [] {
            auto query = PageParameters();
            query.push_back({"failed", EnumSchema("true: only deliveries that were dead-lettered "
                                                  "after their last attempt.",
                                                  {"true", "false"})});
            return query;
          }(),
      .response = ListResponse("Deliveries."),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto options = ListOptionsOf(request, "NTF-");
        if (!options) return std::unexpected(options.error());
        const bool failed = QueryString(request, "failed").value_or("false") == "true";
        return Answer(plane.ListNotifications(CallerOf(request), failed, *options),
                      [](const auto& page) { return PageJson(page, NotificationJson); });
      }});
}

}  // namespace

void AddReconciliationAndNotificationRoutes(Router& router, app::ControlPlane& plane) {
  AddDiscoveredRoutes(router, plane);
  AddServiceReconciliationRoutes(router, plane);
  AddNotificationRoutes(router, plane);
}

}  // namespace backout::server
