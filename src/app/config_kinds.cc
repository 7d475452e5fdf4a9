#include "app/config_kinds.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checks/check.h"

namespace backout::app::config_internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The YAML form of a kind-specific key and the JSON form it is stored in.
enum class FieldType {
  kCommand,      // list: absolute executable path, then arguments -> array of strings
  kDuration,     // duration longer than zero, such as 300s -> the string as written
  kWatchTime,    // duration of zero or more, such as 0s or 2m -> the string as written
  kFolder,       // absolute folder path -> string
  kEnvironment,  // mapping of variable name to secret reference -> object of reference strings
  kText,         // non-empty scalar -> string
  kFileName,     // a file name without '/' -> string
  kHttpUrl,      // http:// or https:// URL -> string
  kRepository,   // git URL or absolute path, without a password -> string
  kRepoPath,     // normal path relative to a repository's top folder -> string
  kRepoPaths,    // list of kRepoPath -> array of strings
  kRegexGroup,   // regular expression with exactly one group -> string
  kJsonPointer,  // JSON pointer such as /status/sync/revision -> string
  kAttempts,     // whole number from 1 to 10 -> integer
  kCredentials,  // mapping of credential role to secret reference -> object of reference strings
  kPath,         // file path, made absolute against the config file's folder -> string
  kCount,        // whole number from 1 to 1000 -> integer
  kBoolean,      // true or false -> boolean
  kChoice,       // one of FieldSpec::choices -> string
  // Validation checks (http, prometheus, manual):
  kNumber,      // a number such as 0.05 or 10 -> the string as written (the ledger takes no
                // floating-point values)
  kSecret,      // one secret reference -> its written form
  kStringList,  // list of non-empty strings -> array of strings
  kTree,        // any YAML below the key -> JSON with every scalar as a string; the checks
                // module validates its shape (CheckModuleSettings)
};

struct FieldSpec {
  std::string_view key;
  FieldType type;
  bool required = false;
  std::span<const std::string_view> choices{};  // for kChoice and kCredentials
};

// The keys of a `command` provider, which runs an approved runbook. The providers module reads
// the same keys from ProviderConfig::settings and gives their defaults.
constexpr FieldSpec kCommandProviderFields[] = {
    {"run", FieldType::kCommand, true},   {"status", FieldType::kCommand},
    {"history", FieldType::kCommand},     {"readiness", FieldType::kCommand},
    {"timeout", FieldType::kDuration},    {"check_timeout", FieldType::kDuration},
    {"kill_grace", FieldType::kDuration}, {"working_dir", FieldType::kFolder},
    {"output_dir", FieldType::kFolder},   {"env", FieldType::kEnvironment},
};

// The roles a git provider's `credentials` may name; the provider receives each resolved value
// under its role.
constexpr std::string_view kCredentialRoles[] = {"username", "password", "ssh_key",
                                                 "ssh_passphrase"};

// The keys of a `releases` provider, which switches a `current` link between release folders.
constexpr FieldSpec kReleasesProviderFields[] = {
    {"root", FieldType::kFolder, true},       {"marker", FieldType::kFileName},
    {"restart", FieldType::kCommand},         {"restart_timeout", FieldType::kDuration},
    {"health", FieldType::kCommand},          {"health_url", FieldType::kHttpUrl},
    {"health_timeout", FieldType::kDuration},
};

// The keys of a `git` provider, which reverts commits in a GitOps repository.
constexpr FieldSpec kGitProviderFields[] = {
    {"repository", FieldType::kRepository, true},
    {"branch", FieldType::kText},
    {"path", FieldType::kRepoPath, true},
    {"version_pattern", FieldType::kRegexGroup},
    {"version_key", FieldType::kText},
    {"work_dir", FieldType::kFolder, true},
    {"author_name", FieldType::kText},
    {"author_email", FieldType::kText},
    {"suspend_automation", FieldType::kRepoPaths},
    {"push_attempts", FieldType::kAttempts},
    {"verify_for", FieldType::kWatchTime},
    {"verify_interval", FieldType::kDuration},
    {"credentials", FieldType::kCredentials, false, kCredentialRoles},
    {"ca_file", FieldType::kPath},
    {"known_hosts", FieldType::kPath},
    {"health", FieldType::kCommand},
    {"health_url", FieldType::kHttpUrl},
    {"health_timeout", FieldType::kDuration},
    {"controller_url", FieldType::kHttpUrl},
    {"controller_revision_pointer", FieldType::kJsonPointer},
};

// The keys of a `kubernetes` provider, which rolls a Deployment back as `kubectl rollout undo`
// does. The providers module reads the same keys and gives their defaults.
constexpr FieldSpec kKubernetesProviderFields[] = {
    {"kubeconfig", FieldType::kPath, true},
    {"context", FieldType::kText},
    {"namespace", FieldType::kText},
    {"deployment", FieldType::kText, true},
    {"impersonate", FieldType::kText},
    {"readiness_timeout", FieldType::kDuration},
    {"soak", FieldType::kWatchTime},
    {"poll_interval", FieldType::kDuration},
    {"request_timeout", FieldType::kDuration},
    {"restart_limit", FieldType::kCount},
    {"gitops", FieldType::kText},
    {"gitops_grace", FieldType::kWatchTime},
};

constexpr std::string_view kFileExistsBehaviors[] = {"DISALLOW", "OVERWRITE", "RETAIN"};
constexpr std::string_view kAwsCredentialKeys[] = {"access_key_id", "secret_access_key",
                                                   "session_token"};

// The keys of a `codedeploy` provider, which rolls back through AWS CodeDeploy. The providers
// module reads the same keys and gives their defaults; `credentials` holds secret references.
constexpr FieldSpec kCodeDeployProviderFields[] = {
    {"application", FieldType::kText, true},
    {"deployment_group", FieldType::kText, true},
    {"region", FieldType::kText, true},
    {"endpoint", FieldType::kHttpUrl},
    {"credentials", FieldType::kCredentials, false, kAwsCredentialKeys},
    {"profile", FieldType::kText},
    {"credentials_file", FieldType::kPath},
    {"file_exists_behavior", FieldType::kChoice, false, kFileExistsBehaviors},
    {"ignore_application_stop_failures", FieldType::kBoolean},
    {"deployment_config_name", FieldType::kText},
    {"timeout", FieldType::kDuration},
    {"poll_interval", FieldType::kDuration},
    {"max_poll_interval", FieldType::kDuration},
    {"request_timeout", FieldType::kDuration},
};

// The keys of a `launchdarkly` provider, which turns a LaunchDarkly flag off (or lowers its
// rollout to 0 %) in one environment. `credentials.api_token` is a secret reference.
constexpr std::string_view kLaunchDarklyCredentialKeys[] = {"api_token"};
constexpr std::string_view kLaunchDarklyActions[] = {"turn_off", "rollout_to_zero"};
constexpr std::string_view kLaunchDarklyPatchFormats[] = {"semantic", "json_patch"};
constexpr FieldSpec kLaunchDarklyProviderFields[] = {
    {"project", FieldType::kText, true},
    {"environment", FieldType::kText, true},
    {"flag", FieldType::kText, true},
    {"credentials", FieldType::kCredentials, true, kLaunchDarklyCredentialKeys},
    {"base_url", FieldType::kHttpUrl},
    {"action", FieldType::kChoice, false, kLaunchDarklyActions},
    {"new_variation", FieldType::kText},
    {"safe_variation", FieldType::kText},
    {"sdk_fallback", FieldType::kText},
    {"patch_format", FieldType::kChoice, false, kLaunchDarklyPatchFormats},
    {"ignore_conflicts", FieldType::kBoolean},
    {"api_version", FieldType::kText},
    {"propagation_grace", FieldType::kWatchTime},
    {"request_timeout", FieldType::kDuration},
    {"timeout", FieldType::kDuration},
    {"max_retry_wait", FieldType::kDuration},
};

// The roles an `unleash` provider's `credentials` may name.
constexpr std::string_view kUnleashCredentialKeys[] = {"api_token", "sdk_token"};
constexpr std::string_view kUnleashRollbackStates[] = {"off", "on", "rollout-0"};

// The keys of an `unleash` provider, which turns a feature flag off through Unleash's Admin
// API. The providers module reads the same keys and gives their defaults.
constexpr FieldSpec kUnleashProviderFields[] = {
    {"url", FieldType::kHttpUrl, true},
    {"project", FieldType::kText},
    {"flag", FieldType::kText, true},
    {"environment", FieldType::kText, true},
    {"credentials", FieldType::kCredentials, true, kUnleashCredentialKeys},
    {"rollback", FieldType::kChoice, false, kUnleashRollbackStates},
    {"audit_tag", FieldType::kBoolean},
    {"audit_tag_type", FieldType::kText},
    {"sdk_evaluation", FieldType::kCommand},
    {"sdk_user_id", FieldType::kText},
    {"sdk_timeout", FieldType::kDuration},
    {"request_timeout", FieldType::kDuration},
};

constexpr FieldSpec kCommandCheckFields[] = {
    {"run", FieldType::kCommand, true},
    {"timeout", FieldType::kDuration},
    {"env", FieldType::kEnvironment},
};

// The keys of the check kinds the checks module implements. That module checks the settings
// again when it builds the check, with the same rules (CheckModuleSettings below).
constexpr FieldSpec kHttpCheckFields[] = {
    {"steps", FieldType::kTree, true},
    {"timeout", FieldType::kDuration},
    {"within", FieldType::kWatchTime},
    {"interval", FieldType::kDuration},
};
constexpr FieldSpec kPrometheusCheckFields[] = {
    {"url", FieldType::kHttpUrl, true},
    {"query", FieldType::kText, true},
    {"below", FieldType::kNumber},
    {"above", FieldType::kNumber},
    {"for", FieldType::kWatchTime},
    {"within", FieldType::kDuration},
    {"step", FieldType::kDuration},
    {"interval", FieldType::kDuration},
    {"evidence_before", FieldType::kWatchTime},
    {"timeout", FieldType::kDuration},
    {"bearer_token", FieldType::kSecret},
};
constexpr FieldSpec kManualCheckFields[] = {
    {"instructions", FieldType::kText},
    {"confirmers", FieldType::kStringList},
    {"wait", FieldType::kWatchTime},
    {"interval", FieldType::kDuration},
};

// Checks what no single key can: rules between the keys of a kind's block. Returns the key and
// the message of the first problem, or std::nullopt.
struct CrossCheck {
  std::string_view key;
  std::string message;
};
using CrossCheckFunction = std::optional<CrossCheck> (*)(const nlohmann::json& settings);

std::optional<CrossCheck> CheckGitSettings(const nlohmann::json& settings) {
  if (settings.contains("version_pattern") == settings.contains("version_key")) {
    return CrossCheck{"version_pattern",
                      "give exactly one of version_pattern (a regular expression with one group) "
                      "and version_key (a dotted YAML key such as image.tag)"};
  }
  if (settings.contains("controller_revision_pointer") && !settings.contains("controller_url")) {
    return CrossCheck{"controller_revision_pointer", "needs controller_url"};
  }
  if (settings.contains("credentials") && settings["credentials"].contains("password") &&
      !settings["credentials"].contains("username")) {
    return CrossCheck{"credentials", "a password needs a username"};
  }
  return std::nullopt;
}

std::optional<CrossCheck> CheckKubernetesSettings(const nlohmann::json& settings) {
  if (settings.contains("gitops") && settings["gitops"] != "refuse" &&
      settings["gitops"] != "allow") {
    return CrossCheck{"gitops", fmt::format("'{}' is not one of: refuse, allow",
                                            settings["gitops"].get<std::string>())};
  }
  for (const char* key : {"deployment", "namespace", "context", "impersonate"}) {
    if (settings.contains(key) && settings[key].get<std::string>().empty()) {
      return CrossCheck{key, "the value is empty"};
    }
  }
  return std::nullopt;
}

std::optional<CrossCheck> CheckLaunchDarklySettings(const nlohmann::json& settings) {
  if (!settings.contains("credentials") || !settings["credentials"].contains("api_token")) {
    return CrossCheck{"credentials",
                      "api_token is required: a secret reference such as env:LD_API_TOKEN"};
  }
  if (settings.value("action", "turn_off") == "rollout_to_zero" &&
      !settings.contains("new_variation")) {
    return CrossCheck{"new_variation",
                      "rollout_to_zero needs the variation whose share goes to 0 %"};
  }
  return std::nullopt;
}

// Runs the checks module's own validation of a check kind's settings. Its messages start with
// the key path (`steps[0].url: …`), whose first key names the line to report.
std::optional<CrossCheck> CheckModuleSettings(std::string_view kind,
                                              const nlohmann::json& settings) {
  auto valid = checks::ValidateSettings(kind, settings);
  if (valid) return std::nullopt;
  const std::string& message = valid.error().message;
  const size_t key_end = message.find_first_of(".[:");
  std::string key = key_end == std::string::npos ? "" : message.substr(0, key_end);
  if (!settings.contains(key)) key.clear();
  return CrossCheck{key, message};
}

std::optional<CrossCheck> CheckHttpCheckSettings(const nlohmann::json& settings) {
  return CheckModuleSettings("http", settings);
}
std::optional<CrossCheck> CheckPrometheusCheckSettings(const nlohmann::json& settings) {
  return CheckModuleSettings("prometheus", settings);
}
std::optional<CrossCheck> CheckManualCheckSettings(const nlohmann::json& settings) {
  return CheckModuleSettings("manual", settings);
}

// One provider or check kind: its name and the keys its block accepts besides `kind` (and, for
// checks, `name`).
struct KindSchema {
  std::string_view name;
  std::span<const FieldSpec> fields;
  CrossCheckFunction cross_check = nullptr;
  // Provider keys of which the binding needs at least one, because the provider's
  // CheckReadiness fails without them. Empty when readiness needs no key.
  std::span<const std::string_view> readiness_keys{};
};

constexpr std::string_view kCommandReadinessKeys[] = {"readiness", "status"};
constexpr std::string_view kReleasesReadinessKeys[] = {"health", "health_url"};
constexpr std::string_view kGitReadinessKeys[] = {"health", "health_url", "controller_url"};

// A new provider or check kind adds a row here and its keys above.
const KindSchema kProviderKinds[] = {
    {"codedeploy", kCodeDeployProviderFields},
    {"command", kCommandProviderFields, nullptr, kCommandReadinessKeys},
    {"git", kGitProviderFields, &CheckGitSettings, kGitReadinessKeys},
    {"kubernetes", kKubernetesProviderFields, &CheckKubernetesSettings},
    {"launchdarkly", kLaunchDarklyProviderFields, &CheckLaunchDarklySettings},
    {"releases", kReleasesProviderFields, nullptr, kReleasesReadinessKeys},
    {"unleash", kUnleashProviderFields},
};
const KindSchema kCheckKinds[] = {
    {"command", kCommandCheckFields},
    {"http", kHttpCheckFields, &CheckHttpCheckSettings},
    {"manual", kManualCheckFields, &CheckManualCheckSettings},
    {"prometheus", kPrometheusCheckFields, &CheckPrometheusCheckSettings},
};

// The command provider passes its inputs to commands in variables with this prefix (such as
// BACKOUT_TARGET_VERSION), so the config may not set them.
constexpr std::string_view kReservedVariablePrefix = "BACKOUT_";

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

std::optional<json> ReadDuration(ParseContext& context, const YamlValue& value) {
  if (!context.reader.Duration(value)) return std::nullopt;
  return json(value.node.Scalar());
}

std::optional<json> ReadFolder(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (!fs::path(*text).is_absolute()) {
    context.reader.Fail(value, fmt::format("'{}' is not an absolute path: give the folder's full "
                                           "path, such as /var/lib/backout/work",
                                           *text));
    return std::nullopt;
  }
  return json(*text);
}

// Reads an `env` block: variable names mapped to secret references, stored in their written form.
std::optional<json> ReadEnvironment(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value);
  if (!fields) return std::nullopt;

  json environment = json::object();
  for (const auto& [name, entry] : fields->entries()) {
    if (!SecretRef::IsVariableName(name)) {
      reader.Fail(entry,
                  "invalid environment variable name: use letters, digits and '_', not starting "
                  "with a digit");
      return std::nullopt;
    }
    if (name.starts_with(kReservedVariablePrefix)) {
      reader.Fail(entry, fmt::format("the prefix {} is reserved for the inputs Backout passes to "
                                     "commands: rename the variable",
                                     kReservedVariablePrefix));
      return std::nullopt;
    }
    auto reference = ReadSecret(context, entry);
    if (!reference) return std::nullopt;
    environment[name] = reference->ToString();
  }
  return environment;
}

std::optional<json> ReadWatchTime(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  auto duration = core::ParseDuration(*text);
  if (!duration || duration->count() < 0) {
    context.reader.Fail(value, fmt::format("'{}' is not a duration such as 0s or 2m", *text));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadChoice(ParseContext& context, const YamlValue& value,
                               std::span<const std::string_view> choices) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *text) == choices.end()) {
    context.reader.Fail(value,
                        fmt::format("'{}' is not one of: {}", *text, fmt::join(choices, ", ")));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadFileName(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (text->find('/') != std::string::npos || *text == "." || *text == "..") {
    context.reader.Fail(value, fmt::format("'{}' is not a file name: give a name without '/', "
                                           "such as .backout-release-complete",
                                           *text));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadHttpUrl(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (!text->starts_with("http://") && !text->starts_with("https://")) {
    context.reader.Fail(value, fmt::format("'{}' is not an http:// or https:// URL", *text));
    return std::nullopt;
  }
  return json(*text);
}

// A git remote: a URL (https, ssh, git, file), scp-like syntax (git@host:path) or an absolute
// path. A URL with a password is rejected without quoting it.
std::optional<json> ReadRepository(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  size_t scheme = text->find("://");
  if (scheme != std::string::npos) {
    size_t host_end = text->find('/', scheme + 3);
    std::string authority = text->substr(scheme + 3, host_end - (scheme + 3));
    size_t at = authority.rfind('@');
    if (at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos) {
      context.reader.Fail(value,
                          "the URL contains a password: remove it and give it in `credentials` "
                          "as a secret reference");
      return std::nullopt;
    }
    return json(*text);
  }
  if (!text->starts_with("/") && text->find(':') == std::string::npos) {
    context.reader.Fail(value, fmt::format("'{}' is neither a URL nor an absolute path", *text));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<std::string> CheckRepoPath(const std::string& text) {
  fs::path path(text);
  std::string normal = path.lexically_normal().string();
  if (path.is_absolute() || normal != text || normal == "." || normal == ".." ||
      normal.starts_with("../")) {
    return fmt::format(
        "'{}' is not a normal path inside the repository, such as "
        "apps/checkout/values.yaml",
        text);
  }
  return std::nullopt;
}

std::optional<json> ReadRepoPath(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (auto problem = CheckRepoPath(*text)) {
    context.reader.Fail(value, *problem);
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadRepoPaths(ParseContext& context, const YamlValue& value) {
  auto items = context.reader.StringList(value, CheckRepoPath);
  if (!items) return std::nullopt;
  return json(*items);
}

std::optional<json> ReadRegexGroup(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  try {
    std::regex regex(*text);
    if (regex.mark_count() != 1) {
      context.reader.Fail(value, fmt::format("the pattern has {} groups: give exactly one, around "
                                             "the version",
                                             regex.mark_count()));
      return std::nullopt;
    }
  } catch (const std::regex_error& error) {
    context.reader.Fail(value, fmt::format("invalid regular expression: {}", error.what()));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadJsonPointer(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  try {
    json::json_pointer pointer(*text);
    (void)pointer;
  } catch (const json::exception&) {
    context.reader.Fail(value, fmt::format("'{}' is not a JSON pointer such as "
                                           "/status/sync/revision",
                                           *text));
    return std::nullopt;
  }
  return json(*text);
}

std::optional<json> ReadAttempts(ParseContext& context, const YamlValue& value) {
  auto number = context.reader.Integer(value);
  if (!number) return std::nullopt;
  if (*number < 1 || *number > 10) {
    context.reader.Fail(value,
                        fmt::format("expected a whole number from 1 to 10, got {}", *number));
    return std::nullopt;
  }
  return json(*number);
}

// Reads a mapping of fixed names (`keys`) to secret references, stored in their written form.
std::optional<json> ReadCredentials(ParseContext& context, const YamlValue& value,
                                    std::span<const std::string_view> keys) {
  auto fields = context.reader.Mapping(value, keys);
  if (!fields) return std::nullopt;
  json credentials = json::object();
  for (const auto& [name, entry] : fields->entries()) {
    auto reference = ReadSecret(context, entry);
    if (!reference) return std::nullopt;
    credentials[name] = reference->ToString();
  }
  return credentials;
}

std::optional<json> ReadCount(ParseContext& context, const YamlValue& value) {
  auto number = context.reader.Integer(value);
  if (!number) return std::nullopt;
  if (*number < 1 || *number > 1000) {
    context.reader.Fail(value,
                        fmt::format("expected a whole number from 1 to 1000, got {}", *number));
    return std::nullopt;
  }
  return json(*number);
}

std::optional<json> ReadText(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  return json(*text);
}

// Reads one key of a kind's block as its spec describes.
std::optional<json> ReadNumber(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  size_t used = 0;
  double number = 0;
  try {
    number = std::stod(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text->size() || !std::isfinite(number)) {
    context.reader.Fail(value, fmt::format("'{}' is not a number such as 0.05 or 10", *text));
    return std::nullopt;
  }
  return json(*text);
}

// Copies a YAML subtree into JSON. Scalars stay strings, because YAML does not say whether `3`
// is text or a number; the checks module compares them as such.
json YamlTreeToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    json object = json::object();
    for (const auto& entry : node) object[entry.first.Scalar()] = YamlTreeToJson(entry.second);
    return object;
  }
  if (node.IsSequence()) {
    json array = json::array();
    for (const auto& item : node) array.push_back(YamlTreeToJson(item));
    return array;
  }
  if (node.IsScalar()) return json(node.Scalar());
  return json(nullptr);
}

std::optional<json> ReadField(ParseContext& context, const YamlValue& value,
                              const FieldSpec& spec) {
  switch (spec.type) {
    case FieldType::kCommand:
      return ReadCommand(context, value);
    case FieldType::kDuration:
      return ReadDuration(context, value);
    case FieldType::kWatchTime:
      return ReadWatchTime(context, value);
    case FieldType::kFolder:
      return ReadFolder(context, value);
    case FieldType::kEnvironment:
      return ReadEnvironment(context, value);
    case FieldType::kText:
      return ReadText(context, value);
    case FieldType::kFileName:
      return ReadFileName(context, value);
    case FieldType::kHttpUrl:
      return ReadHttpUrl(context, value);
    case FieldType::kRepository:
      return ReadRepository(context, value);
    case FieldType::kRepoPath:
      return ReadRepoPath(context, value);
    case FieldType::kRepoPaths:
      return ReadRepoPaths(context, value);
    case FieldType::kRegexGroup:
      return ReadRegexGroup(context, value);
    case FieldType::kJsonPointer:
      return ReadJsonPointer(context, value);
    case FieldType::kAttempts:
      return ReadAttempts(context, value);
    case FieldType::kCredentials:
      return ReadCredentials(context, value, spec.choices);
    case FieldType::kBoolean: {
      auto flag = context.reader.Bool(value);
      if (!flag) return std::nullopt;
      return json(*flag);
    }
    case FieldType::kChoice:
      return ReadChoice(context, value, spec.choices);
    case FieldType::kPath: {
      auto path = ReadPath(context, value);
      if (!path) return std::nullopt;
      return json(path->string());
    }
    case FieldType::kCount:
      return ReadCount(context, value);
    case FieldType::kNumber:
      return ReadNumber(context, value);
    case FieldType::kSecret: {
      auto reference = ReadSecret(context, value);
      if (!reference) return std::nullopt;
      return json(reference->ToString());
    }
    case FieldType::kStringList: {
      auto items = context.reader.StringList(value, [](const std::string& item) {
        return item.empty() ? std::optional<std::string>("must not be empty") : std::nullopt;
      });
      if (!items) return std::nullopt;
      return json(*items);
    }
    case FieldType::kTree:
      return YamlTreeToJson(value.node);
  }
  return std::nullopt;
}

// Reads the kind's keys from a block whose keys were already checked.
std::optional<json> ReadSettings(ParseContext& context, const YamlFields& fields,
                                 const KindSchema& schema) {
  json settings = json::object();
  for (const FieldSpec& spec : schema.fields) {
    const YamlValue* value =
        spec.required ? context.reader.Required(fields, spec.key) : fields.Find(spec.key);
    if (value == nullptr) {
      if (spec.required) return std::nullopt;
      continue;
    }
    auto field = ReadField(context, *value, spec);
    if (!field) return std::nullopt;
    settings[std::string(spec.key)] = std::move(*field);
  }
  return settings;
}

// A block whose `kind` chose its schema, with the block's keys checked against that schema.
struct KindBlock {
  const KindSchema* schema = nullptr;
  YamlFields fields;
};

// Reads `kind` first, because the kind decides which other keys the block accepts. `what` names
// the block in messages ("provider" or "check"), and `common_keys` are the keys every kind of
// that block accepts.
std::optional<KindBlock> ReadKindBlock(ParseContext& context, const YamlValue& value,
                                       std::span<const KindSchema> kinds, std::string_view what,
                                       std::span<const std::string_view> common_keys) {
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

  std::vector<std::string_view> keys(common_keys.begin(), common_keys.end());
  for (const FieldSpec& spec : schema->fields) keys.push_back(spec.key);
  auto fields = reader.Mapping(value, keys);
  if (!fields) return std::nullopt;
  return KindBlock{schema, *fields};
}

// Rewrites the `file:` references in an http check's `secret_headers` with absolute paths, as
// ReadSecret writes every other reference, so that they resolve against the config file's folder
// and not against the server's working folder. CheckSecretReferences has validated them.
void MakeSecretHeadersAbsolute(ParseContext& context, json& settings) {
  auto steps = settings.find("steps");
  if (steps == settings.end() || !steps->is_array()) return;
  for (json& step : *steps) {
    if (!step.is_object()) continue;
    auto headers = step.find("secret_headers");
    if (headers == step.end() || !headers->is_object()) continue;
    for (auto& entry : headers->items()) {
      json& reference = entry.value();
      if (!reference.is_string()) continue;
      auto parsed = SecretRef::Parse(reference.get<std::string>(), context.base_dir);
      if (parsed) reference = parsed->ToString();
    }
  }
}

constexpr std::string_view kProviderCommonKeys[] = {"kind"};
constexpr std::string_view kCheckCommonKeys[] = {"name", "kind"};

}  // namespace

std::optional<ProviderConfig> ParseProvider(ParseContext& context, const YamlValue& value) {
  auto block = ReadKindBlock(context, value, kProviderKinds, "provider", kProviderCommonKeys);
  if (!block) return std::nullopt;
  auto settings = ReadSettings(context, block->fields, *block->schema);
  if (!settings) return std::nullopt;
  if (block->schema->cross_check != nullptr) {
    if (auto problem = block->schema->cross_check(*settings)) {
      const YamlValue* at = block->fields.Find(problem->key);
      if (at != nullptr) {
        context.reader.Fail(*at, problem->message);
      } else {
        context.reader.Fail(value.line, fmt::format("{}.{}", value.path, problem->key),
                            problem->message);
      }
      return std::nullopt;
    }
  }
  return ProviderConfig{std::string(block->schema->name), std::move(*settings)};
}

std::vector<std::string_view> MissingReadinessKeys(const ProviderConfig& provider) {
  for (const KindSchema& schema : kProviderKinds) {
    if (schema.name != provider.kind) continue;
    const bool has_readiness_key = std::ranges::any_of(
        schema.readiness_keys,
        [&](std::string_view key) { return provider.settings.contains(std::string(key)); });
    if (has_readiness_key) return {};
    return {schema.readiness_keys.begin(), schema.readiness_keys.end()};
  }
  return {};
}

std::optional<CheckConfig> ParseCheck(ParseContext& context, const YamlValue& value) {
  auto block = ReadKindBlock(context, value, kCheckKinds, "check", kCheckCommonKeys);
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

  auto settings = ReadSettings(context, block->fields, *block->schema);
  if (!settings) return std::nullopt;
  if (block->schema->cross_check != nullptr) {
    if (auto problem = block->schema->cross_check(*settings)) {
      const YamlValue* at = problem->key.empty() ? nullptr : block->fields.Find(problem->key);
      if (at != nullptr) {
        reader.Fail(*at, problem->message);
      } else {
        reader.Fail(value, problem->message);
      }
      return std::nullopt;
    }
  }
  if (block->schema->name == "http") MakeSecretHeadersAbsolute(context, *settings);
  return CheckConfig{*name, std::string(block->schema->name), std::move(*settings)};
}

}  // namespace backout::app::config_internal
