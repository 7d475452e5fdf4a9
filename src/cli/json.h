#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace backout::cli {

// JSON as the CLI handles it: objects keep the key order the server sent, so `id` stays first in
// tables and YAML.
using Json = nlohmann::ordered_json;

// Returns object[key] when `object` is an object and that member is a string, else "". Unlike
// Json::value it never throws, so an answer of an unexpected shape cannot end the process.
inline std::string StringField(const Json& object, const char* key) {
  if (!object.is_object()) {
    return "";
  }
  auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

// Returns an id member as text: a string as it is, an integer in decimal (job ids may be either),
// else "".
inline std::string IdField(const Json& object, const char* key) {
  if (object.is_object()) {
    auto found = object.find(key);
    if (found != object.end() && found->is_number_integer()) {
      return found->dump();
    }
  }
  return StringField(object, key);
}

}  // namespace backout::cli
