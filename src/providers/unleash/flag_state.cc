#include "providers/unleash/flag_state.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

std::string Text(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return "";
}

// Unleash stores rollout percentages as strings; a number is accepted too.
bool IsZero(const std::string& rollout) { return rollout == "0" || rollout == "0.0"; }

Strategy ParseStrategy(const json& raw) {
  Strategy strategy;
  strategy.id = Text(raw, "id");
  strategy.name = Text(raw, "name");
  strategy.disabled = raw.value("disabled", false) == true;
  json parameters = raw.value("parameters", json::object());
  for (std::string_view parameter : {"rollout", "percentage"}) {
    if (parameters.is_object() && parameters.contains(parameter)) {
      strategy.rollout_parameter = parameter;
      strategy.rollout = Text(parameters, parameter);
      break;
    }
  }
  strategy.has_constraints = !raw.value("constraints", json::array()).empty();
  strategy.variant_count = raw.value("variants", json::array()).size();
  return strategy;
}

}  // namespace

std::string Strategy::Describe() const {
  std::vector<std::string> facts;
  if (!rollout_parameter.empty())
    facts.push_back(fmt::format("{} {} %", rollout_parameter, rollout));
  if (has_constraints) facts.push_back("with constraints");
  if (variant_count > 0) {
    facts.push_back(fmt::format("{} variant{}", variant_count, variant_count == 1 ? "" : "s"));
  }
  if (disabled) facts.push_back("disabled");
  std::string text = fmt::format("{} {}", name, id);
  if (!facts.empty()) text += fmt::format(" ({})", fmt::join(facts, ", "));
  return text;
}

std::string FlagState::Version() const {
  if (!enabled) return "off";
  bool any_active = false;
  for (const Strategy& strategy : strategies) {
    if (strategy.disabled) continue;
    any_active = true;
    if (strategy.rollout_parameter.empty() || !IsZero(strategy.rollout)) return "on";
  }
  // NOTE: An enabled environment without active strategies is reported as on, because Unleash's
  // client specification enables such a flag for everyone; no test here covers that case.
  return any_active ? "rollout-0" : "on";
}

std::vector<Strategy> FlagState::ServingAtRolloutZero() const {
  std::vector<Strategy> serving;
  for (const Strategy& strategy : strategies) {
    if (strategy.ServesAtRolloutZero()) serving.push_back(strategy);
  }
  return serving;
}

std::vector<Strategy> FlagState::RolloutsAboveZero() const {
  std::vector<Strategy> above;
  for (const Strategy& strategy : strategies) {
    if (!strategy.disabled && !strategy.rollout_parameter.empty() && !IsZero(strategy.rollout)) {
      above.push_back(strategy);
    }
  }
  return above;
}

json FlagState::ToJson() const {
  json strategies_json = json::array();
  for (const Strategy& strategy : strategies) {
    strategies_json.push_back({{"id", strategy.id},
                               {"name", strategy.name},
                               {"disabled", strategy.disabled},
                               {"rollout_parameter", strategy.rollout_parameter},
                               {"rollout", strategy.rollout},
                               {"has_constraints", strategy.has_constraints},
                               {"variant_count", strategy.variant_count}});
  }
  return json{{"project", project},
              {"flag", flag},
              {"environment", environment},
              {"enabled", enabled},
              {"version", Version()},
              {"type", flag_type},
              {"strategies", strategies_json},
              {"dependent_flags", children},
              {"parent_flags", parents}};
}

core::Result<FlagState> ParseFlagState(const json& feature, std::string_view environment) {
  if (!feature.is_object()) {
    return core::MakeError(core::ErrorCode::kInternal,
                           "Unleash returned a feature that is not a JSON object");
  }
  FlagState state;
  state.project = Text(feature, "project");
  state.flag = Text(feature, "name");
  state.environment = environment;
  state.flag_type = Text(feature, "type");

  std::vector<std::string> names;
  const json* found = nullptr;
  // `found` points into this copy, so it must outlive the loop.
  const json environments = feature.value("environments", json::array());
  for (const json& entry : environments) {
    std::string name = Text(entry, "name");
    names.push_back(name);
    if (name == environment) found = &entry;
  }
  if (found == nullptr) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "flag {} in project {} has no environment '{}'; the project's "
                           "environments are: {}",
                           state.flag, state.project, environment, fmt::join(names, ", "));
  }
  state.enabled = found->value("enabled", false) == true;
  for (const json& raw : found->value("strategies", json::array())) {
    state.strategies.push_back(ParseStrategy(raw));
  }
  for (const json& child : feature.value("children", json::array())) {
    if (child.is_string()) state.children.push_back(child.get<std::string>());
  }
  std::sort(state.children.begin(), state.children.end());
  for (const json& parent : feature.value("dependencies", json::array())) {
    std::string name = Text(parent, "feature");
    if (!name.empty()) state.parents.push_back(name);
  }
  return state;
}

bool FlagEvent::HasTag(std::string_view type, std::string_view value) const {
  return std::find(tags.begin(), tags.end(), fmt::format("{}:{}", type, value)) != tags.end();
}

std::string FlagEvent::ResultingVersion() const {
  if (type == "feature-environment-disabled") return "off";
  if (type == "feature-environment-enabled") return "on";
  if (type == "feature-strategy-update" && raw.contains("data") && raw["data"].is_object()) {
    Strategy after = ParseStrategy(raw["data"]);
    if (!after.rollout_parameter.empty() && IsZero(after.rollout)) return "rollout-0";
  }
  return "";
}

json FlagEvent::ToJson() const {
  return json{{"id", id},
              {"type", type},
              {"created_by", created_by},
              {"created_at", created_at ? json(core::FormatTime(*created_at)) : json(nullptr)},
              {"environment", environment},
              {"tags", tags},
              {"label", Text(raw, "label")},
              {"summary", Text(raw, "summary")}};
}

std::vector<FlagEvent> ParseEvents(const json& response) {
  std::vector<FlagEvent> events;
  for (const json& raw : response.value("events", json::array())) {
    if (!raw.is_object()) continue;
    FlagEvent event;
    event.id = raw.value("id", int64_t{0});
    event.type = Text(raw, "type");
    event.created_by = Text(raw, "createdBy");
    if (auto time = core::ParseTime(Text(raw, "createdAt")); time) event.created_at = *time;
    event.environment = Text(raw, "environment");
    for (const json& tag : raw.value("tags", json::array())) {
      if (tag.is_object())
        event.tags.push_back(fmt::format("{}:{}", Text(tag, "type"), Text(tag, "value")));
    }
    event.raw = raw;
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace backout::providers::unleash
