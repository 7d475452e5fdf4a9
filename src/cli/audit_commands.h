#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// `audit check`: the open audit findings, exit status 1 while any is open.
void AddAuditCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
