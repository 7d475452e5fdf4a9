#pragma once

// Reading check settings: the JSON the config loader stored for a check's block. Not for use
// outside the checks module.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::checks::settings_json {

// Returns settings[key] as a string, or `fallback` when absent. `path` prefixes error messages.
core::Result<std::string> String(const nlohmann::json& settings, std::string_view key,
                                 std::string_view path, std::optional<std::string> fallback);

// Returns settings[key], a duration such as 30s, or `fallback` when absent. With `allow_zero`,
// 0s is accepted.
core::Result<std::chrono::milliseconds> Duration(const nlohmann::json& settings,
                                                 std::string_view key, std::string_view path,
                                                 std::chrono::milliseconds fallback,
                                                 bool allow_zero);

// Returns settings[key] as a number (a JSON number or a numeric string), or nullopt when absent.
core::Result<std::optional<double>> Number(const nlohmann::json& settings, std::string_view key,
                                           std::string_view path);

// Returns an error unless every key of the object `settings` is one of `known`.
core::Result<void> OnlyKeys(const nlohmann::json& settings,
                            std::initializer_list<std::string_view> known, std::string_view path);

// Returns "path.key", or "key" when path is empty.
std::string Join(std::string_view path, std::string_view key);

}  // namespace backout::checks::settings_json
