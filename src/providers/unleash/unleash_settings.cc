#include "providers/unleash/unleash_settings.h"

#include <array>

#include "providers/settings_reader.h"

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 12> kKnownFields = {
    "url",         "project",        "flag",           "environment",    "credentials",
    "rollback",    "audit_tag",      "audit_tag_type", "sdk_evaluation", "sdk_user_id",
    "sdk_timeout", "request_timeout"};

}  // namespace

std::string_view RollbackStateName(RollbackState state) {
  switch (state) {
    case RollbackState::kOff:
      return "off";
    case RollbackState::kOn:
      return "on";
    case RollbackState::kRolloutZero:
      return "rollout-0";
  }
  return "off";
}

core::Result<UnleashSettings> ParseUnleashSettings(std::string_view service, const json& settings,
                                                   const SecretValues& secrets) {
  SettingsReader reader(service, "unleash", settings);
  if (auto checked = reader.CheckFields(kKnownFields); !checked) {
    return std::unexpected(checked.error());
  }

  UnleashSettings parsed;
  auto url = reader.HttpUrl("url");
  if (!url) return std::unexpected(url.error());
  if (url->empty()) return reader.Invalid("url", "is required: the Unleash server's base URL");
  parsed.url = *url;
  while (!parsed.url.empty() && parsed.url.back() == '/') parsed.url.pop_back();
  if (parsed.url.ends_with("/api")) {
    return reader.Invalid("url", "give the server's base URL without the /api suffix, got {}",
                          parsed.url);
  }

  auto project = reader.String("project", false, "default");
  if (!project) return std::unexpected(project.error());
  parsed.project = *project;
  auto flag = reader.String("flag", true);
  if (!flag) return std::unexpected(flag.error());
  parsed.flag = *flag;
  auto environment = reader.String("environment", true);
  if (!environment) return std::unexpected(environment.error());
  parsed.environment = *environment;

  // The config loader resolves `credentials` into secret values under the same names.
  auto api_token = secrets.find("api_token");
  if (api_token == secrets.end() || api_token->second.empty()) {
    return reader.Invalid("credentials",
                          "api_token is required: a secret reference to an Unleash admin API "
                          "token or personal access token, such as env:UNLEASH_ADMIN_TOKEN");
  }
  parsed.api_token = api_token->second;
  if (auto sdk_token = secrets.find("sdk_token"); sdk_token != secrets.end()) {
    parsed.sdk_token = sdk_token->second;
  }

  auto rollback = reader.String("rollback", false, "off");
  if (!rollback) return std::unexpected(rollback.error());
  if (*rollback == "off") {
    parsed.rollback = RollbackState::kOff;
  } else if (*rollback == "on") {
    parsed.rollback = RollbackState::kOn;
  } else if (*rollback == "rollout-0") {
    parsed.rollback = RollbackState::kRolloutZero;
  } else {
    return reader.Invalid("rollback", "must be off, on or rollout-0, got '{}'", *rollback);
  }

  if (reader.Has("audit_tag")) {
    const json& value = settings.at("audit_tag");
    if (!value.is_boolean()) {
      return reader.Invalid("audit_tag", "must be true or false, got {}", value.dump());
    }
    parsed.audit_tag = value.get<bool>();
  }
  auto tag_type = reader.String("audit_tag_type", false, "simple");
  if (!tag_type) return std::unexpected(tag_type.error());
  parsed.audit_tag_type = *tag_type;

  auto evaluation = reader.Command("sdk_evaluation");
  if (!evaluation) return std::unexpected(evaluation.error());
  parsed.sdk_evaluation = *evaluation;
  if (!parsed.sdk_evaluation.empty() && parsed.sdk_token.empty()) {
    return reader.Invalid("sdk_evaluation",
                          "needs credentials.sdk_token: a backend token for environment {}",
                          parsed.environment);
  }
  // Backend tokens read PROJECT:ENVIRONMENT.SECRET, and the SDK evaluates in that environment.
  if (size_t colon = parsed.sdk_token.find(':'); colon != std::string::npos) {
    size_t dot = parsed.sdk_token.find('.', colon);
    std::string token_environment =
        dot == std::string::npos ? "" : parsed.sdk_token.substr(colon + 1, dot - colon - 1);
    if (!token_environment.empty() && token_environment != "*" &&
        token_environment != parsed.environment) {
      return reader.Invalid("credentials",
                            "sdk_token is a backend token for environment '{}', but the flag is "
                            "bound to '{}'; give a token for '{}'",
                            token_environment, parsed.environment, parsed.environment);
    }
  }
  auto user_id = reader.String("sdk_user_id", false);
  if (!user_id) return std::unexpected(user_id.error());
  parsed.sdk_user_id = *user_id;

  auto sdk_timeout = reader.Duration("sdk_timeout", parsed.sdk_timeout);
  if (!sdk_timeout) return std::unexpected(sdk_timeout.error());
  parsed.sdk_timeout = *sdk_timeout;
  auto request_timeout = reader.Duration("request_timeout", parsed.request_timeout);
  if (!request_timeout) return std::unexpected(request_timeout.error());
  parsed.request_timeout = *request_timeout;
  return parsed;
}

}  // namespace backout::providers::unleash
