#include "providers/command/command_settings.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/time.h"

namespace backout::providers::command {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 11> kKnownFields = {
    "kind",          "run",        "status",      "history",    "readiness", "timeout",
    "check_timeout", "kill_grace", "working_dir", "output_dir", "env"};

// Builds errors that all start with the service and the field.
class FieldErrors {
 public:
  explicit FieldErrors(std::string_view service) : service_(service) {}

  template <typename... Args>
  std::unexpected<core::Error> Invalid(std::string_view field, fmt::format_string<Args...> format,
                                       Args&&... args) const {
    return std::unexpected(
        core::Error{core::ErrorCode::kInvalidArgument,
                    fmt::format("service {}: command provider field '{}': {}", service_, field,
                                fmt::format(format, std::forward<Args>(args)...))});
  }

 private:
  std::string service_;
};

bool IsValidVariableName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

core::Result<std::vector<std::string>> ParseArgv(const FieldErrors& errors, const json& settings,
                                                 std::string_view field, bool required) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) {
    if (required) {
      return errors.Invalid(field,
                            "missing; give the runbook as a list such as "
                            "[/opt/runbooks/rollback, --fast]");
    }
    return std::vector<std::string>{};
  }
  if (!it->is_array() || it->empty()) {
    return errors.Invalid(field, "must be a non-empty list of strings, the program first");
  }

  std::vector<std::string> argv;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string()) {
      return errors.Invalid(field, "item {} must be a string, got {}", i, item.type_name());
    }
    std::string arg = item.get<std::string>();
    if (arg.find('\0') != std::string::npos) {
      return errors.Invalid(field, "item {} contains a NUL character", i);
    }
    argv.push_back(std::move(arg));
  }
  if (!std::filesystem::path(argv[0]).is_absolute()) {
    return errors.Invalid(field,
                          "the program '{}' must be an absolute path; commands run without a "
                          "shell or PATH search",
                          argv[0]);
  }
  return argv;
}

core::Result<std::chrono::milliseconds> ParseLimit(const FieldErrors& errors, const json& settings,
                                                   std::string_view field,
                                                   std::chrono::milliseconds fallback) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return errors.Invalid(field, "must be a duration such as 30s or 5m, got {}", it->dump());
  }
  auto duration = core::ParseDuration(it->get<std::string>());
  if (!duration) return errors.Invalid(field, "{}", duration.error().message);
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
  if (limit.count() <= 0) {
    return errors.Invalid(field, "must be at least 1ms, got {}", it->get<std::string>());
  }
  return limit;
}

core::Result<std::string> ParseFolder(const FieldErrors& errors, const json& settings,
                                      std::string_view field) {
  auto it = settings.find(field);
  if (it == settings.end() || it->is_null()) return std::string{};
  if (!it->is_string() || it->get<std::string>().empty()) {
    return errors.Invalid(field, "must be an absolute folder path");
  }
  std::string folder = it->get<std::string>();
  if (!std::filesystem::path(folder).is_absolute()) {
    return errors.Invalid(field, "'{}' must be an absolute path", folder);
  }
  return folder;
}

core::Result<void> ParseSecretEnv(const FieldErrors& errors, const json& settings,
                                  const SecretValues& secrets, CommandSettings& out) {
  auto it = settings.find("env");
  if (it == settings.end() || it->is_null()) return {};
  if (!it->is_object()) {
    return errors.Invalid("env",
                          "must map variable names to secret references such as "
                          "env:NAME or file:PATH");
  }

  for (const auto& [name, reference] : it->items()) {
    if (!IsValidVariableName(name)) {
      return errors.Invalid("env",
                            "'{}' is not a valid variable name (letters, digits and "
                            "underscores, not starting with a digit)",
                            name);
    }
    if (name.starts_with("BACKOUT_")) {
      return errors.Invalid("env",
                            "'{}' uses the prefix BACKOUT_, which Backout reserves for the "
                            "inputs it passes; rename the variable",
                            name);
    }
    if (!reference.is_string()) {
      return errors.Invalid("env", "the reference of '{}' must be a string such as env:NAME", name);
    }
    auto value = secrets.find(name);
    if (value == secrets.end()) {
      return errors.Invalid("env",
                            "the secret for '{}' was not resolved; check its reference in the "
                            "configuration",
                            name);
    }
    if (value->second.find('\0') != std::string::npos) {
      return errors.Invalid("env", "the secret for '{}' contains a NUL character", name);
    }
    out.secret_names.push_back(name);
    out.secret_values.emplace(name, value->second);
  }
  std::sort(out.secret_names.begin(), out.secret_names.end());
  return {};
}

}  // namespace

core::Result<CommandSettings> ParseCommandSettings(std::string_view service, const json& settings,
                                                   const SecretValues& secrets) {
  FieldErrors errors(service);
  if (!settings.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: command provider settings must be an object, got {}",
                           service, settings.type_name());
  }
  for (const auto& [field, value] : settings.items()) {
    if (std::find(kKnownFields.begin(), kKnownFields.end(), field) == kKnownFields.end()) {
      return errors.Invalid(field, "unknown field; known fields are {}",
                            fmt::join(kKnownFields, ", "));
    }
  }

  auto kind = settings.find("kind");
  if (kind != settings.end() && *kind != "command") {
    return errors.Invalid("kind", "must be command, got {}", kind->dump());
  }

  CommandSettings out;
  auto run = ParseArgv(errors, settings, "run", true);
  if (!run) return std::unexpected(run.error());
  out.run = std::move(*run);
  auto status = ParseArgv(errors, settings, "status", false);
  if (!status) return std::unexpected(status.error());
  out.status = std::move(*status);
  auto history = ParseArgv(errors, settings, "history", false);
  if (!history) return std::unexpected(history.error());
  out.history = std::move(*history);
  auto readiness = ParseArgv(errors, settings, "readiness", false);
  if (!readiness) return std::unexpected(readiness.error());
  out.readiness = std::move(*readiness);

  auto timeout = ParseLimit(errors, settings, "timeout", out.timeout);
  if (!timeout) return std::unexpected(timeout.error());
  out.timeout = *timeout;
  auto check_timeout = ParseLimit(errors, settings, "check_timeout", out.check_timeout);
  if (!check_timeout) return std::unexpected(check_timeout.error());
  out.check_timeout = *check_timeout;
  auto kill_grace = ParseLimit(errors, settings, "kill_grace", out.kill_grace);
  if (!kill_grace) return std::unexpected(kill_grace.error());
  out.kill_grace = *kill_grace;

  auto working_dir = ParseFolder(errors, settings, "working_dir");
  if (!working_dir) return std::unexpected(working_dir.error());
  if (!working_dir->empty()) out.working_dir = *working_dir;
  auto output_dir = ParseFolder(errors, settings, "output_dir");
  if (!output_dir) return std::unexpected(output_dir.error());
  if (output_dir->empty()) {
    std::error_code error;
    out.output_dir = std::filesystem::temp_directory_path(error);
    if (error) out.output_dir = "/tmp";
  } else {
    out.output_dir = *output_dir;
  }

  auto env = ParseSecretEnv(errors, settings, secrets, out);
  if (!env) return std::unexpected(env.error());
  return out;
}

}  // namespace backout::providers::command
