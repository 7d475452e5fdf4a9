// `discovered list|show|link|document`, `service reconcile|timeline` and `notification list`.
#include <memory>
#include <string>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"

namespace backout::cli {
namespace {

std::string DiscoveredPath(const std::string& id) {
  return "/api/v1/discovered-rollbacks/" + EncodeUrlComponent(id);
}

std::string ServicePath(const std::string& name) {
  return "/api/v1/services/" + EncodeUrlComponent(name);
}

void AddDiscoveredList(CLI::App& discovered, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string service;
    std::string state;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = discovered.add_subcommand(
      "list",
      "List rollbacks found in the tools' own history that Backout did not perform, in the "
      "order recorded");
  command->add_option("--service", flags->service, "Only those of this service")
      ->check(NonEmptyValidator());
  command->add_option("--state", flags->state, "Only those in this state")
      ->check(CLI::IsMember({"open", "linked", "documented"}));
  command->add_option("--limit", flags->limit, "Show at most this many; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    const std::string path = WithQuery("/api/v1/discovered-rollbacks",
                                       {{"service", flags->service}, {"state", flags->state}});
    return PrintList(context, context.api.GetAll(path, flags->limit),
                     {{"ID", "id"},
                      {"SERVICE", "service"},
                      {"VERSION", "version"},
                      {"FROM", "from_version"},
                      {"TIME", "time"},
                      {"ACTOR", "actor"},
                      {"STATE", "state"}});
  });
}

void AddDiscoveredShow(CLI::App& discovered, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = discovered.add_subcommand("show", "Show one discovered rollback");
  command->add_option("ID", flags->id, "Discovered rollback id, such as DRB-1")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context, context.api.Get(DiscoveredPath(flags->id)));
  });
}

void AddDiscoveredLink(CLI::App& discovered, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    std::string incident;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = discovered.add_subcommand(
      "link", "Link a discovered rollback to an incident of the same service, closing it");
  command->add_option("ID", flags->id, "Discovered rollback id, such as DRB-1")->required();
  command->add_option("--incident", flags->incident, "Incident id, such as INC-3")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context, context.api.Post(DiscoveredPath(flags->id) + "/link",
                                                 Json{{"incident", flags->incident}}));
  });
}

void AddDiscoveredDocument(CLI::App& discovered, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    std::string reason;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = discovered.add_subcommand(
      "document", "Close a discovered rollback with the reason it happened");
  command->add_option("ID", flags->id, "Discovered rollback id, such as DRB-1")->required();
  command->add_option("--reason", flags->reason, "Why the rollback happened; kept in the ledger")
      ->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context, context.api.Post(DiscoveredPath(flags->id) + "/document",
                                                 Json{{"reason", flags->reason}}));
  });
}

void AddServiceReconcile(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "reconcile",
      "Read the service's history from its tool now and record the deployments and rollbacks "
      "Backout has no record of");
  command->add_option("NAME", flags->name, "Service name")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context,
                       context.api.Post(ServicePath(flags->name) + "/reconcile", Json::object()));
  });
}

void AddServiceTimeline(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "timeline", "List the service's changes, rollbacks, discovered rollbacks and incidents");
  command->add_option("NAME", flags->name, "Service name")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintList(context, context.api.GetAll(ServicePath(flags->name) + "/timeline"),
                     {{"TIME", "time"},
                      {"KIND", "kind"},
                      {"ID", "id"},
                      {"ACTOR", "actor"},
                      {"SUMMARY", "summary"}});
  });
}

void AddNotificationList(CLI::App& notification, int& exit_status) {
  struct Flags {
    ClientFlags client;
    bool failed = false;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = notification.add_subcommand(
      "list", "List webhook deliveries with their state and attempts, in the order recorded");
  command->add_flag("--failed", flags->failed,
                    "Only deliveries dead-lettered after their last attempt");
  command->add_option("--limit", flags->limit, "Show at most this many; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    const std::string path =
        WithQuery("/api/v1/notifications", {{"failed", flags->failed ? "true" : ""}});
    return PrintList(context, context.api.GetAll(path, flags->limit),
                     {{"ID", "id"},
                      {"EVENT", "event"},
                      {"WEBHOOK", "webhook"},
                      {"STATE", "state"},
                      {"ATTEMPTS", "attempts"},
                      {"LAST_STATUS", "last_status"},
                      {"LAST_ERROR", "last_error"}});
  });
}

}  // namespace

void AddReconciliationCommands(CLI::App& app, int& exit_status) {
  auto* discovered = app.add_subcommand(
      "discovered",
      "Review rollbacks found in the tools' own history that Backout did not perform");
  discovered->require_subcommand(1);
  AddDiscoveredList(*discovered, exit_status);
  AddDiscoveredShow(*discovered, exit_status);
  AddDiscoveredLink(*discovered, exit_status);
  AddDiscoveredDocument(*discovered, exit_status);

  // `service` is added by AddServiceCommands, which runs first.
  for (CLI::App* service : app.get_subcommands({})) {
    if (service->get_name() != "service") continue;
    AddServiceReconcile(*service, exit_status);
    AddServiceTimeline(*service, exit_status);
  }

  auto* notification =
      app.add_subcommand("notification", "Inspect webhook deliveries and dead-lettered ones");
  notification->require_subcommand(1);
  AddNotificationList(*notification, exit_status);
}

}  // namespace backout::cli
