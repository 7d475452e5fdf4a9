#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// Exit statuses shared by every command: 0 success, 1 refused or failed, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Adds every client and offline command (all but `serve`) to `app`. Each command's callback
// stores its exit status in `exit_status`.
void AddCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
