#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::ledger {

// Serializes `value` as RFC 8785 (JSON Canonicalization Scheme) text: object members sorted by
// their UTF-16 code units, no insignificant whitespace, strings escaped as ECMAScript's
// JSON.stringify does, and UTF-8 output.
//
// Returns kInvalidArgument, naming the value's JSON Pointer (RFC 6901), for a floating-point
// number (the ledger records integers only), an integer outside ±(2^53 − 1), a string or member
// name that is not valid UTF-8, and a binary value. RFC 8785 reads numbers as IEEE 754 doubles,
// so other implementations would print a larger integer differently.
core::Result<std::string> CanonicalJson(const nlohmann::json& value);

}  // namespace backout::ledger
