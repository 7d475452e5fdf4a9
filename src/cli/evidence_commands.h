#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// `evidence export` (a client of the server) and `evidence verify` (offline, on a file).
void AddEvidenceCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
