#include "app/config_kinds.h"

#include <functional>
#include <initializer_list>
#include <span>
#include <vector>

#include <fmt/format.h>

namespace backout::app::config_internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kCommandProviderKeys[] = {"kind",    "run",     "status",
                                                     "history", "timeout", "env"};
constexpr std::string_view kCommandCheckKeys[] = {"name", "kind", "run", "timeout", "env"};

// Reads the settings of one provider or check kind from its block, whose keys are checked.
using SettingsParser = std::function<std::optional<json>(ParseContext&, const YamlFields&)>;

// One provider or check kind: its name, the keys its block accepts and how to read them.
struct KindSchema {
  std::string_view name;
  std::span<const std::string_view> keys;
  SettingsParser parse;
};

// Reads a command: a list whose first item is the executable's absolute path and whose other
// items are its arguments.
std::optional<json> ReadCommand(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto items = reader.List(value);
  if (!items) return std::nullopt;
  if (items->empty()) {
    reader.Fail(value,
                "the command is empty: give the executable's absolute path, then its arguments");
    return std::nullopt;
  }

  json command = json::array();
  for (const YamlValue& item : *items) {
    auto text = reader.String(item);
    if (!text) return std::nullopt;
    if (command.empty() && !fs::path(*text).is_absolute()) {
      reader.Fail(item, fmt::format("'{}' is not an absolute path: give the executable's full "
                                    "path, such as /opt/runbooks/rollback",
                                    *text));
      return std::nullopt;
    }
    command.push_back(*text);
  }
  return command;
}

// Reads an `env` block: variable names mapped to secret references, stored in their written form.
std::optional<json> ReadEnvironment(ParseContext& context, const YamlValue& value) {
  auto fields = context.reader.Mapping(value);
  if (!fields) return std::nullopt;

  json environment = json::object();
  for (const auto& [name, entry] : fields->entries()) {
    if (!SecretRef::IsVariableName(name)) {
      context.reader.Fail(entry,
                          "invalid environment variable name: use letters, digits and '_', "
                          "not starting with a digit");
      return std::nullopt;
    }
    auto reference = ReadSecret(context, entry);
    if (!reference) return std::nullopt;
    environment[name] = reference->ToString();
  }
  return environment;
}

std::optional<json> ReadTimeout(ParseContext& context, const YamlValue& value) {
  if (!context.reader.Duration(value)) return std::nullopt;
  return json(value.node.Scalar());
}

// Reads the optional keys that command providers and command checks share into `settings`.
bool ReadOptionalCommandKeys(ParseContext& context, const YamlFields& fields,
                             std::initializer_list<std::string_view> command_keys, json& settings) {
  for (std::string_view key : command_keys) {
    if (const YamlValue* value = fields.Find(key)) {
      auto command = ReadCommand(context, *value);
      if (!command) return false;
      settings[std::string(key)] = *command;
    }
  }
  if (const YamlValue* value = fields.Find("timeout")) {
    auto timeout = ReadTimeout(context, *value);
    if (!timeout) return false;
    settings["timeout"] = *timeout;
  }
  if (const YamlValue* value = fields.Find("env")) {
    auto environment = ReadEnvironment(context, *value);
    if (!environment) return false;
    settings["env"] = *environment;
  }
  return true;
}

std::optional<json> ParseCommandProvider(ParseContext& context, const YamlFields& fields) {
  json settings = json::object();
  const YamlValue* run = context.reader.Required(fields, "run");
  if (run == nullptr) return std::nullopt;
  auto command = ReadCommand(context, *run);
  if (!command) return std::nullopt;
  settings["run"] = *command;

  if (!ReadOptionalCommandKeys(context, fields, {"status", "history"}, settings)) {
    return std::nullopt;
  }
  return settings;
}

std::optional<json> ParseCommandCheck(ParseContext& context, const YamlFields& fields) {
  json settings = json::object();
  const YamlValue* run = context.reader.Required(fields, "run");
  if (run == nullptr) return std::nullopt;
  auto command = ReadCommand(context, *run);
  if (!command) return std::nullopt;
  settings["run"] = *command;

  if (!ReadOptionalCommandKeys(context, fields, {}, settings)) return std::nullopt;
  return settings;
}

const KindSchema kProviderKinds[] = {
    {"command", kCommandProviderKeys, ParseCommandProvider},
};

const KindSchema kCheckKinds[] = {
    {"command", kCommandCheckKeys, ParseCommandCheck},
};

// A block whose `kind` chose its schema, with the block's keys checked against that schema.
struct KindBlock {
  const KindSchema* schema = nullptr;
  YamlFields fields;
};

// Reads `kind` first, because the kind decides which other keys the block accepts. `what` names
// the block in messages: "provider" or "check".
std::optional<KindBlock> ReadKindBlock(ParseContext& context, const YamlValue& value,
                                       std::span<const KindSchema> kinds, std::string_view what) {
  YamlReader& reader = context.reader;
  auto any_fields = reader.Mapping(value);
  if (!any_fields) return std::nullopt;
  const YamlValue* kind_value = reader.Required(*any_fields, "kind");
  if (kind_value == nullptr) return std::nullopt;
  auto kind = reader.String(*kind_value);
  if (!kind) return std::nullopt;

  const KindSchema* schema = nullptr;
  for (const KindSchema& candidate : kinds) {
    if (candidate.name == *kind) schema = &candidate;
  }
  if (schema == nullptr) {
    std::vector<std::string_view> names;
    for (const KindSchema& candidate : kinds) names.push_back(candidate.name);
    reader.Fail(*kind_value, fmt::format("unknown {} kind '{}', expected one of: {}", what, *kind,
                                         fmt::join(names, ", ")));
    return std::nullopt;
  }

  auto fields = reader.Mapping(value, schema->keys);
  if (!fields) return std::nullopt;
  return KindBlock{schema, *fields};
}

}  // namespace

std::optional<ProviderConfig> ParseProvider(ParseContext& context, const YamlValue& value) {
  auto block = ReadKindBlock(context, value, kProviderKinds, "provider");
  if (!block) return std::nullopt;
  auto settings = block->schema->parse(context, block->fields);
  if (!settings) return std::nullopt;
  return ProviderConfig{std::string(block->schema->name), std::move(*settings)};
}

std::optional<CheckConfig> ParseCheck(ParseContext& context, const YamlValue& value) {
  auto block = ReadKindBlock(context, value, kCheckKinds, "check");
  if (!block) return std::nullopt;

  YamlReader& reader = context.reader;
  const YamlValue* name_value = reader.Required(block->fields, "name");
  if (name_value == nullptr) return std::nullopt;
  auto name = reader.String(*name_value);
  if (!name) return std::nullopt;
  if (auto problem = CheckName(*name)) {
    reader.Fail(*name_value, *problem);
    return std::nullopt;
  }

  auto settings = block->schema->parse(context, block->fields);
  if (!settings) return std::nullopt;
  return CheckConfig{*name, std::string(block->schema->name), std::move(*settings)};
}

}  // namespace backout::app::config_internal
