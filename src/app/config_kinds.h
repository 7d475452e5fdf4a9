#pragma once

// Provider and check kinds known to the config loader, each with the keys its block accepts and
// the settings it stores. Not for use outside the loader.

#include <optional>
#include <string_view>
#include <vector>

#include "app/config.h"
#include "app/config_fields.h"
#include "app/yaml_reader.h"

namespace backout::app::config_internal {

// Reads a `provider` block: its kind, then the kind's own keys into ProviderConfig::settings.
// An unknown kind fails with the list of known kinds.
std::optional<ProviderConfig> ParseProvider(ParseContext& context, const YamlValue& value);

// Returns the keys of which `provider` needs at least one before the provider can evaluate
// readiness, when the binding has none of them. Empty when readiness needs no key or one is given.
std::vector<std::string_view> MissingReadinessKeys(const ProviderConfig& provider);

// Reads one item of a service's `checks`, as ParseProvider does, plus the check's name.
std::optional<CheckConfig> ParseCheck(ParseContext& context, const YamlValue& value);

}  // namespace backout::app::config_internal
