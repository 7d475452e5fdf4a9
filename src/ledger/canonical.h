#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::ledger {

// Serializes `value` as RFC 8785 (JSON Canonicalization Scheme) text: object members sorted by
// their UTF-16 code units, no insignificant whitespace, strings escaped as ECMAScript does.
// The ledger admits integers only, so a floating-point number anywhere is rejected with its path.
core::Result<std::string> CanonicalJson(const nlohmann::json& value);

}  // namespace backout::ledger
