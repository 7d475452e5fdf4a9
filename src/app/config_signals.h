#pragma once

// The config loader's detection blocks: `signals` at the top level and a service's `detection`.
// Not for use outside the loader.

#include <optional>

#include "app/config.h"
#include "app/config_fields.h"
#include "app/yaml_reader.h"

namespace backout::app::config_internal {

std::optional<SignalsConfig> ParseSignals(ParseContext& context, const YamlValue& value);

std::optional<DetectionConfig> ParseDetection(ParseContext& context, const YamlValue& value);

}  // namespace backout::app::config_internal
