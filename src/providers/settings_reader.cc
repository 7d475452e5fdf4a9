#include "providers/settings_reader.h"

#include <algorithm>
#include <filesystem>

#include <fmt/ranges.h>

#include "core/time.h"

namespace backout::providers {

using nlohmann::json;

SettingsReader::SettingsReader(std::string_view service, std::string_view kind,
                               const json& settings)
    : service_(service), kind_(kind), settings_(settings) {}

core::Result<void> SettingsReader::CheckFields(
    std::span<const std::string_view> known_fields) const {
  if (!settings_.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: {} provider settings must be an object, got {}", service_,
                           kind_, settings_.type_name());
  }
  for (const auto& [field, value] : settings_.items()) {
    if (field == "kind") continue;
    if (std::find(known_fields.begin(), known_fields.end(), field) == known_fields.end()) {
      return Invalid(field, "unknown field; known fields are {}", fmt::join(known_fields, ", "));
    }
  }
  auto kind = settings_.find("kind");
  if (kind != settings_.end() && *kind != kind_) {
    return Invalid("kind", "must be {}, got {}", kind_, kind->dump());
  }
  return {};
}

const json* SettingsReader::Find(std::string_view field) const {
  auto it = settings_.find(field);
  if (it == settings_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool SettingsReader::Has(std::string_view field) const { return Find(field) != nullptr; }

core::Result<std::string> SettingsReader::String(std::string_view field, bool required,
                                                 std::string fallback) const {
  const json* value = Find(field);
  if (value == nullptr) {
    if (required) return Invalid(field, "missing; it is required");
    return fallback;
  }
  if (!value->is_string() || value->get<std::string>().empty()) {
    return Invalid(field, "must be a non-empty string, got {}", value->dump());
  }
  std::string text = value->get<std::string>();
  if (text.find('\0') != std::string::npos) return Invalid(field, "contains a NUL character");
  return text;
}

core::Result<std::string> SettingsReader::AbsolutePath(std::string_view field,
                                                       bool required) const {
  auto text = String(field, required);
  if (!text || text->empty()) return text;
  std::filesystem::path path(*text);
  if (!path.is_absolute()) {
    return Invalid(field, "'{}' must be an absolute path", *text);
  }
  std::string normal = path.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

core::Result<std::vector<std::string>> SettingsReader::Command(std::string_view field) const {
  const json* value = Find(field);
  if (value == nullptr) return std::vector<std::string>{};
  if (!value->is_array() || value->empty()) {
    return Invalid(field, "must be a non-empty list of strings, the program first");
  }

  std::vector<std::string> argv;
  for (size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string()) {
      return Invalid(field, "item {} must be a string, got {}", i, item.type_name());
    }
    std::string arg = item.get<std::string>();
    if (arg.find('\0') != std::string::npos) {
      return Invalid(field, "item {} contains a NUL character", i);
    }
    argv.push_back(std::move(arg));
  }
  if (!std::filesystem::path(argv[0]).is_absolute()) {
    return Invalid(field,
                   "the program '{}' must be an absolute path; commands run without a shell or "
                   "PATH search",
                   argv[0]);
  }
  return argv;
}

core::Result<std::vector<std::string>> SettingsReader::StringList(std::string_view field) const {
  const json* value = Find(field);
  if (value == nullptr) return std::vector<std::string>{};
  if (!value->is_array()) return Invalid(field, "must be a list of strings");

  std::vector<std::string> items;
  for (size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string() || item.get<std::string>().empty()) {
      return Invalid(field, "item {} must be a non-empty string, got {}", i, item.dump());
    }
    items.push_back(item.get<std::string>());
  }
  return items;
}

core::Result<std::chrono::milliseconds> SettingsReader::Duration(
    std::string_view field, std::chrono::milliseconds fallback) const {
  const json* value = Find(field);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    return Invalid(field, "must be a duration such as 30s or 5m, got {}", value->dump());
  }
  auto duration = core::ParseDuration(value->get<std::string>());
  if (!duration) return Invalid(field, "{}", duration.error().message);
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
  if (limit.count() <= 0) {
    return Invalid(field, "must be at least 1ms, got {}", value->get<std::string>());
  }
  return limit;
}

core::Result<int64_t> SettingsReader::Integer(std::string_view field, int64_t fallback, int64_t min,
                                              int64_t max) const {
  const json* value = Find(field);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) {
    return Invalid(field, "must be an integer from {} to {}, got {}", min, max, value->dump());
  }
  int64_t number = value->get<int64_t>();
  if (number < min || number > max) {
    return Invalid(field, "must be from {} to {}, got {}", min, max, number);
  }
  return number;
}

core::Result<std::string> SettingsReader::HttpUrl(std::string_view field) const {
  auto text = String(field, false);
  if (!text || text->empty()) return text;
  if (!text->starts_with("http://") && !text->starts_with("https://")) {
    return Invalid(field, "'{}' must start with http:// or https://", *text);
  }
  return text;
}

}  // namespace backout::providers
