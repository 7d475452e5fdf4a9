#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/error.h"

namespace backout::core {

// A point in time in UTC with microsecond precision, the precision the ledger records.
using Time = std::chrono::sys_time<std::chrono::microseconds>;
using Duration = std::chrono::microseconds;

// Formats as RFC 3339 UTC with exactly six fractional digits and `Z`: 2026-12-04T17:05:41.000123Z.
std::string FormatTime(Time time);

// Parses RFC 3339 with `Z` or a numeric offset and 0 to 9 fractional digits (extra digits beyond
// microseconds are truncated). Rejects anything else with a message naming the text.
Result<Time> ParseTime(std::string_view text);

// Parses durations written as an integer and a unit: 300ms, 30s, 5m, 24h.
Result<Duration> ParseDuration(std::string_view text);

}  // namespace backout::core
