// The `backout` binary: the composition root that gathers every command.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <functional>

#include "cli/cli.h"
#ifdef BACKOUT_WITH_SERVER
#include "server/serve_command.h"
#endif

namespace {

// Parses the command line and runs the chosen command, or, for `serve`, only stores the server's
// run in `run_serve`. Returns the exit status of the parse or of the command that ran.
int ParseAndRun(int argc, char** argv, std::function<int()>& run_serve) {
  CLI::App app{"Backout: rollback and recovery control plane with a tamper-evident ledger"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every command");

  // Client commands print results, not progress logs; `serve` raises the level for itself.
  spdlog::set_level(spdlog::level::warn);

  int exit_status = backout::cli::kExitOk;
  backout::cli::AddCommands(app, exit_status);
#ifdef BACKOUT_WITH_SERVER
  backout::server::AddServeCommand(app, run_serve);
  backout::server::AddConfigCommand(app, exit_status);
#else
  (void)run_serve;
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    return status == 0 ? backout::cli::kExitOk : backout::cli::kExitUsage;
  }
  return exit_status;
}

}  // namespace

int main(int argc, char** argv) {
  std::function<int()> run_serve;
  const int exit_status = ParseAndRun(argc, argv, run_serve);
  // The server runs once the parser's memory is freed; see AddServeCommand.
  if (run_serve) return run_serve();
  return exit_status;
}
