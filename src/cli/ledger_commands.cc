#include "cli/ledger_commands.h"

namespace backout::cli {

void AddLedgerCommands(CLI::App& app, int& exit_status) {
  // TODO: ledger subcommands land with the ledger and store modules.
  app.add_subcommand("ledger", "Verify and export the tamper-evident ledger");
}

}  // namespace backout::cli
