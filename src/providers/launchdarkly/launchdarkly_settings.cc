#include "providers/launchdarkly/launchdarkly_settings.h"

#include <array>

#include "core/time.h"
#include "providers/settings_reader.h"

namespace backout::providers::launchdarkly {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 16> kKnownFields = {
    "project",           "environment",      "flag",
    "base_url",          "credentials",      "action",
    "new_variation",     "safe_variation",   "sdk_fallback",
    "patch_format",      "ignore_conflicts", "api_version",
    "propagation_grace", "request_timeout",  "timeout",
    "max_retry_wait"};

// Reads a duration that may be zero, such as `propagation_grace: 0s`.
core::Result<std::chrono::milliseconds> ReadWatchTime(const SettingsReader& reader,
                                                      const json& settings, std::string_view field,
                                                      std::chrono::milliseconds fallback) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) return fallback;
  if (!it->is_string()) return reader.Invalid(field, "give a duration such as 30s or 0s");
  auto duration = core::ParseDuration(it->get<std::string>());
  if (!duration || duration->count() < 0) {
    return reader.Invalid(field, "'{}' is not a duration such as 30s or 0s",
                          it->get<std::string>());
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
}

// Reads a variation reference: an index, a variation name or a value, written as text or as a
// YAML scalar.
core::Result<std::string> ReadVariation(const SettingsReader& reader, const json& settings,
                                        std::string_view field) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) return std::string();
  if (it->is_string()) {
    if (it->get<std::string>().empty()) return reader.Invalid(field, "the value is empty");
    return it->get<std::string>();
  }
  if (it->is_number_integer() || it->is_boolean()) return it->dump();
  return reader.Invalid(field, "give a variation index, name or value");
}

}  // namespace

std::string_view FlagActionName(FlagAction action) {
  return action == FlagAction::kTurnOff ? "turn_off" : "rollout_to_zero";
}

core::Result<LaunchDarklySettings> ParseLaunchDarklySettings(std::string_view service,
                                                             const json& settings,
                                                             const SecretValues& secrets) {
  SettingsReader reader(service, "launchdarkly", settings);
  if (auto checked = reader.CheckFields(kKnownFields); !checked) {
    return std::unexpected(checked.error());
  }

  LaunchDarklySettings parsed;
  for (auto [field, target] :
       {std::pair<std::string_view, std::string*>{"project", &parsed.project},
        {"environment", &parsed.environment},
        {"flag", &parsed.flag}}) {
    auto value = reader.String(field, true);
    if (!value) return std::unexpected(value.error());
    *target = *value;
  }
  auto base_url = reader.HttpUrl("base_url");
  if (!base_url) return std::unexpected(base_url.error());
  if (!base_url->empty()) parsed.base_url = *base_url;
  while (parsed.base_url.ends_with('/')) parsed.base_url.pop_back();

  // Step 1: the token, resolved by the config loader from `credentials.api_token`.
  auto token = secrets.find("api_token");
  if (token == secrets.end() || token->second.empty()) {
    return reader.Invalid("credentials",
                          "api_token is missing: give a secret reference such as "
                          "`api_token: env:LD_API_TOKEN` holding a LaunchDarkly access token");
  }
  parsed.api_token = token->second;

  // Step 2: what a rollback does.
  auto action = reader.String("action", false, "turn_off");
  if (!action) return std::unexpected(action.error());
  if (*action == "rollout_to_zero") {
    parsed.action = FlagAction::kRolloutToZero;
  } else if (*action != "turn_off") {
    return reader.Invalid("action", "'{}' is not turn_off or rollout_to_zero", *action);
  }
  auto new_variation = ReadVariation(reader, settings, "new_variation");
  if (!new_variation) return std::unexpected(new_variation.error());
  parsed.new_variation = *new_variation;
  auto safe_variation = ReadVariation(reader, settings, "safe_variation");
  if (!safe_variation) return std::unexpected(safe_variation.error());
  parsed.safe_variation = *safe_variation;
  if (parsed.action == FlagAction::kRolloutToZero && parsed.new_variation.empty()) {
    return reader.Invalid("new_variation",
                          "rollout_to_zero needs the variation whose share goes to 0 %");
  }
  if (auto fallback = reader.String("sdk_fallback", false); !fallback) {
    return std::unexpected(fallback.error());
  } else if (!fallback->empty()) {
    parsed.sdk_fallback = json::parse(*fallback, nullptr, false);
    if (parsed.sdk_fallback->is_discarded()) parsed.sdk_fallback = json(*fallback);
  }

  // Step 3: how the change is sent.
  auto format = reader.String("patch_format", false, "semantic");
  if (!format) return std::unexpected(format.error());
  if (*format == "json_patch") {
    parsed.patch_format = PatchFormat::kJsonPatch;
  } else if (*format != "semantic") {
    return reader.Invalid("patch_format", "'{}' is not semantic or json_patch", *format);
  }
  if (auto it = settings.find("ignore_conflicts"); it != settings.end() && !it->is_null()) {
    if (!it->is_boolean()) return reader.Invalid("ignore_conflicts", "give true or false");
    parsed.ignore_conflicts = it->get<bool>();
  }
  auto api_version = reader.String("api_version", false, parsed.api_version);
  if (!api_version) return std::unexpected(api_version.error());
  parsed.api_version = *api_version;

  // Step 4: time limits.
  auto grace = ReadWatchTime(reader, settings, "propagation_grace", parsed.propagation_grace);
  if (!grace) return std::unexpected(grace.error());
  parsed.propagation_grace = *grace;
  for (auto [field, target] : {std::pair<std::string_view, std::chrono::milliseconds*>{
                                   "request_timeout", &parsed.request_timeout},
                               {"timeout", &parsed.timeout},
                               {"max_retry_wait", &parsed.max_retry_wait}}) {
    auto value = reader.Duration(field, *target);
    if (!value) return std::unexpected(value.error());
    *target = *value;
  }
  return parsed;
}

}  // namespace backout::providers::launchdarkly
