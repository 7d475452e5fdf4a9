#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::server {

enum class JsonType { kString, kInteger, kNumber, kBoolean, kObject, kArray };

struct Field;

// The shape of a JSON value: a small subset of JSON Schema that request validation and the
// OpenAPI document both read, so what the server accepts and what it documents cannot drift.
// Objects are closed: a member not listed in `fields` is rejected.
struct Schema {
  JsonType type = JsonType::kObject;
  std::string description;
  std::string format;                    // "date-time", "date", "byte" (base64)
  std::vector<std::string> enum_values;  // strings only
  std::vector<Field> fields;             // objects
  std::shared_ptr<const Schema> items;   // arrays
  bool open = false;                     // objects whose members are free-form (responses only)
  std::optional<int64_t> minimum;        // integers, inclusive
  std::optional<int64_t> maximum;        // integers, inclusive
};

struct Field {
  std::string name;
  Schema schema;
  bool required = false;
};

Schema StringSchema(std::string description, std::string format = "");
Schema EnumSchema(std::string description, std::vector<std::string> values);
Schema IntegerSchema(std::string description);
// An integer from `minimum` to `maximum`, both included.
Schema IntegerSchema(std::string description, int64_t minimum, int64_t maximum);
Schema BooleanSchema(std::string description);
Schema ArraySchema(std::string description, Schema items);
Schema ObjectSchema(std::string description, std::vector<Field> fields);
// An object whose members are not described member by member.
Schema OpenObjectSchema(std::string description);

Field Required(std::string name, Schema schema);
Field Optional(std::string name, Schema schema);

// Checks `value` against `schema`. The error (kInvalidArgument) names the path of the first
// offending member, such as `migrations[1].reversible`, with what was expected and found.
core::Result<void> Validate(const nlohmann::json& value, const Schema& schema);

// The schema as a JSON Schema object for the OpenAPI document.
nlohmann::json ToJsonSchema(const Schema& schema);

std::string_view JsonTypeName(JsonType type);

}  // namespace backout::server
