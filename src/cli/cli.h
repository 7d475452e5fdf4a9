#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// Exit statuses shared by every command: 0 success, 1 refused or failed, 2 usage error. The check
// commands (`action overdue`, `access review`, `audit check`) exit 1 for findings and
// kExitCouldNotCheck when the check could not be made, so a scheduled job can tell them apart.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCouldNotCheck = 3;

// Adds every client and offline command (all but `serve`) to `app`. Each command's callback
// stores its exit status in `exit_status`.
void AddCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
