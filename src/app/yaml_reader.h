#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/time.h"

namespace backout::app {

// A YAML node with the field path (such as `services[0].provider.run`) and the 1-based line that
// error messages name.
struct YamlValue {
  YAML::Node node;
  std::string path;
  int line = 0;
};

// The entries of one YAML mapping, in file order, after YamlReader::Mapping checked the keys.
class YamlFields {
 public:
  // Returns the value stored under `key`, or nullptr when the mapping does not contain it.
  const YamlValue* Find(std::string_view key) const;

  const std::string& path() const { return path_; }
  int line() const { return line_; }
  const std::vector<std::pair<std::string, YamlValue>>& entries() const { return entries_; }

 private:
  friend class YamlReader;

  std::string path_;
  int line_ = 0;
  std::vector<std::pair<std::string, YamlValue>> entries_;
};

// Joins a field path and a mapping key: JoinPath("services[0]", "name") is "services[0].name".
std::string JoinPath(std::string_view path, std::string_view key);

// Reads typed values out of a parsed YAML document and keeps the first error, formatted as
// `FILE:LINE: PATH: MESSAGE`. Once an error is recorded every read returns std::nullopt (or
// nullptr) and later errors are dropped, so a parser runs its steps in order and checks ok()
// where it needs the values it read. Not thread-safe.
class YamlReader {
 public:
  explicit YamlReader(std::string file_name) : file_name_(std::move(file_name)) {}

  bool ok() const { return !error_.has_value(); }
  // The first error. Only valid when ok() is false.
  const core::Error& error() const { return *error_; }

  // Records an error at `line` (1-based) unless an earlier one was recorded. An empty `path`
  // leaves the field out of the message.
  void Fail(int line, std::string_view path, std::string_view message);
  void Fail(const YamlValue& value, std::string_view message) {
    Fail(value.line, value.path, message);
  }

  // Records a problem that does not stop the load, formatted as errors are.
  void Warn(const YamlValue& value, std::string_view message);
  // The warnings recorded so far, in the order recorded.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Wraps a document's root node, whose path is empty.
  static YamlValue Root(const YAML::Node& node);

  // Checks that `value` is a mapping with string keys, each listed in `known_keys` and given
  // once. An unknown key fails with the list of known keys.
  std::optional<YamlFields> Mapping(const YamlValue& value,
                                    std::span<const std::string_view> known_keys);
  // Checks that `value` is a mapping with string keys, each given once, whatever the keys are.
  std::optional<YamlFields> Mapping(const YamlValue& value);

  // Returns the value of `key`, or fails with "missing required field" at the mapping's line.
  const YamlValue* Required(const YamlFields& fields, std::string_view key);

  // Checks that `value` is a list and returns its items, whose paths end in [0], [1], ….
  std::optional<std::vector<YamlValue>> List(const YamlValue& value);

  // Any scalar, as written. An empty value (`key:` or `~`) is not a string.
  std::optional<std::string> String(const YamlValue& value);
  // Checks one item of a list and returns what is wrong with it, or std::nullopt when it is fine.
  using ItemCheck = std::function<std::optional<std::string>(const std::string& item)>;
  // A list of scalars, each given once and each accepted by `check` when one is given.
  std::optional<std::vector<std::string>> StringList(const YamlValue& value,
                                                     const ItemCheck& check = {});
  // `true` or `false`, nothing else.
  std::optional<bool> Bool(const YamlValue& value);
  // A whole decimal number.
  std::optional<int64_t> Integer(const YamlValue& value);
  // A duration such as 300s (see core::ParseDuration) that is longer than zero.
  std::optional<core::Duration> Duration(const YamlValue& value);

 private:
  bool ExpectType(const YamlValue& value, YAML::NodeType::value type, std::string_view expected);
  std::optional<YamlFields> ReadMapping(
      const YamlValue& value, std::optional<std::span<const std::string_view>> known_keys);

  std::string file_name_;
  std::optional<core::Error> error_;
  std::vector<std::string> warnings_;
};

}  // namespace backout::app
