#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::ledger {

// Serializes `value` as RFC 8785 (JSON Canonicalization Scheme) text: object members sorted by
// their UTF-16 code units, no insignificant whitespace, strings escaped as ECMAScript's
// JSON.stringify does, and UTF-8 output.
//
// The ledger admits integers only, so these are rejected (kInvalidArgument) with the JSON Pointer
// (RFC 6901) of the offending value: a floating-point number, an integer outside
// ±(2^53 − 1) (RFC 8785 reads numbers as IEEE 754 doubles, so a larger one would not survive
// another implementation), a string or member name that is not valid UTF-8, and binary values.
core::Result<std::string> CanonicalJson(const nlohmann::json& value);

}  // namespace backout::ledger
