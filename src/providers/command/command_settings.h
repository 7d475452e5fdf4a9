#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/provider.h"

namespace backout::providers::command {

// The settings of one `command` provider binding, as written in the service's `provider` block:
//
//   kind: command                              # accepted and ignored here
//   run: [/opt/runbooks/rollback-checkout, --fast]  # required; argv, absolute path first
//   status: [/opt/runbooks/checkout-version]   # optional; prints the live version on line 1
//   history: [/opt/runbooks/checkout-history]  # optional; one JSON object per line
//   readiness: [/opt/runbooks/checkout-ready]  # optional; exit 0 means ready
//   timeout: 300s                              # run time limit, default 300s
//   check_timeout: 30s                         # limit for status, history, readiness; default 30s
//   kill_grace: 10s                            # SIGTERM to SIGKILL, default 10s
//   working_dir: /                             # optional; absolute, default /
//   output_dir: /var/lib/backout/tmp           # optional; default the system temp folder
//   env: {DEPLOY_TOKEN: env:CHECKOUT_TOKEN}    # secret variables by reference
//
// `env` maps a variable name to a secret reference. The config loader resolves the references,
// and the binding's secret values hold each variable's value under the variable's name.
struct CommandSettings {
  std::vector<std::string> run;
  std::vector<std::string> status;  // empty when not configured
  std::vector<std::string> history;
  std::vector<std::string> readiness;
  std::chrono::milliseconds timeout{300'000};
  std::chrono::milliseconds check_timeout{30'000};
  std::chrono::milliseconds kill_grace{10'000};
  std::string working_dir = "/";
  std::filesystem::path output_dir;
  std::vector<std::string> secret_names;  // sorted
  SecretValues secret_values;             // only the names in secret_names
};

// Validates `settings` for `service`. Errors name the service and the field, and reject unknown
// fields, relative program paths, reserved variable names and unresolved secrets.
core::Result<CommandSettings> ParseCommandSettings(std::string_view service,
                                                   const nlohmann::json& settings,
                                                   const SecretValues& secrets);

}  // namespace backout::providers::command
