#include "cli/cli.h"

#include <fmt/format.h>

#include "cli/ledger_commands.h"

#ifndef BACKOUT_VERSION
#define BACKOUT_VERSION "0.1.0"
#endif

namespace backout::cli {

void AddCommands(CLI::App& app, int& exit_status) {
  auto* version = app.add_subcommand("version", "Print the version of this build");
  version->callback([&exit_status] {
    fmt::print("backout {}\n", BACKOUT_VERSION);
    exit_status = kExitOk;
  });

  AddLedgerCommands(app, exit_status);
}

}  // namespace backout::cli
