#include "providers/launchdarkly/flag_state.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace backout::providers::launchdarkly {
namespace {

using nlohmann::json;

// Individual target keys quoted in a description before the rest is cut to "…".
constexpr size_t kQuotedKeys = 3;

std::string VariationLabel(const json& flag, size_t index) {
  const json& variation = flag["variations"][index];
  std::string name = variation.value("name", "");
  std::string value = variation.value("value", json()).dump();
  return name.empty() ? fmt::format("variation {} ({})", index, value)
                      : fmt::format("variation {} '{}' ({})", index, name, value);
}

std::string Percent(int weight) {
  if (weight % 1000 == 0) return fmt::format("{} %", weight / 1000);
  return fmt::format("{:.3f} %", weight / 1000.0);
}

}  // namespace

core::Result<size_t> ResolveVariation(const json& flag, std::string_view reference) {
  const json& variations = flag.value("variations", json::array());
  bool digits = !reference.empty() && std::all_of(reference.begin(), reference.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    size_t index = std::stoul(std::string(reference));
    if (index < variations.size()) return index;
  }
  json as_json = json::parse(reference, nullptr, false);
  for (size_t i = 0; i < variations.size(); ++i) {
    const json& variation = variations[i];
    if (variation.value("name", "") == reference) return i;
    if (!digits && !as_json.is_discarded() && variation.value("value", json()) == as_json) return i;
    if (variation.value("value", json()) == json(std::string(reference))) return i;
  }
  std::vector<std::string> choices;
  for (size_t i = 0; i < variations.size(); ++i) choices.push_back(VariationLabel(flag, i));
  return core::MakeError(core::ErrorCode::kNotFound,
                         "flag {} has no variation '{}'; give an index, name or value of: {}",
                         flag.value("key", ""), reference, fmt::join(choices, ", "));
}

json OffServes::ToJson() const {
  return json{{"off_variation", off_variation ? json(*off_variation) : json(nullptr)},
              {"value", value},
              {"value_known", value_known},
              {"serves_new_variation", serves_new},
              {"description", description}};
}

OffServes DescribeOff(const json& flag, const json& config, std::optional<size_t> new_variation,
                      const std::optional<json>& sdk_fallback) {
  OffServes off;
  const json& variations = flag.value("variations", json::array());
  json index = config.value("offVariation", json());
  if (index.is_number_integer() && index.get<int64_t>() >= 0 &&
      index.get<size_t>() < variations.size()) {
    off.off_variation = index.get<size_t>();
    off.value = variations[*off.off_variation].value("value", json());
    off.value_known = true;
    off.serves_new = new_variation && *new_variation == *off.off_variation;
    off.description =
        fmt::format("off serves its off variation, {}", VariationLabel(flag, *off.off_variation));
  } else if (sdk_fallback) {
    off.value = *sdk_fallback;
    off.value_known = true;
    off.serves_new = new_variation && *new_variation < variations.size() &&
                     variations[*new_variation].value("value", json()) == *sdk_fallback;
    off.description = fmt::format(
        "no off variation is set, so SDKs serve the fallback value in the application's code, "
        "which the binding gives as {}",
        sdk_fallback->dump());
  } else {
    off.description =
        "no off variation is set, so SDKs serve whatever fallback value the application passes "
        "in code, which may be the new behaviour; set the flag's off variation or give "
        "sdk_fallback in the binding";
  }
  if (off.serves_new) {
    off.description += fmt::format(
        ", which is the new variation: turning the flag off keeps "
        "serving the new behaviour");
  }
  return off;
}

int WeightOf(const json& serve, size_t variation) {
  if (serve.contains("variation")) {
    return serve["variation"] == json(variation) ? kFullWeight : 0;
  }
  int weight = 0;
  for (const json& weighted :
       serve.value("rollout", json::object()).value("variations", json::array())) {
    if (weighted.value("variation", json()) == json(variation))
      weight += weighted.value("weight", 0);
  }
  return weight;
}

NewVariationUse FindNewVariationUse(const json& config, size_t new_variation) {
  NewVariationUse use;
  use.fallthrough_weight = WeightOf(config.value("fallthrough", json::object()), new_variation);
  for (const char* field : {"targets", "contextTargets"}) {
    for (const json& target : config.value(field, json::array())) {
      if (target.value("variation", json()) != json(new_variation)) continue;
      std::vector<std::string> keys = target.value("values", std::vector<std::string>());
      if (keys.empty()) continue;
      std::vector<std::string> quoted(keys.begin(),
                                      keys.begin() + std::min(keys.size(), kQuotedKeys));
      use.targets.push_back(fmt::format("{} {} target{} ({}{})", keys.size(),
                                        target.value("contextKind", "user"),
                                        keys.size() == 1 ? "" : "s", fmt::join(quoted, ", "),
                                        keys.size() > kQuotedKeys ? ", …" : ""));
    }
  }
  const json& rules = config.value("rules", json::array());
  for (size_t i = 0; i < rules.size(); ++i) {
    int weight = WeightOf(rules[i], new_variation);
    if (weight == 0) continue;
    std::string label = rules[i].value("description", "");
    if (label.empty()) label = rules[i].value("_id", "");
    use.rules.push_back(fmt::format("rule {} ({}, {})", i + 1, label, Percent(weight)));
  }
  return use;
}

std::string NewVariationUse::Describe() const {
  std::vector<std::string> parts;
  if (fallthrough_weight > 0)
    parts.push_back(fmt::format("the default rule ({})", Percent(fallthrough_weight)));
  parts.insert(parts.end(), targets.begin(), targets.end());
  parts.insert(parts.end(), rules.begin(), rules.end());
  return parts.empty() ? "nothing" : fmt::format("{}", fmt::join(parts, "; "));
}

json NewVariationUse::ToJson() const {
  return json{{"fallthrough_weight", fallthrough_weight}, {"targets", targets}, {"rules", rules}};
}

std::string TargetingState(const json& config) { return config.value("on", false) ? "on" : "off"; }

}  // namespace backout::providers::launchdarkly
