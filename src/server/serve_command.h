#pragma once

#include <CLI/CLI.hpp>

namespace backout::server {

// Adds `backout serve --config FILE`, which runs the control plane until SIGTERM or SIGINT and
// reloads its configuration on SIGHUP. The callback stores the exit status in `exit_status`.
void AddServeCommand(CLI::App& app, int& exit_status);

}  // namespace backout::server
