#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// `backout ledger verify|checkpoint|proof|consistency|sample`: offline commands that open the
// database directly.
void AddLedgerCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
