#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/provider.h"

namespace backout::providers::unleash {

// The state a rollback puts the flag's environment in.
enum class RollbackState {
  kOff,          // the environment's flag off: every evaluation returns false
  kOn,           // the environment's flag on, for flags whose "on" is the safe state
  kRolloutZero,  // every gradual-rollout strategy of the environment at 0 %
};
std::string_view RollbackStateName(RollbackState state);  // "off", "on", "rollout-0"

// The settings of one `unleash` provider binding, as written in the service's `provider` block:
//
//   kind: unleash
//   url: https://unleash.example.com      # required: the server's base URL, without /api
//   project: default                      # optional; this is the default
//   flag: checkout.new-flow               # required
//   environment: production               # required
//   credentials:
//     api_token: env:UNLEASH_ADMIN_TOKEN  # required: an admin token or a personal access token
//     sdk_token: env:UNLEASH_SDK_TOKEN    # a backend token, needed with sdk_evaluation
//   rollback: off                         # off (default), on or rollout-0
//   audit_tag: true                       # tag the flag with the incident and executor first
//   audit_tag_type: simple                # the tag type of that tag
//   sdk_evaluation: [/usr/bin/node, /opt/backout/unleash/evaluate-flag.mjs]   # optional
//   sdk_user_id: "42"                     # optional: the userId of the evaluation context
//   sdk_timeout: 15s                      # how long one SDK evaluation may take
//   request_timeout: 30s                  # one Admin API call
struct UnleashSettings {
  std::string url;  // without a trailing slash
  std::string project = "default";
  std::string flag;
  std::string environment;
  std::string api_token;
  std::string sdk_token;  // empty when not configured
  RollbackState rollback = RollbackState::kOff;
  bool audit_tag = true;
  std::string audit_tag_type = "simple";
  std::vector<std::string> sdk_evaluation;  // empty: no SDK evaluation
  std::string sdk_user_id;
  std::chrono::milliseconds sdk_timeout{15'000};
  std::chrono::milliseconds request_timeout{30'000};
};

// Validates `settings` for `service`. The tokens come from `secrets` under `api_token` and
// `sdk_token`. Errors name the service and the field and never quote a token.
core::Result<UnleashSettings> ParseUnleashSettings(std::string_view service,
                                                   const nlohmann::json& settings,
                                                   const SecretValues& secrets);

}  // namespace backout::providers::unleash
