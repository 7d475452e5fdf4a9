#include "app/yaml_reader.h"

#include <charconv>
#include <regex>

#include <fmt/format.h>

namespace backout::app {
namespace {

// The 1-based line of `node`, or `fallback` when yaml-cpp has no position for it. yaml-cpp
// places an empty value (`key:` at the end of a line) on the line after its key, so callers pass
// the key's line for those.
int LineOf(const YAML::Node& node, int fallback) {
  if (node.IsNull() || node.Mark().is_null()) return fallback;
  return node.Mark().line + 1;
}

// Names the YAML 1.2 core schema type of a scalar: a quoted scalar is a string, and a plain one
// is a boolean or a number when it is spelled as one. yaml-cpp keeps every scalar as text.
std::string_view ScalarTypeName(const YAML::Node& node) {
  if (node.Tag() == "!") return "a string";
  static const std::regex kBoolean("true|True|TRUE|false|False|FALSE");
  static const std::regex kNumber(
      "[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|"
      "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");
  const std::string& text = node.Scalar();
  if (std::regex_match(text, kBoolean)) return "a boolean";
  if (std::regex_match(text, kNumber)) return "a number";
  return "a string";
}

std::string_view TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return ScalarTypeName(node);
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

template <typename Range>
bool Contains(const Range& range, std::string_view text) {
  for (const auto& candidate : range) {
    if (candidate == text) return true;
  }
  return false;
}

}  // namespace

const YamlValue* YamlFields::Find(std::string_view key) const {
  for (const auto& [name, value] : entries_) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

void YamlReader::Fail(int line, std::string_view path, std::string_view message) {
  if (error_) return;
  std::string text = fmt::format("{}:{}: ", file_name_, line);
  if (!path.empty()) text += fmt::format("{}: ", path);
  text += message;
  error_ = core::Error{core::ErrorCode::kInvalidArgument, std::move(text)};
}

void YamlReader::Warn(const YamlValue& value, std::string_view message) {
  std::string text = fmt::format("{}:{}: ", file_name_, value.line);
  if (!value.path.empty()) text += fmt::format("{}: ", value.path);
  text += message;
  warnings_.push_back(std::move(text));
}

YamlValue YamlReader::Root(const YAML::Node& node) { return YamlValue{node, "", LineOf(node, 1)}; }

bool YamlReader::ExpectType(const YamlValue& value, YAML::NodeType::value type,
                            std::string_view expected) {
  if (!ok()) return false;
  if (value.node.Type() == type) return true;
  Fail(value, fmt::format("expected {}, got {}", expected, TypeName(value.node)));
  return false;
}

std::optional<YamlFields> YamlReader::Mapping(const YamlValue& value,
                                              std::span<const std::string_view> known_keys) {
  return ReadMapping(value, known_keys);
}

std::optional<YamlFields> YamlReader::Mapping(const YamlValue& value) {
  return ReadMapping(value, std::nullopt);
}

std::optional<YamlFields> YamlReader::ReadMapping(
    const YamlValue& value, std::optional<std::span<const std::string_view>> known_keys) {
  if (!ExpectType(value, YAML::NodeType::Map, "a mapping")) return std::nullopt;

  YamlFields fields;
  fields.path_ = value.path;
  fields.line_ = value.line;
  for (auto it = value.node.begin(); it != value.node.end(); ++it) {
    // Copies, because `it->` returns a proxy that ends with the statement. Nodes are handles.
    const YAML::Node key = it->first;
    const YAML::Node child = it->second;
    const int key_line = LineOf(key, value.line);
    if (!key.IsScalar()) {
      Fail(key_line, value.path, "keys must be plain names, not lists or mappings");
      return std::nullopt;
    }

    const std::string& name = key.Scalar();
    const std::string path = JoinPath(value.path, name);
    if (known_keys && !Contains(*known_keys, name)) {
      Fail(key_line, path,
           fmt::format("unknown key, expected one of: {}", fmt::join(*known_keys, ", ")));
      return std::nullopt;
    }
    if (const YamlValue* first = fields.Find(name)) {
      Fail(key_line, path, fmt::format("duplicate key (first given at line {})", first->line));
      return std::nullopt;
    }
    fields.entries_.emplace_back(name, YamlValue{child, path, LineOf(child, key_line)});
  }
  return fields;
}

const YamlValue* YamlReader::Required(const YamlFields& fields, std::string_view key) {
  if (!ok()) return nullptr;
  const YamlValue* value = fields.Find(key);
  if (value == nullptr) Fail(fields.line(), JoinPath(fields.path(), key), "missing required field");
  return value;
}

std::optional<std::vector<YamlValue>> YamlReader::List(const YamlValue& value) {
  if (!ExpectType(value, YAML::NodeType::Sequence, "a list")) return std::nullopt;

  std::vector<YamlValue> items;
  for (const YAML::Node& item : value.node) {
    const std::string path = fmt::format("{}[{}]", value.path, items.size());
    items.push_back(YamlValue{item, path, LineOf(item, value.line)});
  }
  return items;
}

std::optional<std::string> YamlReader::String(const YamlValue& value) {
  if (!ExpectType(value, YAML::NodeType::Scalar, "a string")) return std::nullopt;
  return value.node.Scalar();
}

std::optional<std::vector<std::string>> YamlReader::StringList(const YamlValue& value,
                                                               const ItemCheck& check) {
  auto items = List(value);
  if (!items) return std::nullopt;

  std::vector<std::string> strings;
  for (const YamlValue& item : *items) {
    auto text = String(item);
    if (!text) return std::nullopt;
    if (Contains(strings, *text)) {
      Fail(item, fmt::format("'{}' is listed twice", *text));
      return std::nullopt;
    }
    if (check) {
      if (auto problem = check(*text)) {
        Fail(item, *problem);
        return std::nullopt;
      }
    }
    strings.push_back(*text);
  }
  return strings;
}

std::optional<bool> YamlReader::Bool(const YamlValue& value) {
  if (!ExpectType(value, YAML::NodeType::Scalar, "true or false")) return std::nullopt;
  const std::string& text = value.node.Scalar();
  if (text == "true") return true;
  if (text == "false") return false;
  Fail(value, fmt::format("expected true or false, got '{}'", text));
  return std::nullopt;
}

std::optional<int64_t> YamlReader::Integer(const YamlValue& value) {
  if (!ExpectType(value, YAML::NodeType::Scalar, "a whole number")) return std::nullopt;
  const std::string& text = value.node.Scalar();
  int64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size()) {
    Fail(value, fmt::format("expected a whole number, got '{}'", text));
    return std::nullopt;
  }
  return number;
}

std::optional<core::Duration> YamlReader::Duration(const YamlValue& value) {
  if (!ExpectType(value, YAML::NodeType::Scalar, "a duration such as 300s")) return std::nullopt;
  const std::string& text = value.node.Scalar();
  auto duration = core::ParseDuration(text);
  if (!duration) {
    Fail(value, duration.error().message);
    return std::nullopt;
  }
  if (duration->count() == 0) {
    Fail(value, fmt::format("invalid duration '{}': must be longer than zero", text));
    return std::nullopt;
  }
  return *duration;
}

}  // namespace backout::app
