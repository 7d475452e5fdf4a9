#include "cli/cli.h"

#include <fmt/format.h>

#include "cli/audit_commands.h"
#include "cli/client_commands.h"
#include "cli/evidence_commands.h"
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

  AddUserCommands(app, exit_status);
  AddChangeCommands(app, exit_status);
  AddServiceCommands(app, exit_status);
  AddIncidentCommands(app, exit_status);
  AddReviewCommands(app, exit_status);
  AddActionCommands(app, exit_status);
  AddReconciliationCommands(app, exit_status);
  AddCheckCommands(app, exit_status);
  AddLedgerCommands(app, exit_status);
  AddEvidenceCommands(app, exit_status);
  AddAuditCommands(app, exit_status);
  AddAccessCommands(app, exit_status);
}

}  // namespace backout::cli
