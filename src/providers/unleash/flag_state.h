#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "providers/unleash/unleash_settings.h"

namespace backout::providers::unleash {

// One activation strategy of the flag in the bound environment.
struct Strategy {
  std::string id;
  std::string name;  // flexibleRollout, default, remoteAddress…
  bool disabled = false;
  // The parameter that sets the share of contexts it serves: `rollout` for flexibleRollout,
  // `percentage` for the older gradualRollout* strategies, empty for strategies without one.
  std::string rollout_parameter;
  std::string rollout;  // the parameter's value as Unleash stores it, a string such as "100"
  bool has_constraints = false;
  size_t variant_count = 0;

  // Whether, once every rollout parameter is 0, this strategy can still enable the flag for
  // some context: an active strategy without a rollout parameter.
  bool ServesAtRolloutZero() const { return !disabled && rollout_parameter.empty(); }
  std::string Describe() const;  // "flexibleRollout 52a0… (rollout 100 %, 1 variant)"
};

// A flag whose dependency names the bound flag as its parent.
struct DependentFlag {
  std::string name;
  // The parent state the child requires: true when the child is on only while the parent is
  // on, false when it is on only while the parent is off. Empty when the child could not be
  // read.
  std::optional<bool> requires_parent_enabled;
  std::vector<std::string> required_variants;
};

// The bound flag in the bound environment, as the Admin API reports it.
struct FlagState {
  std::string project;
  std::string flag;
  std::string environment;
  bool enabled = false;
  std::vector<Strategy> strategies;   // in Unleash's sort order
  std::vector<std::string> children;  // flags that depend on this one, sorted
  std::vector<std::string> parents;   // flags this one depends on
  std::string flag_type;              // release, kill-switch…

  // "off" when the environment's flag is off; "rollout-0" when it is on and every active
  // strategy has a rollout parameter of 0; "on" otherwise.
  std::string Version() const;
  // Whether the environment is in `state`.
  bool IsIn(RollbackState state) const { return Version() == RollbackStateName(state); }
  // Active strategies a rollout of 0 % leaves serving the flag.
  std::vector<Strategy> ServingAtRolloutZero() const;
  // Active strategies whose rollout parameter is not yet 0.
  std::vector<Strategy> RolloutsAboveZero() const;
  nlohmann::json ToJson() const;
};

// Reads a GET /api/admin/projects/{project}/features/{flag} response. Fails with
// kFailedPrecondition when the project has no environment named `environment`, naming the
// environments it has.
core::Result<FlagState> ParseFlagState(const nlohmann::json& feature, std::string_view environment);

// One entry of the events API (GET /api/admin/search/events).
struct FlagEvent {
  int64_t id = 0;
  std::string type;  // feature-environment-disabled, feature-strategy-update…
  std::string created_by;
  std::optional<core::Time> created_at;
  std::string environment;        // empty for events of the whole flag (archived, tagged)
  std::vector<std::string> tags;  // TYPE:VALUE of the flag's tags when the event was recorded
  nlohmann::json raw;

  bool HasTag(std::string_view type, std::string_view value) const;
  // The environment state the event leaves: "off", "on", "rollout-0" (a strategy update that
  // sets the rollout parameter to 0), or empty when the event does not change it.
  std::string ResultingVersion() const;
  nlohmann::json ToJson() const;
};

std::vector<FlagEvent> ParseEvents(const nlohmann::json& response);

}  // namespace backout::providers::unleash
