#include "signals/alertmanager.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace backout::signals {
namespace {

// Alertmanager writes the zero time of Go for an alert that has not ended.
constexpr std::string_view kZeroTimePrefix = "0001-01-01";

core::Result<std::map<std::string, std::string>> StringMap(const nlohmann::json& object,
                                                           std::string_view field) {
  std::map<std::string, std::string> values;
  if (object.is_null()) return values;
  if (!object.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "`{}` is not an object", field);
  }
  for (const auto& [key, value] : object.get_ref<const nlohmann::json::object_t&>()) {
    if (!value.is_string()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "`{}.{}` is not a string", field,
                             key);
    }
    values.emplace_hint(values.end(), key, value.get_ref<const std::string&>());
  }
  return values;
}

std::string StringField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

core::Result<Alert> DecodeAlert(const nlohmann::json& item, std::string_view service_label) {
  if (!item.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "the alert is not an object");
  }
  Alert alert;
  const std::string status = StringField(item, "status");
  if (status == "firing") {
    alert.status = AlertStatus::kFiring;
  } else if (status == "resolved") {
    alert.status = AlertStatus::kResolved;
  } else {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "`status` is '{}', expected firing or resolved", status);
  }

  // Read in place, because json::value() returns a copy of each object.
  static const nlohmann::json kAbsent;
  auto member = [&item](const char* key) -> const nlohmann::json& {
    auto it = item.find(key);
    return it == item.end() ? kAbsent : *it;
  };
  auto labels = StringMap(member("labels"), "labels");
  if (!labels) return std::unexpected(labels.error());
  alert.labels = *std::move(labels);
  auto annotations = StringMap(member("annotations"), "annotations");
  if (!annotations) return std::unexpected(annotations.error());
  alert.annotations = *std::move(annotations);

  auto starts_at = core::ParseTime(StringField(item, "startsAt"));
  if (!starts_at) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "`startsAt`: {}",
                           starts_at.error().message);
  }
  alert.starts_at = *starts_at;
  const std::string ends_at = StringField(item, "endsAt");
  if (!ends_at.empty() && !ends_at.starts_with(kZeroTimePrefix)) {
    auto parsed = core::ParseTime(ends_at);
    if (!parsed) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "`endsAt`: {}",
                             parsed.error().message);
    }
    alert.ends_at = *parsed;
  }

  alert.generator_url = StringField(item, "generatorURL");
  alert.fingerprint = StringField(item, "fingerprint");
  if (alert.fingerprint.empty()) {
    alert.fingerprint = LabelFingerprint(alert.labels);
    alert.fingerprint_computed = true;
  }
  if (auto service = alert.labels.find(std::string(service_label)); service != alert.labels.end()) {
    alert.service = service->second;
  }
  return alert;
}

}  // namespace

std::string_view AlertStatusName(AlertStatus status) {
  return status == AlertStatus::kFiring ? "firing" : "resolved";
}

std::string Alert::Identity() const {
  return fmt::format("{}@{}", fingerprint, core::FormatTime(starts_at));
}

std::string Alert::Severity() const {
  auto it = labels.find("severity");
  return it == labels.end() ? "" : it->second;
}

std::string LabelFingerprint(const std::map<std::string, std::string>& labels) {
  uint64_t hash = 14695981039346656037ULL;
  auto mix = [&](std::string_view text) {
    for (const unsigned char byte : text) {
      hash ^= byte;
      hash *= 1099511628211ULL;
    }
    hash ^= 0xff;  // a separator no label byte equals in UTF-8
    hash *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {  // std::map iterates in sorted order
    mix(name);
    mix(value);
  }
  return fmt::format("{:016x}", hash);
}

core::Result<WebhookPayload> ParseAlertmanagerWebhook(std::string_view body,
                                                      std::string_view service_label) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& error) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the webhook body is not valid JSON (byte {}); send Alertmanager's "
                           "webhook payload",
                           error.byte);
  }
  if (!document.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the webhook body is not a JSON object; send Alertmanager's webhook "
                           "payload");
  }

  WebhookPayload payload;
  payload.version = StringField(document, "version");
  if (payload.version != "4") {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "unsupported webhook payload version '{}': only version 4 "
                           "(Alertmanager 0.16 and later) is read",
                           payload.version);
  }
  payload.group_key = StringField(document, "groupKey");
  payload.receiver = StringField(document, "receiver");
  payload.status = StringField(document, "status");
  payload.external_url = StringField(document, "externalURL");
  if (auto truncated = document.find("truncatedAlerts");
      truncated != document.end() && truncated->is_number_integer()) {
    payload.truncated_alerts = truncated->get<int64_t>();
  }

  auto alerts = document.find("alerts");
  if (alerts == document.end() || !alerts->is_array()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the webhook body has no `alerts` list");
  }
  for (size_t i = 0; i < alerts->size(); ++i) {
    auto alert = DecodeAlert((*alerts)[i], service_label);
    if (alert) {
      payload.alerts.push_back(*std::move(alert));
    } else {
      payload.invalid_alerts.push_back(InvalidAlert{.index = i, .reason = alert.error().message});
    }
  }
  return payload;
}

}  // namespace backout::signals
