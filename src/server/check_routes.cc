#include "server/check_routes.h"

#include "core/domain.h"
#include "server/schema.h"

namespace backout::server {

using nlohmann::json;

namespace {

// The body limit of a confirmation: the largest attachment in base64 (4 characters for every 3
// bytes, padded) plus 1 MiB for the note and the JSON around them. The server's default body
// limit of 1 MiB would otherwise reject attachments far below kMaxConfirmationAttachmentBytes.
constexpr size_t kConfirmationBodyBytes =
    (core::kMaxConfirmationAttachmentBytes + 2) / 3 * 4 + (size_t{1} << 20);

}  // namespace

void AddCheckRoutes(Router& router, app::ControlPlane& plane) {
  router.Add(Route{
      .method = "POST",
      .path = "/api/v1/incidents/{id}/checks/{name}/confirm",
      .operation_id = "confirmCheck",
      .summary = "Record the result of a manual check's user-level test, with a note and an "
                 "optional attachment. Engineering lead or devops engineer, among the check's "
                 "confirmers when it lists any.",
      .request_body = ObjectSchema(
          "", {Optional("passed", BooleanSchema("False records that the test failed; default "
                                                "true.")),
               Optional("note", StringSchema("What was tested and what was seen.")),
               Optional("attachment",
                        ObjectSchema("A file, stored by SHA-256 digest.",
                                     {Required("name", StringSchema("")),
                                      Required("content_base64", StringSchema("", "byte"))}))}),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::CheckConfirmationRequest confirmation;
        confirmation.passed = request.body.value("passed", true);
        confirmation.note = request.body.value("note", "");
        if (auto attachment = request.body.find("attachment");
            attachment != request.body.end() && attachment->is_object()) {
          confirmation.attachment = app::NewAttachment{
              .name = attachment->at("name").get<std::string>(),
              .content_base64 = attachment->at("content_base64").get<std::string>()};
        }
        auto confirmed = plane.ConfirmCheck(*request.caller, request.path_parameters.at("id"),
                                            request.path_parameters.at("name"), confirmation);
        if (!confirmed) return std::unexpected(confirmed.error());
        return HttpResponse{.status = 200, .body = *std::move(confirmed)};
      },
      .max_body_bytes = kConfirmationBodyBytes});
}

}  // namespace backout::server
