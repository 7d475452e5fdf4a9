// `backout audit check`.
#include "cli/audit_commands.h"

#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"

namespace backout::cli {
namespace {

void AddCheck(CLI::App& audit, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string from;
    std::string to;
    std::string at;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = audit.add_subcommand(
      "check",
      "List open audit findings (undocumented, unauthorized, unapproved or unvalidated "
      "rollbacks, overdue follow-up, grants off the roster, stale access reviews, ledger "
      "failures). Exit status: 0 no open finding, 1 findings open, 2 usage error, 3 could not "
      "check (server unreachable, token rejected, server error)");
  command->add_option("--from", flags->from, "Only rollbacks requested at or after this time")
      ->check(TimeValidator());
  command->add_option("--to", flags->to, "Only rollbacks requested before this time")
      ->check(TimeValidator());
  command->add_option("--at", flags->at, "Evaluate as of this time (RFC 3339); now when absent")
      ->check(TimeValidator());
  // An empty period would find nothing and exit 0, so it is a usage error before connecting.
  command->parse_complete_callback([flags] { CheckPeriodOrder(flags->from, flags->to); });
  SetCheckCallback(*command, flags->client, exit_status,
                   [flags](ClientContext& context) -> core::Result<int> {
                     auto answer = context.api.Get(
                         WithQuery("/api/v1/audit/findings",
                                   {{"from", flags->from}, {"to", flags->to}, {"at", flags->at}}));
                     if (!answer) return std::unexpected(answer.error());
                     const Json findings = answer->value("findings", Json::array());
                     if (context.format == OutputFormat::kTable) {
                       PrintOut(RenderTable(findings, {{"RULE", "rule"},
                                                       {"INCIDENT", "incident"},
                                                       {"ROLLBACK", "rollback"},
                                                       {"USER", "user"},
                                                       {"FINDING", "message"}}));
                       PrintNote(fmt::format("{} open finding(s) as of {}\n", findings.size(),
                                             answer->value("evaluated_at", "")));
                     } else {
                       PrintOut(RenderSingle(*answer, context.format));
                     }
                     return findings.empty() ? kExitOk : kExitFailed;
                   });
}

}  // namespace

void AddAuditCommands(CLI::App& app, int& exit_status) {
  auto* audit = app.add_subcommand("audit", "Find what an auditor would find, before they do");
  audit->require_subcommand(1);
  AddCheck(*audit, exit_status);
}

}  // namespace backout::cli
