#include "server/release_routes.h"

#include <fmt/format.h>

#include "server/schema.h"

namespace backout::server {

void AddReleaseRoutes(Router& router, app::ControlPlane& plane) {
  Schema release = ObjectSchema(
      "One release and its status by Backout's records.",
      {Required("version", StringSchema("The release folder's name.")),
       Required("status",
                EnumSchema("The release's status.",
                           {"deployed", "validated_good", "failed", "rolled_back", "present"})),
       Required("status_changed_at",
                StringSchema("When the status last changed (RFC 3339).", "date-time")),
       Required("set_by", StringSchema("What set the status: change/ID, incident/ID or "
                                       "reconciliation.")),
       Required("reason", StringSchema("Why the status was set.")),
       Required("first_seen", StringSchema("The earliest deployment time known.", "date-time")),
       Required("complete", BooleanSchema("The folder had its completion marker at the last "
                                          "reconciliation.")),
       Required("in_folder", BooleanSchema("The folder had it at the last reconciliation.")),
       Required("live", BooleanSchema("It is the manifest's live release, the one live_version "
                                      "names.")),
       Required("change_ids", ArraySchema("Changes that deployed it.", StringSchema(""))),
       Required("history", ArraySchema("Every status change, oldest first.",
                                       OpenObjectSchema("status, time, set_by, reason")))});
  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/services/{name}/releases",
      .operation_id = "listServiceReleases",
      .summary = "The service's release manifest: each release's status (deployed, validated "
                 "good, failed, rolled back, present), when it changed and what set it, beside "
                 "the live release read from the folder now. Only services whose provider lists "
                 "its versions (kind releases) have one.",
      .response = ObjectSchema(
          "A release manifest.",
          {Required("service", StringSchema("The service.")),
           Required("provider", StringSchema("The provider kind.")),
           Required("live_version", StringSchema("The live release by the manifest; null when "
                                                 "unknown. While live_problem is set, the last "
                                                 "release the folder showed live.")),
           Required("live_problem", StringSchema("Why the folder showed no release Backout "
                                                 "trusts as live at the last reconciliation; "
                                                 "empty when it showed one.")),
           Required("reconciled_at", StringSchema("When the manifest was last compared with the "
                                                  "folder; null before the first time.",
                                                  "date-time")),
           Required("folder", OpenObjectSchema("The folder read now: live_version, live_problem, "
                                               "observed_at, and error when it could not be "
                                               "read.")),
           Required("agrees_with_folder", BooleanSchema("The manifest's live release is the "
                                                        "folder's.")),
           Required("releases", ArraySchema("Releases in deployment order.", release))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        auto releases = plane.ListReleases(*request.caller, request.path_parameters.at("name"));
        if (!releases) return std::unexpected(releases.error());
        return HttpResponse{.status = 200, .body = *std::move(releases)};
      }});
}

}  // namespace backout::server
