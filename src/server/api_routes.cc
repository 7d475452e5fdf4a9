#include "server/api_routes.h"

#include <charconv>

#include <fmt/format.h>

#include "core/attachment_limits.h"
#include "server/api_json.h"
#include "server/check_routes.h"
#include "server/evidence_routes.h"
#include "server/openapi.h"
#include "server/reconciliation_routes.h"
#include "server/release_routes.h"
#include "server/review_routes.h"
#include "server/schema.h"
#include "server/signal_routes.h"

namespace backout::server {
namespace {

using nlohmann::json;

constexpr char kApi[] = "/api/v1";

// The body limit of `POST …/document`: the largest attachment total in base64 plus 1 MiB for the
// root cause, the factors, the names and the JSON around them. The default limit of 1 MiB would
// reject attachments far below core::kMaxDocumentAttachmentBytes.
constexpr size_t kDocumentBodyBytes =
    core::Base64Length(core::kMaxDocumentAttachmentBytes) + (size_t{1} << 20);

std::string ApiPath(std::string_view tail) { return fmt::format("{}{}", kApi, tail); }

HttpResponse Ok(json body, int status = 200) {
  return HttpResponse{.status = status, .body = std::move(body)};
}

// Converts a use case's result into a response, or passes its error on.
template <typename T, typename ToJson>
core::Result<HttpResponse> Answer(core::Result<T> result, ToJson to_json, int status = 200) {
  if (!result) return std::unexpected(result.error());
  return Ok(to_json(*result), status);
}

const app::Caller& CallerOf(const HttpRequest& request) { return *request.caller; }

const std::string& Parameter(const HttpRequest& request, const char* name) {
  return request.path_parameters.at(name);
}

core::Result<uint64_t> QueryNumber(const HttpRequest& request, const char* name,
                                   std::optional<uint64_t> fallback = std::nullopt) {
  auto it = request.query.find(name);
  if (it == request.query.end()) {
    if (fallback) return *fallback;
    return core::MakeError(core::ErrorCode::kInvalidArgument, "query parameter `{}` is required",
                           name);
  }
  uint64_t value = 0;
  std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
  return value;
}

core::Result<app::ListOptions> ListOptionsOf(const HttpRequest& request, IdForm form,
                                             std::string_view prefix = "") {
  app::ListOptions options;
  if (auto limit = ReadPageLimit(request, options); !limit) return std::unexpected(limit.error());
  if (auto cursor = ReadPageCursor(request, form, prefix, options); !cursor) {
    return std::unexpected(cursor.error());
  }
  return options;
}

std::optional<std::string> QueryString(const HttpRequest& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
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

json UserJson(const core::User& user) { return user; }
json ChangeJson(const core::Change& change) { return change; }
json FreezeJson(const app::Freeze& freeze) { return freeze; }

void AddPublicRoutes(Router& router, app::ControlPlane& plane, const ApiEnvironment& environment) {
  router.Add(Route{.method = "GET",
                   .path = "/healthz",
                   .operation_id = "getHealth",
                   .summary = "Liveness: the process responds.",
                   .access = Access::kPublic,
                   .response = ObjectSchema("", {Required("status", EnumSchema("", {"ok"}))}),
                   .handler = [](const HttpRequest&) -> core::Result<HttpResponse> {
                     return Ok({{"status", "ok"}});
                   }});
  router.Add(Route{
      .method = "GET",
      .path = "/readyz",
      .operation_id = "getReadiness",
      .summary = "Readiness: the database is reachable and the server is not shutting down.",
      .access = Access::kPublic,
      .response = ObjectSchema("", {Required("status", EnumSchema("", {"ready"}))}),
      .handler = [&plane, stopping = environment.stopping](
                     const HttpRequest&) -> core::Result<HttpResponse> {
        if (stopping != nullptr && stopping->load()) {
          return core::MakeError(core::ErrorCode::kUnavailable, "the server is shutting down");
        }
        auto probe = plane.store().Read([](store::Transaction& tx) -> core::Result<void> {
          auto count = tx.List(store::ListQuery{.kind = "user", .limit = 1});
          if (!count) return std::unexpected(count.error());
          return {};
        });
        if (!probe) {
          return core::MakeError(core::ErrorCode::kUnavailable, "the database is unreachable: {}",
                                 probe.error().message);
        }
        return Ok({{"status", "ready"}});
      }});
  router.Add(Route{
      .method = "GET",
      .path = "/metrics",
      .operation_id = "getMetrics",
      .summary = "Prometheus metrics in the text exposition format.",
      .access = Access::kMetrics,
      .response_content_type = "text/plain; version=0.0.4",
      .handler = [metrics = environment.metrics](const HttpRequest&) -> core::Result<HttpResponse> {
        return HttpResponse{.text = metrics->Render(), .content_type = "text/plain; version=0.0.4"};
      }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/openapi.json"),
                   .operation_id = "getOpenApi",
                   .summary = "This API's OpenAPI 3.0 document, built from the route table.",
                   .access = Access::kPublic,
                   .handler = [&router, version = environment.version](
                                  const HttpRequest&) -> core::Result<HttpResponse> {
                     return Ok(BuildOpenApi(router, version));
                   }});
}

void AddIdentityRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/whoami"),
                   .operation_id = "whoami",
                   .summary = "The caller's name, roles and service grants.",
                   .handler = [](const HttpRequest& request) -> core::Result<HttpResponse> {
                     const app::Caller& caller = CallerOf(request);
                     json out = caller.user;
                     out["token_id"] = caller.token_id;
                     return Ok(out);
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/users"),
      .operation_id = "createUser",
      .summary = "Create a user from the roster with roles and service grants; returns its token "
                 "once. Admin only.",
      .request_body = ObjectSchema(
          "", {Required("name", StringSchema("A name on the config's users roster.")),
               Required("roles",
                        ArraySchema("Roles within the roster entry's roles.",
                                    EnumSchema("", {"admin", "engineering-lead", "devops-engineer",
                                                    "auditor", "viewer", "ci"}))),
               Optional("services", ArraySchema("Services within the roster entry's services.",
                                                StringSchema(""))),
               Optional("expires_at", StringSchema("When the token stops working.", "date-time"))}),
      .success_status = 201,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto user = ReadNewUser(request.body);
        if (!user) return std::unexpected(user.error());
        return Answer(
            plane.CreateUser(CallerOf(request), *user),
            [](const app::CreatedUser& created) {
              return json{
                  {"user", created.user},
                  {"token", created.token},
                  {"token_id", created.token_id},
                  {"expires_at", created.expires_at ? json(core::FormatTime(*created.expires_at))
                                                    : json(nullptr)}};
            },
            201);
      }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/users"),
                   .operation_id = "listUsers",
                   .summary = "Users and their grants, by name. Admin or auditor.",
                   .query = PageParameters(),
                   .response = ListResponse("Users."),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     auto options = ListOptionsOf(request, IdForm::kName);
                     if (!options) return std::unexpected(options.error());
                     return Answer(plane.ListUsers(CallerOf(request), *options),
                                   [](const auto& page) { return PageJson(page, UserJson); });
                   }});
  router.Add(Route{.method = "DELETE",
                   .path = ApiPath("/tokens/{token_id}"),
                   .operation_id = "revokeToken",
                   .summary = "Revoke a token. Admin, or the token's owner.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(
                         plane.RevokeToken(CallerOf(request), Parameter(request, "token_id")),
                         [](const app::RevokedToken& revoked) {
                           return json{{"token_id", revoked.token_id},
                                       {"revoked_at", core::FormatTime(revoked.revoked_at)}};
                         });
                   }});
}

void AddConfigRoutes(Router& router, app::ControlPlane& plane, const ApiEnvironment& environment) {
  if (!environment.reload) return;
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/config/reload"),
      .operation_id = "reloadConfig",
      .summary = "Load the config file again and record the new policy with its digest and the "
                 "caller's name. Admin only. Listen and database changes need a restart.",
      .request_body = ObjectSchema("", {}),
      .handler = [&plane, reload = environment.reload](
                     const HttpRequest& request) -> core::Result<HttpResponse> {
        const app::Caller& caller = CallerOf(request);
        if (auto allowed = plane.AuthorizeReload(caller); !allowed) {
          return std::unexpected(allowed.error());
        }
        return Answer(reload(caller.name()), [&caller](const std::string& digest) {
          return json{{"config_sha256", digest}, {"loaded_by", caller.name()}};
        });
      }});
}

void AddServiceAndChangeRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/services"),
                   .operation_id = "listServices",
                   .summary = "Configured services with their provider kind and freeze.",
                   .response = ListResponse("Services."),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.ListServices(CallerOf(request)), [](const auto& services) {
                       json items = json::array();
                       for (const app::ServiceSummary& service : services) {
                         items.push_back({{"name", service.name},
                                          {"environment", service.environment},
                                          {"provider", service.provider_kind},
                                          {"frozen", service.frozen}});
                       }
                       return json{{"items", items}, {"next_after", ""}};
                     });
                   }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/services/{name}"),
                   .operation_id = "showService",
                   .summary = "A service's configuration (secret references only), live state "
                              "and freeze.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.ShowService(CallerOf(request), Parameter(request, "name")),
                                   [](const app::ServiceDetail& detail) {
                                     json out = detail.service;
                                     out["live_state"] = detail.live_state;
                                     out["freeze"] = detail.freeze;
                                     return out;
                                   });
                   }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/services/{name}/freeze"),
                   .operation_id = "getFreeze",
                   .summary = "Whether deploys of the service are frozen; CI asks before "
                              "deploying. Any role, ci included.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.GetFreeze(CallerOf(request), Parameter(request, "name")),
                                   FreezeJson);
                   }});
  router.Add(Route{.method = "POST",
                   .path = ApiPath("/services/{name}/unfreeze"),
                   .operation_id = "unfreezeService",
                   .summary = "Lift the deploy freeze. Engineering lead.",
                   .request_body = ObjectSchema(
                       "", {Required("reason", StringSchema("Why deploys may resume."))}),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.Unfreeze(CallerOf(request), Parameter(request, "name"),
                                                  request.body.at("reason").get<std::string>()),
                                   FreezeJson);
                   }});

  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/changes"),
      .operation_id = "recordChange",
      .summary = "Record a deployment. ci, devops engineer or engineering lead.",
      .request_body = ObjectSchema(
          "",
          {Required("service", StringSchema("A configured service.")),
           Optional("environment", StringSchema("Defaults to the service's environment.")),
           Required("version", StringSchema("The version deployed.")),
           Optional("previous_version", StringSchema("The version it replaced.")),
           Optional("external_ticket", StringSchema("Change ticket reference.")),
           Optional("approver", StringSchema("Who approved the change.")),
           Optional("deployer", StringSchema("Who deployed it.")),
           Optional("time", StringSchema("When it was deployed; now when absent.", "date-time")),
           Optional("migrations",
                    ArraySchema("Schema or data migrations the change ran.",
                                ObjectSchema("", {Required("id", StringSchema("")),
                                                  Required("reversible", BooleanSchema(""))}))),
           Optional("risk", StringSchema("Risk rating in the team's words."))}),
      .success_status = 201,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto change = ReadNewChange(request.body);
        if (!change) return std::unexpected(change.error());
        return Answer(plane.RecordChange(CallerOf(request), *change), ChangeJson, 201);
      }});
  router.Add(
      Route{.method = "GET",
            .path = ApiPath("/changes"),
            .operation_id = "listChanges",
            .summary = "Recorded changes, optionally of one service, in the order recorded.",
            .query =
                [] {
                  auto query = PageParameters();
                  query.push_back({"service", StringSchema("Only changes of this service.")});
                  return query;
                }(),
            .response = ListResponse("Changes."),
            .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
              auto options = ListOptionsOf(request, IdForm::kNumbered, "CHG-");
              if (!options) return std::unexpected(options.error());
              return Answer(
                  plane.ListChanges(CallerOf(request), QueryString(request, "service"), *options),
                  [](const auto& page) { return PageJson(page, ChangeJson); });
            }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/changes/{id}"),
                   .operation_id = "getChange",
                   .summary = "One change.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.GetChange(CallerOf(request), Parameter(request, "id")),
                                   ChangeJson);
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/changes/{id}/verify"),
      .operation_id = "verifyChange",
      .summary = "Mark a change validated good (passed) or bad.",
      .request_body = ObjectSchema("", {Required("passed", BooleanSchema("")),
                                        Optional("details", StringSchema("A CI run URL or a "
                                                                         "sentence."))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::ChangeVerification verification{
            .passed = request.body.at("passed").get<bool>(),
            .details = request.body.value("details", json(nullptr)).is_string()
                           ? request.body["details"].get<std::string>()
                           : ""};
        return Answer(plane.VerifyChange(CallerOf(request), Parameter(request, "id"), verification),
                      ChangeJson);
      }});
}

void AddIncidentRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents"),
      .operation_id = "openIncident",
      .summary = "Open an incident. Engineering lead or devops engineer.",
      .request_body = ObjectSchema(
          "", {Required("service", StringSchema("A configured service.")),
               Required("severity", EnumSchema("", {"sev1", "sev2", "sev3", "sev4"})),
               Required("title", StringSchema("")),
               Optional("suspected_change", StringSchema("The change suspected of causing it.")),
               Optional("external_ticket", StringSchema("Incident ticket reference."))}),
      .success_status = 201,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto incident = ReadNewIncident(request.body);
        if (!incident) return std::unexpected(incident.error());
        return Answer(plane.OpenIncident(CallerOf(request), *incident), IncidentJson, 201);
      }});
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/incidents"),
      .operation_id = "listIncidents",
      .summary = "Incidents, optionally of one service or in one state, in the order recorded.",
      .query =
          [] {
            auto query = PageParameters();
            query.push_back({"service", StringSchema("Only incidents of this service.")});
            query.push_back({"state", EnumSchema("Only incidents in this state.",
                                                 {"open", "assessing", "decided", "rolling_back",
                                                  "validating", "documenting", "closed"})});
            return query;
          }(),
      .response = ListResponse("Incidents."),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto options = ListOptionsOf(request, IdForm::kNumbered, "INC-");
        if (!options) return std::unexpected(options.error());
        app::IncidentFilter filter{.service = QueryString(request, "service")};
        if (auto state = QueryString(request, "state")) {
          auto parsed = core::ParseIncidentState(*state);
          if (!parsed) return std::unexpected(parsed.error());
          filter.state = *parsed;
        }
        return Answer(plane.ListIncidents(CallerOf(request), filter, *options),
                      [](const auto& page) { return PageJson(page, IncidentJson); });
      }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/incidents/{id}"),
                   .operation_id = "getIncident",
                   .summary = "The whole incident, timeline included.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.GetIncident(CallerOf(request), Parameter(request, "id")),
                                   IncidentJson);
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/assess"),
      .operation_id = "assessIncident",
      .summary = "Compute the impact assessment and plan with their digest. Engineering lead.",
      .request_body = ObjectSchema(
          "", {Optional("target_version",
                        StringSchema("Roll back to this version instead of the chosen target."))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::AssessRequest assess;
        if (request.body.contains("target_version") && request.body["target_version"].is_string()) {
          assess.target_version = request.body["target_version"].get<std::string>();
        }
        return Answer(plane.Assess(CallerOf(request), Parameter(request, "id"), assess),
                      IncidentJson);
      }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/decision"),
      .operation_id = "decideIncident",
      .summary = "Go or no-go on the assessed plan, or a retroactive approval of an emergency "
                 "rollback. Engineering lead.",
      .request_body = ObjectSchema(
          "", {Required("decision", EnumSchema("", {"go", "no_go"})),
               Required("reason", StringSchema("")),
               Optional("approved_digest",
                        StringSchema("The assessment digest approved; the current one when "
                                     "absent.")),
               Optional("override_reason",
                        StringSchema("Required to go across an irreversible migration.")),
               Optional("retroactive",
                        BooleanSchema("Approve the incident's emergency rollbacks after the "
                                      "fact."))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto decision = ReadDecision(request.body);
        if (!decision) return std::unexpected(decision.error());
        return Answer(plane.Decide(CallerOf(request), Parameter(request, "id"), *decision),
                      IncidentJson);
      }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/rollback"),
      .operation_id = "rollbackIncident",
      .summary = "Run the approved plan as a durable job; with emergency, a break-glass rollback "
                 "without a decision. Devops engineer granted the service.",
      .request_body =
          ObjectSchema("", {Optional("emergency", BooleanSchema("Break-glass: needs a reason.")),
                            Optional("reason", StringSchema("Why, for an emergency rollback."))}),
      .success_status = 202,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::RollbackRequest rollback{
            .emergency = request.body.value("emergency", json(false)).is_boolean() &&
                         request.body.value("emergency", false),
            .reason = request.body.value("reason", json(nullptr)).is_string()
                          ? request.body["reason"].get<std::string>()
                          : ""};
        return Answer(
            plane.RequestRollback(CallerOf(request), Parameter(request, "id"), rollback),
            [](const app::AcceptedJob& accepted) {
              return json{{"job_id", accepted.job_id},
                          {"incident", IncidentJson(accepted.incident)}};
            },
            202);
      }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/confirm"),
      .operation_id = "confirmRollback",
      .summary = "Say whether an interrupted or pending rollback happened.",
      .request_body = ObjectSchema(
          "", {Required("happened", BooleanSchema("")), Required("reason", StringSchema(""))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::ConfirmRequest confirm{.happened = request.body.at("happened").get<bool>(),
                                    .reason = request.body.at("reason").get<std::string>()};
        return Answer(plane.Confirm(CallerOf(request), Parameter(request, "id"), confirm),
                      IncidentJson);
      }});
  router.Add(Route{.method = "POST",
                   .path = ApiPath("/incidents/{id}/validate"),
                   .operation_id = "validateIncident",
                   .summary = "Run the service's recovery checks as a job.",
                   .request_body = ObjectSchema("", {}),
                   .success_status = 202,
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(
                         plane.RequestValidation(CallerOf(request), Parameter(request, "id")),
                         [](const app::AcceptedJob& accepted) {
                           return json{{"job_id", accepted.job_id},
                                       {"incident", IncidentJson(accepted.incident)}};
                         },
                         202);
                   }});
}

void AddFollowUpRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/document"),
      .operation_id = "documentIncident",
      .summary = "Record the root cause, contributing factors and attachments.",
      .request_body = ObjectSchema(
          "", {Required("root_cause", StringSchema("")),
               Optional("contributing_factors", ArraySchema("", StringSchema(""))),
               Optional("attachments",
                        ArraySchema("Files, stored by SHA-256 digest; their contents total at "
                                    "most 10 MiB (10485760 bytes).",
                                    ObjectSchema("", {Required("name", StringSchema("")),
                                                      Required("content_base64",
                                                               StringSchema("", "byte"))})))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto document = ReadDocument(request.body);
        if (!document) return std::unexpected(document.error());
        return Answer(plane.Document(CallerOf(request), Parameter(request, "id"), *document),
                      IncidentJson);
      },
      .max_body_bytes = kDocumentBodyBytes});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/incidents/{id}/action-items"),
      .operation_id = "addActionItem",
      .summary = "Add an action item with owner and due date, or an explicit no_action with a "
                 "reason.",
      .request_body = ObjectSchema(
          "", {Optional("title", StringSchema("")), Optional("owner", StringSchema("")),
               Optional("due", StringSchema("", "date")),
               Optional("no_action", BooleanSchema("No action follows; needs a reason.")),
               Optional("reason", StringSchema(""))}),
      .success_status = 201,
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto item = ReadNewActionItem(request.body);
        if (!item) return std::unexpected(item.error());
        return Answer(
            plane.AddActionItem(CallerOf(request), Parameter(request, "id"), *item),
            [](const core::ActionItem& added) { return json(added); }, 201);
      }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/incidents/{id}/action-items"),
                   .operation_id = "listActionItems",
                   .summary = "The incident's action items.",
                   .response = ListResponse("Action items."),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(
                         plane.ListActionItems(CallerOf(request), Parameter(request, "id")),
                         [](const std::vector<core::ActionItem>& items) {
                           return json{{"items", items}, {"next_after", ""}};
                         });
                   }});
  router.Add(Route{
      .method = "POST",
      .path = ApiPath("/action-items/{id}/done"),
      .operation_id = "completeActionItem",
      .summary = "Mark an action item done with an evidence link, or not_doing with a reason.",
      .request_body = ObjectSchema(
          "", {Optional("evidence", StringSchema("An http:// or https:// URL of the "
                                                 "evidence.")),
               Optional("not_doing", BooleanSchema("")), Optional("reason", StringSchema(""))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto completion = ReadCompletion(request.body);
        if (!completion) return std::unexpected(completion.error());
        return Answer(
            plane.CompleteActionItem(CallerOf(request), Parameter(request, "id"), *completion),
            [](const core::ActionItem& item) { return json(item); });
      }});
  router.Add(Route{.method = "POST",
                   .path = ApiPath("/incidents/{id}/close"),
                   .operation_id = "closeIncident",
                   .summary = "Close the incident once every closure requirement is met. "
                              "Engineering lead.",
                   .request_body = ObjectSchema("", {}),
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.Close(CallerOf(request), Parameter(request, "id")),
                                   IncidentJson);
                   }});
}

void AddJobAndLedgerRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/jobs/{id}"),
                   .operation_id = "getJob",
                   .summary = "A rollback or validation job's state, outcome and progress.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.GetJob(CallerOf(request), Parameter(request, "id")),
                                   JobJson);
                   }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/ledger/checkpoint"),
                   .operation_id = "getCheckpoint",
                   .summary = "The latest signed checkpoint. Auditor, admin or engineering lead.",
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     return Answer(plane.LedgerCheckpoint(CallerOf(request)),
                                   [](const json& out) { return out; });
                   }});
  router.Add(Route{.method = "GET",
                   .path = ApiPath("/ledger/proof"),
                   .operation_id = "getInclusionProof",
                   .summary = "Inclusion proof of one entry in the current tree (RFC 6962).",
                   .query = {{.name = "entry",
                              .schema = IntegerSchema("The entry's sequence number, from 0."),
                              .required = true}},
                   .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
                     auto entry = QueryNumber(request, "entry");
                     if (!entry) return std::unexpected(entry.error());
                     return Answer(plane.LedgerProof(CallerOf(request), *entry),
                                   [](const json& out) { return out; });
                   }});
  router.Add(Route{
      .method = "GET",
      .path = ApiPath("/ledger/consistency"),
      .operation_id = "getConsistencyProof",
      .summary = "Proof that the tree of `from` entries is a prefix of the tree of `to` entries.",
      .query = {{.name = "from", .schema = IntegerSchema("The older tree size."), .required = true},
                {.name = "to", .schema = IntegerSchema("The newer tree size."), .required = true}},
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto from = QueryNumber(request, "from");
        if (!from) return std::unexpected(from.error());
        auto to = QueryNumber(request, "to");
        if (!to) return std::unexpected(to.error());
        return Answer(plane.LedgerConsistency(CallerOf(request), *from, *to),
                      [](const json& out) { return out; });
      }});
}

}  // namespace

void AddApiRoutes(Router& router, app::ControlPlane& plane, ApiEnvironment environment) {
  AddPublicRoutes(router, plane, environment);
  AddIdentityRoutes(router, plane);
  AddConfigRoutes(router, plane, environment);
  AddServiceAndChangeRoutes(router, plane);
  AddIncidentRoutes(router, plane);
  AddFollowUpRoutes(router, plane);
  AddJobAndLedgerRoutes(router, plane);
  AddReconciliationAndNotificationRoutes(router, plane);
  AddEvidenceRoutes(router, plane);
  if (environment.metrics != nullptr) AddSignalRoutes(router, plane, *environment.metrics);
  AddCheckRoutes(router, plane);
  AddReleaseRoutes(router, plane);
  AddReviewAndAccessRoutes(router, plane);
}

}  // namespace backout::server
