#include "cli/output.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <regex>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace backout::cli {

std::string IndentText(std::string_view text, int spaces) {
  std::string out;
  const std::string pad(spaces, ' ');
  bool line_start = true;
  for (char c : text) {
    if (line_start && c != '\n') {
      out += pad;
    }
    out += c;
    line_start = c == '\n';
  }
  return out;
}

namespace {

bool IsScalar(const Json& value) { return !value.is_object() && !value.is_array(); }

bool IsScalarArray(const Json& value) {
  return value.is_array() && std::all_of(value.begin(), value.end(), IsScalar);
}

bool IsObjectArray(const Json& value) {
  return value.is_array() && !value.empty() &&
         std::all_of(value.begin(), value.end(), [](const Json& item) { return item.is_object(); });
}

// A value that fits on one line of a table or a `key: value` listing.
bool IsInline(const Json& value) {
  if (value.is_string()) {
    return value.get_ref<const std::string&>().find('\n') == std::string::npos;
  }
  return IsScalar(value) || IsScalarArray(value) || (value.is_object() && value.empty());
}

const Json* FindField(const Json& item, const std::string& field) {
  if (!item.is_object()) {
    return nullptr;
  }
  if (field.starts_with('/')) {
    const Json::json_pointer pointer(field);
    return item.contains(pointer) ? &item.at(pointer) : nullptr;
  }
  auto found = item.find(field);
  return found == item.end() ? nullptr : &*found;
}

// Table cells stay on one line, so line breaks inside a value become spaces.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

// Columns for an array of objects shown inside RenderObject: every field that fits in a cell, in
// the order the fields first appear.
std::vector<Column> InlineColumns(const Json& items) {
  std::vector<Column> columns;
  for (const Json& item : items) {
    for (const auto& [key, value] : item.items()) {
      const bool known = std::any_of(columns.begin(), columns.end(),
                                     [&](const Column& column) { return column.field == key; });
      if (!known && IsInline(value)) {
        columns.push_back(Column{key, key});
      }
    }
  }
  return columns;
}

std::string RenderObjectAt(const Json& object, int indent);

std::string RenderField(const std::string& key, const Json& value, size_t width, int indent) {
  const std::string pad(indent, ' ');
  if (IsInline(value)) {
    const std::string cell = value.is_object() ? "-" : FormatCell(value);
    return fmt::format("{}{:<{}} {}\n", pad, key + ":", width + 1, cell);
  }
  if (value.is_string()) {
    return fmt::format("{}{}: |\n{}\n", pad, key,
                       IndentText(value.get_ref<const std::string&>(), indent + 2));
  }
  if (value.is_object()) {
    return fmt::format("{}{}:\n{}", pad, key, RenderObjectAt(value, indent + 2));
  }
  if (IsObjectArray(value)) {
    return fmt::format("{}{}:\n{}", pad, key,
                       IndentText(RenderTable(value, InlineColumns(value)), indent + 2));
  }
  // An array that mixes objects with other values: one entry per line.
  std::string out = fmt::format("{}{}:\n", pad, key);
  for (const Json& item : value) {
    out += item.is_object() ? RenderObjectAt(item, indent + 2) + "\n"
                            : fmt::format("{}  - {}\n", pad, FormatCell(item));
  }
  return out;
}

// Keys a reader looks for first; RenderObject lists them before the others.
constexpr std::array<std::string_view, 2> kLeadingKeys = {"id", "name"};

std::string RenderObjectAt(const Json& object, int indent) {
  size_t width = 0;
  for (const auto& [key, value] : object.items()) {
    if (IsInline(value)) {
      width = std::max(width, key.size());
    }
  }
  std::string out;
  for (std::string_view leading : kLeadingKeys) {
    auto found = object.find(leading);
    if (found != object.end()) {
      out += RenderField(std::string(leading), *found, width, indent);
    }
  }
  for (const auto& [key, value] : object.items()) {
    if (std::find(kLeadingKeys.begin(), kLeadingKeys.end(), key) == kLeadingKeys.end()) {
      out += RenderField(key, value, width, indent);
    }
  }
  return out;
}

// True when a plain YAML scalar with this text would read back as something other than a string
// (null, a boolean or a number under YAML 1.1 or 1.2), so the emitter must quote it.
bool NeedsQuotes(const std::string& text) {
  static const std::regex kNonString(
      "|~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|"
      "OFF|y|Y|n|N|[-+]?[0-9][0-9_]*|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?([0-9][0-9_]*)?\\.[0-9]*"
      "([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|"
      "[0-9]+:[0-9]+(:[0-9]+)*");
  return std::regex_match(text, kNonString);
}

void EmitYaml(YAML::Emitter& emitter, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      if (value.empty()) {
        emitter << YAML::Flow;
      }
      emitter << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        emitter << YAML::Key << key << YAML::Value;
        EmitYaml(emitter, item);
      }
      emitter << YAML::EndMap;
      break;
    case Json::value_t::array:
      if (value.empty()) {
        emitter << YAML::Flow;
      }
      emitter << YAML::BeginSeq;
      for (const Json& item : value) {
        EmitYaml(emitter, item);
      }
      emitter << YAML::EndSeq;
      break;
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (text.find('\n') != std::string::npos) {
        emitter << YAML::Literal << text;
      } else if (NeedsQuotes(text)) {
        emitter << YAML::DoubleQuoted << text;
      } else {
        emitter << text;
      }
      break;
    }
    case Json::value_t::boolean:
      emitter << YAML::TrueFalseBool << value.get<bool>();
      break;
    case Json::value_t::number_integer:
      emitter << value.get<std::int64_t>();
      break;
    case Json::value_t::number_unsigned:
      emitter << value.get<std::uint64_t>();
      break;
    case Json::value_t::number_float:
      emitter << value.get<double>();
      break;
    default:
      emitter << YAML::Null;
      break;
  }
}

}  // namespace

core::Result<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "table") {
    return OutputFormat::kTable;
  }
  if (text == "json") {
    return OutputFormat::kJson;
  }
  if (text == "yaml") {
    return OutputFormat::kYaml;
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "unknown output format '{}': use table, json or yaml", text);
}

std::string FormatCell(const Json& value) {
  if (value.is_null()) {
    return "-";
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    return text.empty() ? "-" : OneLine(text);
  }
  if (IsScalarArray(value)) {
    std::vector<std::string> parts;
    for (const Json& item : value) {
      parts.push_back(FormatCell(item));
    }
    return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, ","));
  }
  return OneLine(value.dump());
}

std::string FormatNewest(const Json& values, size_t shown) {
  if (!values.is_array()) {
    return FormatCell(values);
  }
  if (values.empty()) {
    return "-";
  }
  const size_t count = std::min(shown, values.size());
  std::vector<std::string> parts;
  for (size_t i = 0; i < count; ++i) {
    parts.push_back(FormatCell(values[values.size() - 1 - i]));
  }
  std::string cell = fmt::format("{}", fmt::join(parts, ","));
  if (count < values.size()) {
    cell += fmt::format(" +{} more", values.size() - count);
  }
  return cell;
}

std::string RenderTable(const Json& items, const std::vector<Column>& columns) {
  if (!items.is_array() || items.empty()) {
    return "(none)\n";
  }

  // Cells first, so each column can be as wide as its widest cell.
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> widths;
  std::vector<std::string> header;
  for (const Column& column : columns) {
    header.push_back(column.header);
    widths.push_back(column.header.size());
  }
  for (const Json& item : items) {
    std::vector<std::string> row;
    for (size_t i = 0; i < columns.size(); ++i) {
      const Json* value = FindField(item, columns[i].field);
      row.push_back(value == nullptr ? "-" : FormatCell(*value));
      widths[i] = std::max(widths[i], row.back().size());
    }
    rows.push_back(std::move(row));
  }

  auto render_row = [&widths](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      // The last column is not padded, so lines carry no trailing spaces.
      line += i + 1 == cells.size() ? cells[i] : fmt::format("{:<{}}  ", cells[i], widths[i]);
    }
    return line + "\n";
  };
  std::string out = render_row(header);
  for (const auto& row : rows) {
    out += render_row(row);
  }
  return out;
}

std::string RenderObject(const Json& object) {
  if (!object.is_object()) {
    return FormatCell(object) + "\n";
  }
  return RenderObjectAt(object, 0);
}

std::string RenderYaml(const Json& value) {
  YAML::Emitter emitter;
  EmitYaml(emitter, value);
  return std::string(emitter.c_str()) + "\n";
}

std::string RenderList(const Json& items, const std::vector<Column>& columns, OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return items.dump(2) + "\n";
    case OutputFormat::kYaml:
      return RenderYaml(items);
    case OutputFormat::kTable:
      break;
  }
  return RenderTable(items, columns);
}

std::string RenderSingle(const Json& object, OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return object.dump(2) + "\n";
    case OutputFormat::kYaml:
      return RenderYaml(object);
    case OutputFormat::kTable:
      break;
  }
  return RenderObject(object);
}

}  // namespace backout::cli
