// `backout action add|list|overdue|done`.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"

namespace backout::cli {
namespace {

const std::vector<Column> kActionColumns = {
    {"ID", "id"},       {"STATUS", "status"},          {"OWNER", "owner"},   {"DUE", "due"},
    {"TITLE", "title"}, {"EVIDENCE", "evidence_link"}, {"REASON", "reason"},
};

// Columns of the report across incidents, which adds each item's incident, service and lateness.
const std::vector<Column> kReportColumns = {
    {"ID", "id"},
    {"INCIDENT", "incident_id"},
    {"SERVICE", "service"},
    {"STATUS", "status"},
    {"OWNER", "owner"},
    {"DUE", "due"},
    {"DAYS_OVERDUE", "days_overdue"},
    {"TITLE", "title"},
};

std::string ActionItemsPath(const std::string& incident_id) {
  return "/api/v1/incidents/" + EncodeUrlComponent(incident_id) + "/action-items";
}

void AddActionAdd(CLI::App& action, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string title;
    std::string owner;
    std::string due;
    bool no_action = false;
    std::string reason;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = action.add_subcommand(
      "add",
      "Add an action item to an incident (--title, --owner, --due), or record that none is "
      "needed (--no-action --reason)");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  // The validators name the option of an empty value, because the check after parsing cannot tell
  // an empty value from a missing option.
  auto* title = command->add_option("--title", flags->title, "What must be done")
                    ->check(NonEmptyValidator("give a value"));
  auto* owner = command
                    ->add_option("--owner", flags->owner,
                                 "User who owns the item, one listed under `users` in the config")
                    ->check(NonEmptyValidator("give a user listed under `users` in the config"));
  auto* due = command->add_option("--due", flags->due, "Due date, YYYY-MM-DD (UTC)")
                  ->check(NonEmptyValidator("give a date as YYYY-MM-DD"))
                  ->check(DateValidator());
  auto* no_action =
      command->add_flag("--no-action", flags->no_action,
                        "Record that the incident needs no action item; needs --reason");
  auto* reason = command->add_option("--reason", flags->reason, "Why no action item is needed")
                     ->check(NonEmptyValidator("give a value"));
  for (CLI::Option* item_option : {title, owner, due}) {
    item_option->excludes(no_action);
  }
  no_action->needs(reason);
  reason->needs(no_action);

  // The server rejects an owner not listed under `users` with HTTP 400, which exits 2 like the
  // other wrong inputs.
  SetClientCallback(
      *command, flags->client, exit_status,
      [flags](ClientContext& context) {
        Json body;
        if (flags->no_action) {
          body = {{"no_action", true}, {"reason", flags->reason}};
        } else {
          body = {{"title", flags->title}, {"owner", flags->owner}, {"due", flags->due}};
        }
        return PrintSingle(context, context.api.Post(ActionItemsPath(flags->incident_id), body));
      },
      UsageErrorStatus);
  // An item needs all three of its fields unless --no-action replaces them; CLI11 cannot state
  // "all of these or that one", so the check runs before the callback and exits 2 like the rest.
  command->parse_complete_callback([flags] {
    if (!flags->no_action && (flags->title.empty() || flags->owner.empty() || flags->due.empty())) {
      throw CLI::ValidationError(
          "an action item needs --title, --owner and --due, or --no-action with --reason",
          CLI::ExitCodes::RequiredError);
    }
  });
}

// Reads the action item report across incidents as an array of items, keeping only
// `incident_id`'s items when it is set.
core::Result<Json> ReadReport(ClientContext& context, const std::string& incident_id,
                              const std::string& owner, const std::string& service, bool overdue) {
  auto answer = context.api.Get(
      WithQuery("/api/v1/action-items",
                {{"owner", owner}, {"service", service}, {"overdue", overdue ? "true" : ""}}));
  if (!answer) return std::unexpected(answer.error());
  Json kept = Json::array();
  for (const Json& item : answer->value("items", Json::array())) {
    if (incident_id.empty() || item.value("incident_id", "") == incident_id) kept.push_back(item);
  }
  return kept;
}

void AddActionList(CLI::App& action, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    size_t limit = 0;
    bool overdue = false;
    std::string owner;
    std::string service;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = action.add_subcommand(
      "list",
      "List action items: one incident's in the order they were added, or with no ID every "
      "incident's by due date and then by id");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1; all incidents if absent");
  command->add_option("--limit", flags->limit, "Show at most this many items; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  command->add_flag("--overdue", flags->overdue, "Only open items past their due date (UTC)");
  command->add_option("--owner", flags->owner, "Only items owned by this user")
      ->check(NonEmptyValidator());
  command->add_option("--service", flags->service, "Only items of this service's incidents")
      ->check(NonEmptyValidator());
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        const bool filtered = flags->overdue || !flags->owner.empty() || !flags->service.empty();
        if (!flags->incident_id.empty() && !filtered) {
          return PrintList(context,
                           context.api.GetAll(ActionItemsPath(flags->incident_id), flags->limit),
                           kActionColumns);
        }
        auto report =
            ReadReport(context, flags->incident_id, flags->owner, flags->service, flags->overdue);
        if (report && flags->limit > 0 && report->size() > flags->limit) {
          report->erase(report->begin() + static_cast<std::ptrdiff_t>(flags->limit), report->end());
        }
        return PrintList(context, report, kReportColumns);
      });
}

void AddActionOverdue(CLI::App& action, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string owner;
    std::string service;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = action.add_subcommand(
      "overdue",
      "Report open action items past their due date with the days each is late. Exit status: 0 "
      "none overdue, 1 some overdue, 2 usage error (such as an unknown --service or --owner), 3 "
      "could not check (server unreachable, token rejected, server error)");
  command->add_option("--owner", flags->owner, "Only items owned by this user")
      ->check(NonEmptyValidator());
  command->add_option("--service", flags->service, "Only items of this service's incidents")
      ->check(NonEmptyValidator());
  SetCheckCallback(*command, flags->client, exit_status,
                   [flags](ClientContext& context) -> core::Result<int> {
                     auto report = ReadReport(context, "", flags->owner, flags->service, true);
                     if (!report) return std::unexpected(report.error());
                     const size_t overdue = report->size();
                     auto printed = PrintList(context, report, kReportColumns);
                     if (!printed) return printed;
                     if (context.format == OutputFormat::kTable) {
                       PrintNote(fmt::format("{} overdue action item(s)\n", overdue));
                     }
                     return overdue == 0 ? kExitOk : kExitFailed;
                   });
}

void AddActionDone(CLI::App& action, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string action_id;
    std::string evidence;
    bool not_doing = false;
    std::string reason;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = action.add_subcommand(
      "done",
      "Finish an action item (its owner or an engineering lead): done with --evidence, or "
      "--not-doing with --reason");
  command->add_option("ACTION_ID", flags->action_id, "Action item id, from `action list`")
      ->required();
  auto* outcome = command->add_option_group("outcome", "How the item ends (one is needed)");
  outcome->add_option(
      "--evidence", flags->evidence,
      "http:// or https:// URL of what shows the work is done, e.g. a merged pull request");
  auto* not_doing = outcome->add_flag("--not-doing", flags->not_doing,
                                      "Close the item without doing it; needs --reason");
  outcome->require_option(1);
  auto* reason = command->add_option("--reason", flags->reason, "Why the item will not be done");
  not_doing->needs(reason);
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = flags->not_doing ? Json{{"not_doing", true}, {"reason", flags->reason}}
                                 : Json{{"evidence", flags->evidence}};
    return PrintSingle(context, context.api.Post("/api/v1/action-items/" +
                                                     EncodeUrlComponent(flags->action_id) + "/done",
                                                 body));
  });
}

}  // namespace

void AddActionCommands(CLI::App& app, int& exit_status) {
  auto* action = app.add_subcommand("action", "Track an incident's action items to completion");
  action->require_subcommand(1);
  AddActionAdd(*action, exit_status);
  AddActionList(*action, exit_status);
  AddActionOverdue(*action, exit_status);
  AddActionDone(*action, exit_status);
}

}  // namespace backout::cli
