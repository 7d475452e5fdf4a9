#include "checks/settings_json.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "core/time.h"

namespace backout::checks::settings_json {

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

core::Result<std::string> String(const nlohmann::json& settings, std::string_view key,
                                 std::string_view path, std::optional<std::string> fallback) {
  auto it = settings.find(std::string(key));
  if (it == settings.end() || it->is_null()) {
    if (fallback) return *fallback;
    return core::MakeError(core::ErrorCode::kInvalidArgument, "{}: missing; the check needs it",
                           Join(path, key));
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return core::MakeError(core::ErrorCode::kInvalidArgument, "{}: expected a string, got {}",
                         Join(path, key), it->type_name());
}

core::Result<std::chrono::milliseconds> Duration(const nlohmann::json& settings,
                                                 std::string_view key, std::string_view path,
                                                 std::chrono::milliseconds fallback,
                                                 bool allow_zero) {
  auto it = settings.find(std::string(key));
  if (it == settings.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{}: expected a duration such as 30s, got {}", Join(path, key),
                           it->dump());
  }
  auto duration = core::ParseDuration(it->get<std::string>());
  if (!duration || duration->count() < 0 || (!allow_zero && duration->count() == 0)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{}: '{}' is not a duration {}such as 30s or 5m", Join(path, key),
                           it->get<std::string>(), allow_zero ? "" : "longer than zero ");
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
}

core::Result<std::optional<double>> Number(const nlohmann::json& settings, std::string_view key,
                                           std::string_view path) {
  auto it = settings.find(std::string(key));
  if (it == settings.end() || it->is_null()) return std::optional<double>();
  if (it->is_number()) return std::optional<double>(it->get<double>());
  if (it->is_string()) {
    const std::string text = it->get<std::string>();
    double value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) {
      return std::optional<double>(value);
    }
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument, "{}: '{}' is not a number",
                         Join(path, key), it->is_string() ? it->get<std::string>() : it->dump());
}

core::Result<void> OnlyKeys(const nlohmann::json& settings,
                            std::initializer_list<std::string_view> known, std::string_view path) {
  if (!settings.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "{}: expected a mapping, got {}",
                           path.empty() ? "settings" : path, settings.type_name());
  }
  for (const auto& [key, value] : settings.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string names;
      for (std::string_view name : known) names += (names.empty() ? "" : ", ") + std::string(name);
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{}: unknown key; expected one of: {}", Join(path, key), names);
    }
  }
  return {};
}

}  // namespace backout::checks::settings_json
