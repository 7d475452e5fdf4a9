#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/sigv4.h"
#include "providers/provider.h"

namespace backout::providers::codedeploy {

// The settings of one `codedeploy` provider binding, as written in the service's `provider` block:
//
//   kind: codedeploy                           # accepted and ignored here
//   application: shop                          # required
//   deployment_group: prod                     # required
//   region: us-east-1                          # required
//   endpoint: https://codedeploy.us-east-1.amazonaws.com   # optional; this is the default
//   credentials:                               # optional secret references, resolved by the
//     access_key_id: env:SHOP_AWS_KEY_ID       #   config loader into the secret values under
//     secret_access_key: file:/run/aws-secret  #   these three names
//     session_token: env:SHOP_AWS_TOKEN        #   optional
//   profile: deploy                            # optional instead: a profile (default: default)
//   credentials_file: /etc/backout/aws         #   of the shared credentials file (see below)
//   file_exists_behavior: OVERWRITE            # DISALLOW, OVERWRITE (default) or RETAIN
//   ignore_application_stop_failures: false    # optional
//   deployment_config_name: CodeDeployDefault.OneAtATime   # optional; default the group's
//   timeout: 60m                               # how long a rollback deployment may run
//   poll_interval: 5s                          # first wait between polls, doubling up to 30s
//   request_timeout: 30s                       # one API call
//
// NOTE: Credentials are read once, when the provider is created; expiring session tokens are
// not refreshed, and instance roles (the metadata endpoint) are not supported.
//
// Without `credentials` or `profile`, the credentials come from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. The credentials file defaults to
// $AWS_SHARED_CREDENTIALS_FILE, then $HOME/.aws/credentials. Rollback deployments default to
// OVERWRITE because files a failed Install left behind otherwise fail the rollback too.
struct CodeDeploySettings {
  std::string application;
  std::string deployment_group;
  std::string region;
  std::string endpoint;
  std::string file_exists_behavior = "OVERWRITE";
  bool ignore_application_stop_failures = false;
  std::string deployment_config_name;  // empty: the deployment group's
  std::chrono::milliseconds timeout{60 * 60 * 1000};
  std::chrono::milliseconds poll_interval{5'000};
  std::chrono::milliseconds max_poll_interval{30'000};
  std::chrono::milliseconds request_timeout{30'000};
  http::AwsCredentials credentials;
  std::string credentials_source;  // where the credentials came from, for messages; no secret
};

// Reads an environment variable; empty when it is not set.
using EnvironmentLookup = std::function<std::string(std::string_view name)>;

// Returns the process environment's value of `name`, or "" when unset.
std::string ProcessEnvironment(std::string_view name);

// Validates `settings` for `service` and resolves the credentials. Errors name the service and
// the field, reject unknown fields, and never quote a credential.
core::Result<CodeDeploySettings> ParseCodeDeploySettings(
    std::string_view service, const nlohmann::json& settings, const SecretValues& secrets,
    const EnvironmentLookup& environment = ProcessEnvironment);

// Reads `profile` from an AWS shared credentials file (INI: `[name]` sections with
// aws_access_key_id, aws_secret_access_key and aws_session_token). The error names the file and
// the profile, never a value.
core::Result<http::AwsCredentials> ReadCredentialsProfile(const std::string& path,
                                                          std::string_view profile);

}  // namespace backout::providers::codedeploy
