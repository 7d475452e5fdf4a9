// `backout change record|verify|list`.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/request_fields.h"

namespace backout::cli {
namespace {

const std::vector<Column> kChangeColumns = {
    {"ID", "id"},           {"SERVICE", "service"},           {"ENV", "environment"},
    {"VERSION", "version"}, {"PREVIOUS", "previous_version"}, {"VALIDATED", "validated"},
    {"TIME", "time"},
};

void AddChangeRecord(CLI::App& change, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string service;
    std::string environment;
    std::string version;
    std::string previous_version;
    std::string ticket;
    std::string approver;
    std::string deployer;
    std::string time;
    std::string risk;
    std::vector<std::string> migrations;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = change.add_subcommand(
      "record", "Record one deployment of a service (typically from CI, right after it deploys)");
  command->add_option("--service", flags->service, "Service that was deployed")->required();
  command->add_option("--version", flags->version, "Version now deployed")->required();
  command->add_option("--previous-version", flags->previous_version,
                      "Version that ran before this deployment");
  command->add_option("--environment", flags->environment,
                      "Environment deployed to, e.g. production; default: the service's own");
  command->add_option("--ticket", flags->ticket,
                      "External change ticket, e.g. a Jira key or a URL");
  command->add_option("--approver", flags->approver, "Person who approved the change");
  command->add_option("--deployer", flags->deployer, "Person or pipeline that deployed it");
  command
      ->add_option("--time", flags->time,
                   "Time the deployment happened, RFC 3339 (e.g. 2026-12-04T17:05:41Z); default: "
                   "when the server receives the record")
      ->check(TimeValidator());
  command->add_option("--risk", flags->risk, "Risk rating of the change, e.g. low or high");
  command
      ->add_option("--migration", flags->migrations,
                   "Database migration shipped with the change, as ID or ID:irreversible "
                   "(ID:reversible is the default); repeat for several")
      ->check(CLI::Validator(
          [](std::string& text) {
            auto parsed = ParseMigrationSpec(text);
            return parsed ? std::string() : parsed.error().message;
          },
          "ID[:irreversible]"));

  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json migrations = Json::array();
    for (const std::string& text : flags->migrations) {
      // The option's validator already accepted each entry.
      const MigrationSpec spec = *ParseMigrationSpec(text);
      migrations.push_back({{"id", spec.id}, {"reversible", spec.reversible}});
    }
    Json body = {{"service", flags->service}, {"version", flags->version}};
    SetIfNotEmpty(body, "environment", flags->environment);
    SetIfNotEmpty(body, "previous_version", flags->previous_version);
    SetIfNotEmpty(body, "external_ticket", flags->ticket);
    SetIfNotEmpty(body, "approver", flags->approver);
    SetIfNotEmpty(body, "deployer", flags->deployer);
    SetIfNotEmpty(body, "time", flags->time);
    SetIfNotEmpty(body, "risk", flags->risk);
    body["migrations"] = migrations;
    return PrintSingle(context, context.api.Post("/api/v1/changes", body));
  });
}

void AddChangeVerify(CLI::App& change, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    bool passed = false;
    bool failed = false;
    std::string details;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = change.add_subcommand(
      "verify", "Mark a change as validated good (--passed) or bad (--failed)");
  command->add_option("ID", flags->id, "Change id as printed by `change record`")->required();
  auto* verdict =
      command->add_option_group("verdict", "Result of the verification (one is needed)");
  verdict->add_flag("--passed", flags->passed,
                    "The change passed its verification: it becomes a rollback target");
  verdict->add_flag("--failed", flags->failed, "The change failed its verification");
  verdict->require_option(1);
  command->add_option("--details", flags->details, "What was verified and how, e.g. a CI job URL");

  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = {{"passed", flags->passed}};
    SetIfNotEmpty(body, "details", flags->details);
    return PrintSingle(
        context,
        context.api.Post("/api/v1/changes/" + EncodeUrlComponent(flags->id) + "/verify", body));
  });
}

void AddChangeList(CLI::App& change, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string service;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = change.add_subcommand("list", "List recorded changes in the order recorded");
  command->add_option("--service", flags->service, "Show only changes of this service")
      ->check(NonEmptyValidator());
  command->add_option("--limit", flags->limit, "Show at most this many changes; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    const std::string path = WithQuery("/api/v1/changes", {{"service", flags->service}});
    return PrintList(context, context.api.GetAll(path, flags->limit), kChangeColumns);
  });
}

}  // namespace

void AddChangeCommands(CLI::App& app, int& exit_status) {
  auto* change = app.add_subcommand("change", "Record deployments and their verification");
  change->require_subcommand(1);
  AddChangeRecord(*change, exit_status);
  AddChangeVerify(*change, exit_status);
  AddChangeList(*change, exit_status);
}

}  // namespace backout::cli
