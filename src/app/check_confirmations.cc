// Manual confirmations of `manual` validation checks.
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "app/check_runner.h"
#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"
#include "checks/manual_check.h"
#include "core/policy.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

core::Result<std::string> DecodeAttachment(const NewAttachment& attachment) {
  const std::string& text = attachment.content_base64;
  if (text.size() % 4 != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "attachment {} is not valid base64: its length is not a multiple of 4",
                           attachment.name);
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int>(text.size()));
  if (decoded < 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "attachment {} is not valid base64",
                           attachment.name);
  }
  // EVP_DecodeBlock counts the padding as zero bytes, so drop them.
  size_t padding = text.ends_with("==") ? 2 : (text.ends_with("=") ? 1 : 0);
  out.resize(static_cast<size_t>(decoded) - padding);
  if (out.size() > core::kMaxConfirmationAttachmentBytes) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "attachment {} has {} bytes; the limit is {} bytes", attachment.name,
                           out.size(), core::kMaxConfirmationAttachmentBytes);
  }
  return out;
}

}  // namespace

core::Result<nlohmann::json> ControlPlane::ConfirmCheck(const Caller& caller, std::string_view id,
                                                        std::string_view check,
                                                        const CheckConfirmationRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);

  std::optional<std::string> content;
  if (request.attachment) {
    if (request.attachment->name.find_first_not_of(" \t\n") == std::string::npos) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "the attachment needs a name");
    }
    BACKOUT_TRY(content, DecodeAttachment(*request.attachment));
  }

  checks::ManualConfirmation confirmation{.confirmed_by = caller.name(),
                                          .confirmed_at = now,
                                          .passed = request.passed,
                                          .note = request.note};
  BACKOUT_CHECK(Write(
      caller, "incident.confirm_check", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        if (!caller.user.HasRole(core::Role::kEngineeringLead) &&
            !caller.user.HasRole(core::Role::kDevopsEngineer)) {
          return core::MakeError(core::ErrorCode::kPermissionDenied,
                                 "{} may not confirm checks: only an engineering lead or a devops "
                                 "engineer may",
                                 caller.name());
        }
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        if (incident.closed_at) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "incident {} is closed; checks can no longer be confirmed", id);
        }

        // The check must be a `manual` check of the incident's service, and the caller one of
        // its confirmers.
        const ServiceConfig* service = current->config.FindService(incident.service);
        const CheckConfig* config = nullptr;
        if (service != nullptr) {
          for (const CheckConfig& candidate : service->checks) {
            if (candidate.name == check) config = &candidate;
          }
        }
        if (config == nullptr || config->kind != "manual") {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "service {} has no manual check named {}; list its checks with "
                                 "`backout service show {}`",
                                 incident.service, check, incident.service);
        }
        BACKOUT_TRY(auto settings, checks::ManualCheckSettings::Parse(config->settings));
        if (!settings.AllowsConfirmer(caller.name())) {
          return core::MakeError(core::ErrorCode::kPermissionDenied,
                                 "{} is not among the confirmers of check {}", caller.name(),
                                 check);
        }

        if (content) {
          BACKOUT_TRY(confirmation.attachment_sha256,
                      StoreContentByDigest(tx, incident.service, *content));
          confirmation.attachment_name = request.attachment->name;
        }
        const std::string object_id = ConfirmationObjectId(id, check);
        BACKOUT_TRY(auto existing, tx.Get(kCheckConfirmationKind, object_id));
        store::Object object =
            existing ? *std::move(existing)
                     : store::Object{.kind = kCheckConfirmationKind,
                                     .id = object_id,
                                     .service = incident.service,
                                     .body = {{"incident_id", std::string(id)},
                                              {"check", std::string(check)},
                                              {"confirmations", nlohmann::json::array()}}};
        object.body["confirmations"].push_back(ConfirmationToJson(confirmation));
        BACKOUT_CHECK(tx.Put(object));

        AddTimeline(incident, now, caller, "check_confirmed",
                    fmt::format("{} {} check {}{}", caller.name(),
                                request.passed ? "confirmed" : "reported a failure of", check,
                                request.note.empty() ? "" : ": " + request.note));
        BACKOUT_CHECK(Save(tx, stored));
        return Ledger(
            tx, caller, "incident.check_confirmed", subject,
            {{"check", std::string(check)}, {"confirmation", ConfirmationToJson(confirmation)}});
      }));
  spdlog::info("component=checks incident={} check={} event=check_confirmed by={} passed={}", id,
               check, caller.name(), request.passed);
  nlohmann::json answer = ConfirmationToJson(confirmation);
  answer["incident_id"] = std::string(id);
  answer["check"] = std::string(check);
  return answer;
}

}  // namespace backout::app
