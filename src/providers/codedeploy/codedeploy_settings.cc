#include "providers/codedeploy/codedeploy_settings.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/time.h"

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 15> kKnownFields = {"kind",
                                                           "application",
                                                           "deployment_group",
                                                           "region",
                                                           "endpoint",
                                                           "credentials",
                                                           "profile",
                                                           "credentials_file",
                                                           "file_exists_behavior",
                                                           "timeout",
                                                           "poll_interval",
                                                           "ignore_application_stop_failures",
                                                           "deployment_config_name",
                                                           "request_timeout",
                                                           "max_poll_interval"};
constexpr std::array<std::string_view, 3> kCredentialFields = {"access_key_id", "secret_access_key",
                                                               "session_token"};
constexpr std::array<std::string_view, 3> kFileExistsBehaviors = {"DISALLOW", "OVERWRITE",
                                                                  "RETAIN"};

// Builds errors that all start with the service and the field.
class FieldErrors {
 public:
  explicit FieldErrors(std::string_view service) : service_(service) {}

  template <typename... Args>
  std::unexpected<core::Error> Invalid(std::string_view field, fmt::format_string<Args...> format,
                                       Args&&... args) const {
    return std::unexpected(
        core::Error{core::ErrorCode::kInvalidArgument,
                    fmt::format("service {}: codedeploy provider field '{}': {}", service_, field,
                                fmt::format(format, std::forward<Args>(args)...))});
  }

 private:
  std::string service_;
};

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

core::Result<std::string> ReadText(const FieldErrors& errors, const json& settings,
                                   std::string_view field, bool required) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) {
    if (required) return errors.Invalid(field, "missing; it is required");
    return std::string{};
  }
  if (!it->is_string() || it->get<std::string>().empty()) {
    return errors.Invalid(field, "must be a non-empty string, got {}", it->dump());
  }
  return it->get<std::string>();
}

core::Result<std::chrono::milliseconds> ReadDuration(const FieldErrors& errors,
                                                     const json& settings, std::string_view field,
                                                     std::chrono::milliseconds fallback) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return errors.Invalid(field, "must be a duration such as 30s or 5m, got {}", it->dump());
  }
  auto duration = core::ParseDuration(it->get<std::string>());
  if (!duration) return errors.Invalid(field, "{}", duration.error().message);
  auto value = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
  if (value.count() <= 0) {
    return errors.Invalid(field, "must be at least 1ms, got {}", it->get<std::string>());
  }
  return value;
}

bool IsHttpUrl(std::string_view url) {
  return (url.starts_with("https://") && url.size() > 8) ||
         (url.starts_with("http://") && url.size() > 7);
}

core::Result<void> ResolveCredentials(const FieldErrors& errors, const json& settings,
                                      const SecretValues& secrets,
                                      const EnvironmentLookup& environment,
                                      CodeDeploySettings& out) {
  auto credentials = settings.find("credentials");
  bool has_credentials = credentials != settings.end() && !credentials->is_null();
  bool has_profile =
      (settings.contains("profile") && !settings["profile"].is_null()) ||
      (settings.contains("credentials_file") && !settings["credentials_file"].is_null());
  if (has_credentials && has_profile) {
    return errors.Invalid("credentials",
                          "give either credentials or profile, not both; they name two "
                          "different sources");
  }

  // Step 1: secret references from the configuration, resolved by the config loader.
  if (has_credentials) {
    if (!credentials->is_object()) {
      return errors.Invalid("credentials",
                            "must map access_key_id, secret_access_key and optionally "
                            "session_token to secret references such as env:NAME");
    }
    for (const auto& [name, reference] : credentials->items()) {
      if (std::find(kCredentialFields.begin(), kCredentialFields.end(), name) ==
          kCredentialFields.end()) {
        return errors.Invalid("credentials", "unknown key '{}'; known keys are {}", name,
                              fmt::join(kCredentialFields, ", "));
      }
      if (!reference.is_string()) {
        return errors.Invalid("credentials", "the reference of '{}' must be a string", name);
      }
    }
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (!credentials->contains(name)) return std::nullopt;
      auto secret = secrets.find(name);
      if (secret == secrets.end()) return std::nullopt;
      return secret->second;
    };
    for (std::string_view required : {"access_key_id", "secret_access_key"}) {
      if (!credentials->contains(required)) {
        return errors.Invalid("credentials", "missing '{}'", required);
      }
      if (!value(required)) {
        return errors.Invalid("credentials",
                              "the secret for '{}' was not resolved; check its reference in the "
                              "configuration",
                              required);
      }
    }
    if (credentials->contains("session_token") && !value("session_token")) {
      return errors.Invalid("credentials",
                            "the secret for 'session_token' was not resolved; check its "
                            "reference in the configuration");
    }
    out.credentials.access_key_id = Trim(*value("access_key_id"));
    out.credentials.secret_access_key = Trim(*value("secret_access_key"));
    out.credentials.session_token = Trim(value("session_token").value_or(""));
    out.credentials_source = "the provider's credentials references";
    return {};
  }

  // Step 2: a profile of the shared credentials file.
  if (has_profile) {
    auto profile = ReadText(errors, settings, "profile", false);
    if (!profile) return std::unexpected(profile.error());
    if (profile->empty()) *profile = "default";
    auto file = ReadText(errors, settings, "credentials_file", false);
    if (!file) return std::unexpected(file.error());
    std::string path = *file;
    if (path.empty()) path = environment("AWS_SHARED_CREDENTIALS_FILE");
    if (path.empty() && !environment("HOME").empty()) {
      path = environment("HOME") + "/.aws/credentials";
    }
    if (path.empty()) {
      return errors.Invalid("credentials_file",
                            "no credentials file: set credentials_file, "
                            "AWS_SHARED_CREDENTIALS_FILE or HOME");
    }
    auto read = ReadCredentialsProfile(path, *profile);
    if (!read) return errors.Invalid("profile", "{}", read.error().message);
    out.credentials = *read;
    out.credentials_source = fmt::format("profile {} of {}", *profile, path);
    return {};
  }

  // Step 3: the process environment, read once when the provider is created.
  out.credentials.access_key_id = environment("AWS_ACCESS_KEY_ID");
  out.credentials.secret_access_key = environment("AWS_SECRET_ACCESS_KEY");
  out.credentials.session_token = environment("AWS_SESSION_TOKEN");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty()) {
    return errors.Invalid("credentials",
                          "no credentials: give credentials (secret references) or profile, or "
                          "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the server");
  }
  out.credentials_source = "the environment (AWS_ACCESS_KEY_ID)";
  return {};
}

}  // namespace

std::string ProcessEnvironment(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  return value == nullptr ? "" : value;
}

core::Result<http::AwsCredentials> ReadCredentialsProfile(const std::string& path,
                                                          std::string_view profile) {
  std::ifstream in(path);
  if (!in) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot read the AWS credentials file {}; check the path and its "
                           "permissions",
                           path);
  }

  http::AwsCredentials credentials;
  bool found = false;
  bool in_profile = false;
  std::string line;
  while (std::getline(in, line)) {
    std::string text = Trim(line);
    if (text.empty() || text.front() == '#' || text.front() == ';') continue;
    if (text.front() == '[' && text.back() == ']') {
      in_profile = Trim(std::string_view(text).substr(1, text.size() - 2)) == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t equals = text.find('=');
    if (equals == std::string::npos) continue;
    std::string key = Trim(std::string_view(text).substr(0, equals));
    std::string value = Trim(std::string_view(text).substr(equals + 1));
    if (key == "aws_access_key_id") credentials.access_key_id = value;
    if (key == "aws_secret_access_key") credentials.secret_access_key = value;
    if (key == "aws_session_token") credentials.session_token = value;
  }
  if (!found) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the AWS credentials file {} has no [{}] profile", path, profile);
  }
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "profile [{}] of {} lacks aws_access_key_id or aws_secret_access_key",
                           profile, path);
  }
  return credentials;
}

core::Result<CodeDeploySettings> ParseCodeDeploySettings(std::string_view service,
                                                         const json& settings,
                                                         const SecretValues& secrets,
                                                         const EnvironmentLookup& environment) {
  FieldErrors errors(service);
  if (!settings.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: codedeploy provider settings must be an object, got {}",
                           service, settings.type_name());
  }
  for (const auto& [field, value] : settings.items()) {
    if (std::find(kKnownFields.begin(), kKnownFields.end(), field) == kKnownFields.end()) {
      return errors.Invalid(field, "unknown field; known fields are {}",
                            fmt::join(kKnownFields, ", "));
    }
  }
  auto kind = settings.find("kind");
  if (kind != settings.end() && *kind != "codedeploy") {
    return errors.Invalid("kind", "must be codedeploy, got {}", kind->dump());
  }

  // Step 1: where the deployment group is.
  CodeDeploySettings out;
  auto application = ReadText(errors, settings, "application", true);
  if (!application) return std::unexpected(application.error());
  out.application = *application;
  auto group = ReadText(errors, settings, "deployment_group", true);
  if (!group) return std::unexpected(group.error());
  out.deployment_group = *group;
  auto region = ReadText(errors, settings, "region", true);
  if (!region) return std::unexpected(region.error());
  out.region = *region;
  auto endpoint = ReadText(errors, settings, "endpoint", false);
  if (!endpoint) return std::unexpected(endpoint.error());
  out.endpoint = endpoint->empty() ? fmt::format("https://codedeploy.{}.amazonaws.com", out.region)
                                   : *endpoint;
  while (out.endpoint.ends_with('/')) out.endpoint.pop_back();
  if (!IsHttpUrl(out.endpoint)) {
    return errors.Invalid("endpoint", "'{}' must be an http:// or https:// URL", out.endpoint);
  }

  // Step 2: how rollback deployments run.
  auto file_exists = ReadText(errors, settings, "file_exists_behavior", false);
  if (!file_exists) return std::unexpected(file_exists.error());
  if (!file_exists->empty()) out.file_exists_behavior = *file_exists;
  if (std::find(kFileExistsBehaviors.begin(), kFileExistsBehaviors.end(),
                out.file_exists_behavior) == kFileExistsBehaviors.end()) {
    return errors.Invalid("file_exists_behavior", "must be DISALLOW, OVERWRITE or RETAIN, got {}",
                          out.file_exists_behavior);
  }
  if (auto it = settings.find("ignore_application_stop_failures");
      it != settings.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return errors.Invalid("ignore_application_stop_failures", "must be true or false, got {}",
                            it->dump());
    }
    out.ignore_application_stop_failures = it->get<bool>();
  }
  auto config_name = ReadText(errors, settings, "deployment_config_name", false);
  if (!config_name) return std::unexpected(config_name.error());
  out.deployment_config_name = *config_name;

  // Step 3: limits.
  auto timeout = ReadDuration(errors, settings, "timeout", out.timeout);
  if (!timeout) return std::unexpected(timeout.error());
  out.timeout = *timeout;
  auto poll = ReadDuration(errors, settings, "poll_interval", out.poll_interval);
  if (!poll) return std::unexpected(poll.error());
  out.poll_interval = *poll;
  auto max_poll = ReadDuration(errors, settings, "max_poll_interval",
                               std::max(out.max_poll_interval, out.poll_interval));
  if (!max_poll) return std::unexpected(max_poll.error());
  out.max_poll_interval = std::max(*max_poll, out.poll_interval);
  auto request_timeout = ReadDuration(errors, settings, "request_timeout", out.request_timeout);
  if (!request_timeout) return std::unexpected(request_timeout.error());
  out.request_timeout = *request_timeout;

  // Step 4: credentials.
  auto resolved = ResolveCredentials(errors, settings, secrets, environment, out);
  if (!resolved) return std::unexpected(resolved.error());
  return out;
}

}  // namespace backout::providers::codedeploy
