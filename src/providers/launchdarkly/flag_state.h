#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

// Reading one environment of a LaunchDarkly flag the way its SDKs evaluate it. With targeting
// off, SDKs serve the off variation, or the fallback value the application passes in code when
// none is set. With targeting on, they check prerequisites, then individual targets, then rules,
// then the default rule ("fallthrough").
namespace backout::providers::launchdarkly {

// Rollout weights are in thousandths of a percent: 100000 is everyone.
inline constexpr int kFullWeight = 100000;

// Finds the variation `reference` names: an index ("0"), a variation name, or a value written
// as JSON text ("true", "\"blue\"") or as bare text. Fails with kNotFound naming the choices.
core::Result<size_t> ResolveVariation(const nlohmann::json& flag, std::string_view reference);

// What the environment serves to every context once targeting is off.
struct OffServes {
  std::optional<size_t> off_variation;  // empty when the flag has no off variation set
  nlohmann::json value;                 // the value served; null when not known
  bool value_known = false;
  bool serves_new = false;  // the value is the new variation's, so off changes nothing
  std::string description;  // one line for people

  nlohmann::json ToJson() const;
};

// `new_variation` is the index of the variation the bad change serves, when the binding names
// it; `sdk_fallback` the application's code fallback, when the binding gives it.
OffServes DescribeOff(const nlohmann::json& flag, const nlohmann::json& config,
                      std::optional<size_t> new_variation,
                      const std::optional<nlohmann::json>& sdk_fallback);

// Where targeting (while on) still serves the new variation.
struct NewVariationUse {
  int fallthrough_weight = 0;        // share of the default rule, in thousandths of a percent
  std::vector<std::string> targets;  // "3 user targets (alice, bob, …)"
  std::vector<std::string> rules;    // "rule 2 (beta users, 50 %)"

  bool ServedBeyondDefaultRule() const { return !targets.empty() || !rules.empty(); }
  bool ServedAnywhere() const { return fallthrough_weight > 0 || ServedBeyondDefaultRule(); }
  std::string Describe() const;
  nlohmann::json ToJson() const;
};

NewVariationUse FindNewVariationUse(const nlohmann::json& config, size_t new_variation);

// The weight a "variation or rollout" object gives `variation`: 100000 or 0 for a fixed
// variation, the rollout's weight otherwise.
int WeightOf(const nlohmann::json& serve, size_t variation);

// "off" when targeting is off in the environment, else "on".
std::string TargetingState(const nlohmann::json& config);

}  // namespace backout::providers::launchdarkly
