#include "server/schema.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <fmt/format.h>

#include "core/time.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string DescribeJsonValue(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

std::string WithArticle(JsonType type) {
  const bool vowel =
      type == JsonType::kInteger || type == JsonType::kObject || type == JsonType::kArray;
  return fmt::format("{} {}", vowel ? "an" : "a", JsonTypeName(type));
}

bool HasType(const json& value, JsonType type) {
  switch (type) {
    case JsonType::kString:
      return value.is_string();
    case JsonType::kInteger:
      return value.is_number_integer();
    case JsonType::kNumber:
      return value.is_number();
    case JsonType::kBoolean:
      return value.is_boolean();
    case JsonType::kObject:
      return value.is_object();
    case JsonType::kArray:
      return value.is_array();
  }
  return false;
}

bool IsDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  const int month = (text[5] - '0') * 10 + (text[6] - '0');
  const int day = (text[8] - '0') * 10 + (text[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

bool IsBase64(std::string_view text) {
  if (text.size() % 4 != 0) return false;
  const size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  return std::all_of(text.begin(), text.end() - padding, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

core::Result<void> CheckFormat(const std::string& text, const Schema& schema,
                               const std::string& path) {
  if (schema.format == "date-time" && !core::ParseTime(text)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "field `{}` must be an RFC 3339 time such as 2026-05-01T12:00:00Z, "
                           "got \"{}\"",
                           path, text);
  }
  if (schema.format == "date" && !IsDate(text)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "field `{}` must be a date written YYYY-MM-DD, got \"{}\"", path, text);
  }
  if (schema.format == "byte" && !IsBase64(text)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "field `{}` must be standard base64 with padding", path);
  }
  if (!schema.enum_values.empty() && std::find(schema.enum_values.begin(), schema.enum_values.end(),
                                               text) == schema.enum_values.end()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "field `{}` must be one of {}, got \"{}\"", path,
                           fmt::join(schema.enum_values, ", "), text);
  }
  return {};
}

bool BelowMinimum(const json& value, int64_t minimum) {
  if (value.is_number_unsigned()) {
    return minimum > 0 && value.get<uint64_t>() < static_cast<uint64_t>(minimum);
  }
  return value.get<int64_t>() < minimum;
}

bool AboveMaximum(const json& value, int64_t maximum) {
  if (value.is_number_unsigned()) {
    return maximum < 0 || value.get<uint64_t>() > static_cast<uint64_t>(maximum);
  }
  return value.get<int64_t>() > maximum;
}

// Checks an integer against the schema's minimum and maximum.
core::Result<void> CheckRange(const json& value, const Schema& schema, const std::string& path) {
  const bool below = schema.minimum && BelowMinimum(value, *schema.minimum);
  const bool above = schema.maximum && AboveMaximum(value, *schema.maximum);
  if (!below && !above) return {};
  std::string range;
  if (schema.minimum && schema.maximum) {
    range = fmt::format("from {} to {}", *schema.minimum, *schema.maximum);
  } else if (schema.minimum) {
    range = fmt::format("of at least {}", *schema.minimum);
  } else {
    range = fmt::format("of at most {}", *schema.maximum);
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "field `{}` must be an integer {}, got {}", path.empty() ? "(body)" : path,
                         range, value.dump());
}

core::Result<void> ValidateAt(const json& value, const Schema& schema, const std::string& path);

core::Result<void> ValidateObject(const json& value, const Schema& schema,
                                  const std::string& path) {
  const std::string prefix = path.empty() ? "" : path + ".";
  if (!schema.open) {
    for (const auto& [name, member] : value.items()) {
      const bool known = std::any_of(schema.fields.begin(), schema.fields.end(),
                                     [&](const Field& field) { return field.name == name; });
      if (!known) {
        std::vector<std::string> names;
        for (const Field& field : schema.fields) names.push_back(field.name);
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "unknown field `{}{}`; the fields allowed here are: {}", prefix,
                               name,
                               names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")));
      }
    }
  }
  for (const Field& field : schema.fields) {
    auto member = value.find(field.name);
    if (member == value.end() || member->is_null()) {
      if (field.required) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "missing required field `{}{}` ({})", prefix, field.name,
                               JsonTypeName(field.schema.type));
      }
      continue;
    }
    if (auto checked = ValidateAt(*member, field.schema, prefix + field.name); !checked) {
      return checked;
    }
  }
  return {};
}

core::Result<void> ValidateAt(const json& value, const Schema& schema, const std::string& path) {
  if (!HasType(value, schema.type)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field `{}` must be {}, got {}",
                           path.empty() ? "(body)" : path, WithArticle(schema.type),
                           DescribeJsonValue(value));
  }
  switch (schema.type) {
    case JsonType::kString:
      return CheckFormat(value.get<std::string>(), schema, path);
    case JsonType::kInteger:
      return CheckRange(value, schema, path);
    case JsonType::kObject:
      return ValidateObject(value, schema, path);
    case JsonType::kArray:
      if (schema.items) {
        for (size_t i = 0; i < value.size(); ++i) {
          auto checked = ValidateAt(value[i], *schema.items, fmt::format("{}[{}]", path, i));
          if (!checked) return checked;
        }
      }
      return {};
    default:
      return {};
  }
}

}  // namespace

std::string_view JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kString:
      return "string";
    case JsonType::kInteger:
      return "integer";
    case JsonType::kNumber:
      return "number";
    case JsonType::kBoolean:
      return "boolean";
    case JsonType::kObject:
      return "object";
    case JsonType::kArray:
      return "array";
  }
  return "object";
}

Schema StringSchema(std::string description, std::string format) {
  return Schema{.type = JsonType::kString,
                .description = std::move(description),
                .format = std::move(format)};
}

Schema EnumSchema(std::string description, std::vector<std::string> values) {
  return Schema{.type = JsonType::kString,
                .description = std::move(description),
                .enum_values = std::move(values)};
}

Schema IntegerSchema(std::string description) {
  return Schema{.type = JsonType::kInteger, .description = std::move(description)};
}

Schema IntegerSchema(std::string description, int64_t minimum, int64_t maximum) {
  return Schema{.type = JsonType::kInteger,
                .description = std::move(description),
                .minimum = minimum,
                .maximum = maximum};
}

Schema BooleanSchema(std::string description) {
  return Schema{.type = JsonType::kBoolean, .description = std::move(description)};
}

Schema ArraySchema(std::string description, Schema items) {
  return Schema{.type = JsonType::kArray,
                .description = std::move(description),
                .items = std::make_shared<const Schema>(std::move(items))};
}

Schema ObjectSchema(std::string description, std::vector<Field> fields) {
  return Schema{.type = JsonType::kObject,
                .description = std::move(description),
                .fields = std::move(fields)};
}

Schema OpenObjectSchema(std::string description) {
  return Schema{.type = JsonType::kObject, .description = std::move(description), .open = true};
}

Field Required(std::string name, Schema schema) {
  return Field{.name = std::move(name), .schema = std::move(schema), .required = true};
}

Field Optional(std::string name, Schema schema) {
  return Field{.name = std::move(name), .schema = std::move(schema), .required = false};
}

core::Result<void> Validate(const nlohmann::json& value, const Schema& schema) {
  return ValidateAt(value, schema, "");
}

nlohmann::json ToJsonSchema(const Schema& schema) {
  json out = {{"type", JsonTypeName(schema.type)}};
  if (!schema.description.empty()) out["description"] = schema.description;
  if (!schema.format.empty()) out["format"] = schema.format;
  if (!schema.enum_values.empty()) out["enum"] = schema.enum_values;
  if (schema.minimum) out["minimum"] = *schema.minimum;
  if (schema.maximum) out["maximum"] = *schema.maximum;
  if (schema.type == JsonType::kArray && schema.items) out["items"] = ToJsonSchema(*schema.items);
  if (schema.type == JsonType::kObject) {
    if (schema.open) return out;
    json properties = json::object();
    json required = json::array();
    for (const Field& field : schema.fields) {
      properties[field.name] = ToJsonSchema(field.schema);
      if (field.required) required.push_back(field.name);
    }
    out["properties"] = std::move(properties);
    if (!required.empty()) out["required"] = std::move(required);
    out["additionalProperties"] = false;
  }
  return out;
}

}  // namespace backout::server
