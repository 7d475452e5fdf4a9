#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/provider.h"

namespace backout::providers::launchdarkly {

// What a rollback of the flag does. Turning the flag off is the kill switch; lowering the
// default rule's rollout of the new variation to 0 % is offered only when the binding requests it.
enum class FlagAction { kTurnOff, kRolloutToZero };

enum class PatchFormat {
  kSemantic,   // semantic patch instructions (turnFlagOff, updateFallthroughVariationOrRollout)
  kJsonPatch,  // RFC 6902 JSON patch guarded by a `test` of the environment's version
};

// The settings of one `launchdarkly` provider binding, as written in the service's `provider`
// block:
//
//   kind: launchdarkly
//   project: default                     # required: project key
//   environment: production              # required: environment key
//   flag: new-checkout                   # required: flag key
//   credentials:
//     api_token: env:LD_API_TOKEN        # required: a personal or service access token
//   base_url: https://app.launchdarkly.com   # optional; this is the default
//   action: turn_off                     # turn_off (default) or rollout_to_zero
//   new_variation: "0"                   # the variation the bad change serves: index, name or
//   value safe_variation: "1"                  # rollout_to_zero: variation given the weight
//   (default:
//                                        #   the off variation)
//   sdk_fallback: "false"                # the fallback value the application passes in code, as
//                                        #   JSON text (a bare word is a string)
//   patch_format: semantic               # semantic (default) or json_patch
//   ignore_conflicts: false              # apply even if a pending scheduled change would fail
//   api_version: "20240415"              # LD-API-Version header
//   propagation_grace: 30s               # readiness waits this long after the change (0s: none)
//   request_timeout: 30s                 # one API call
//   timeout: 2m                          # one execution, retries and Retry-After waits included
//   max_retry_wait: 60s                  # longest Retry-After honoured before giving up
struct LaunchDarklySettings {
  std::string project;
  std::string environment;
  std::string flag;
  std::string base_url = "https://app.launchdarkly.com";
  std::string api_token;
  FlagAction action = FlagAction::kTurnOff;
  std::string new_variation;   // as written; resolved against the flag's variations when read
  std::string safe_variation;  // as written; empty means the off variation
  std::optional<nlohmann::json> sdk_fallback;
  PatchFormat patch_format = PatchFormat::kSemantic;
  bool ignore_conflicts = false;
  std::string api_version = "20240415";
  std::chrono::milliseconds propagation_grace{0};
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds timeout{120'000};
  std::chrono::milliseconds max_retry_wait{60'000};
};

std::string_view FlagActionName(FlagAction action);  // "turn_off", "rollout_to_zero"

// Validates `settings` for `service` and takes the API token from `secrets` (key `api_token`).
// Errors name the service and the field, reject unknown fields and never quote the token.
core::Result<LaunchDarklySettings> ParseLaunchDarklySettings(std::string_view service,
                                                             const nlohmann::json& settings,
                                                             const SecretValues& secrets);

}  // namespace backout::providers::launchdarkly
