// The `backout` binary: the composition root that gathers every command.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#ifdef BACKOUT_WITH_SERVER
#include "server/serve_command.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Backout: rollback and recovery control plane with a tamper-evident ledger"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every command");

  // Client commands print results, not progress logs; `serve` raises the level for itself.
  spdlog::set_level(spdlog::level::warn);

  int exit_status = backout::cli::kExitOk;
  backout::cli::AddCommands(app, exit_status);
#ifdef BACKOUT_WITH_SERVER
  backout::server::AddServeCommand(app, exit_status);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    return status == 0 ? backout::cli::kExitOk : backout::cli::kExitUsage;
  }
  return exit_status;
}
