#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::providers {

// Reads the fields of one provider binding's settings object. Every error names the service, the
// provider kind and the field, and says what a valid value looks like. Absent and null fields
// are the same: the optional readers then return the fallback.
class SettingsReader {
 public:
  SettingsReader(std::string_view service, std::string_view kind, const nlohmann::json& settings);

  // Checks that the settings are an object whose fields are all in `known_fields` (plus `kind`,
  // which must equal the provider's kind when present).
  core::Result<void> CheckFields(std::span<const std::string_view> known_fields) const;

  bool Has(std::string_view field) const;

  // A non-empty string without NUL characters.
  core::Result<std::string> String(std::string_view field, bool required,
                                   std::string fallback = "") const;
  // An absolute path, lexically normalized, without a trailing slash.
  core::Result<std::string> AbsolutePath(std::string_view field, bool required) const;
  // A program and its arguments: a non-empty list of strings whose first item is absolute.
  // Returns an empty list when the field is absent.
  core::Result<std::vector<std::string>> Command(std::string_view field) const;
  // A list of non-empty strings; empty when absent.
  core::Result<std::vector<std::string>> StringList(std::string_view field) const;
  // A duration written as text (30s, 5m), at least 1ms.
  core::Result<std::chrono::milliseconds> Duration(std::string_view field,
                                                   std::chrono::milliseconds fallback) const;
  core::Result<int64_t> Integer(std::string_view field, int64_t fallback, int64_t min,
                                int64_t max) const;
  // An http:// or https:// URL; empty when absent.
  core::Result<std::string> HttpUrl(std::string_view field) const;

  template <typename... Args>
  std::unexpected<core::Error> Invalid(std::string_view field, fmt::format_string<Args...> format,
                                       Args&&... args) const {
    return std::unexpected(
        core::Error{core::ErrorCode::kInvalidArgument,
                    fmt::format("service {}: {} provider field '{}': {}", service_, kind_, field,
                                fmt::format(format, std::forward<Args>(args)...))});
  }

 private:
  const nlohmann::json* Find(std::string_view field) const;

  std::string service_;
  std::string kind_;
  const nlohmann::json& settings_;
};

}  // namespace backout::providers
