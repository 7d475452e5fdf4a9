#include "app/check_runner.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "app/records.h"
#include "app/secret_ref.h"
#include "app/try.h"
#include "checks/check.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

std::string EncodeBase64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.resize(written < 0 ? 0 : static_cast<size_t>(written));
  return out;
}

// The loader stores every reference with an absolute `file:` path, so no base folder is needed.
core::Result<std::string> ResolveSecret(std::string_view reference) {
  BACKOUT_TRY(SecretRef ref, SecretRef::Parse(reference));
  return ref.Resolve();
}

}  // namespace

std::string ConfirmationObjectId(std::string_view incident_id, std::string_view check) {
  return fmt::format("{}/{}", incident_id, check);
}

nlohmann::json ConfirmationToJson(const checks::ManualConfirmation& confirmation) {
  nlohmann::json out = {{"confirmed_by", confirmation.confirmed_by},
                        {"confirmed_at", core::FormatTime(confirmation.confirmed_at)},
                        {"passed", confirmation.passed},
                        {"note", confirmation.note}};
  if (!confirmation.attachment_sha256.empty()) {
    out["attachment"] = {{"name", confirmation.attachment_name},
                         {"sha256", confirmation.attachment_sha256}};
  }
  return out;
}

core::Result<checks::ManualConfirmation> ConfirmationFromJson(const nlohmann::json& json) {
  checks::ManualConfirmation confirmation;
  try {
    confirmation.confirmed_by = json.at("confirmed_by").get<std::string>();
    BACKOUT_TRY(confirmation.confirmed_at,
                core::ParseTime(json.at("confirmed_at").get<std::string>()));
    confirmation.passed = json.at("passed").get<bool>();
    confirmation.note = json.value("note", "");
    if (json.contains("attachment")) {
      confirmation.attachment_name = json["attachment"].value("name", "");
      confirmation.attachment_sha256 = json["attachment"].value("sha256", "");
    }
  } catch (const nlohmann::json::exception& error) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored check confirmation {}: {}",
                           json.dump(), error.what());
  }
  return confirmation;
}

core::Result<std::vector<checks::ManualConfirmation>> StoreConfirmations::List(
    std::string_view incident_id, std::string_view check) const {
  std::vector<checks::ManualConfirmation> confirmations;
  auto read = store_.Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto object,
                tx.Get(kCheckConfirmationKind, ConfirmationObjectId(incident_id, check)));
    if (!object) return {};
    for (const nlohmann::json& item :
         object->body.value("confirmations", nlohmann::json::array())) {
      BACKOUT_TRY(auto confirmation, ConfirmationFromJson(item));
      confirmations.push_back(std::move(confirmation));
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return confirmations;
}

core::Result<std::string> StoreContentByDigest(store::Transaction& tx, const std::string& service,
                                               const std::string& content) {
  const std::string digest = ledger::ToHex(ledger::Sha256(content));
  BACKOUT_TRY(auto existing, tx.Get(kAttachmentKind, digest));
  if (!existing) {
    store::Object object{.kind = kAttachmentKind,
                         .id = digest,
                         .service = service,
                         .body = {{"content_base64", EncodeBase64(content)},
                                  {"size", static_cast<int64_t>(content.size())}}};
    BACKOUT_CHECK(tx.Put(object));
  }
  return digest;
}

void RunModuleCheck(const CheckConfig& config, const checks::CheckContext& context, CheckRun& run) {
  auto check = checks::CreateCheck(config.name, config.kind, config.settings, &ResolveSecret);
  if (!check) {
    spdlog::error("component=checks incident={} check={} event=check_not_built error=\"{}\"",
                  context.incident_id, config.name, check.error().message);
    run.observations.push_back(core::Observation{.check = config.name,
                                                 .kind = config.kind,
                                                 .result = core::ObservationResult::kUnknown,
                                                 .detail = check.error().message,
                                                 .observed_at = context.clock->Now()});
    return;
  }
  checks::CheckResult result = (*check)->Run(context);
  spdlog::info("component=checks incident={} check={} kind={} event=check_finished result={}",
               context.incident_id, config.name, config.kind,
               core::ObservationResultName(result.observation.result));
  run.observations.push_back(std::move(result.observation));
  if (result.evidence) {
    core::MetricSeries series = result.evidence->series;
    series.response_sha256 = ledger::ToHex(ledger::Sha256(result.evidence->response_body));
    series.response_size = static_cast<int64_t>(result.evidence->response_body.size());
    run.metric_series.push_back(series);
    run.response_bodies.emplace_back(series.response_sha256,
                                     std::move(result.evidence->response_body));
  }
}

}  // namespace backout::app
