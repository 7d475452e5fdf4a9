// `backout service list|show|unfreeze|releases`.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/output.h"

namespace backout::cli {
namespace {

std::string ServicePath(const std::string& name) {
  return "/api/v1/services/" + EncodeUrlComponent(name);
}

void AddServiceList(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "list", "List the services in the server config with their provider and deploy freeze");
  command->add_option("--limit", flags->limit, "Show at most this many services; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintList(context, context.api.GetAll("/api/v1/services", flags->limit),
                     {{"NAME", "name"},
                      {"ENVIRONMENT", "environment"},
                      {"PROVIDER", "provider"},
                      {"FROZEN", "frozen"}});
  });
}

void AddServiceShow(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "show", "Show a service's configuration (without secrets), live state and deploy freeze");
  command->add_option("NAME", flags->name, "Service name")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context, context.api.Get(ServicePath(flags->name)));
  });
}

void AddServiceUnfreeze(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
    std::string reason;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "unfreeze",
      "Lift the deploy freeze a rollback set on a service, so CI may deploy it again "
      "(engineering lead)");
  command->add_option("NAME", flags->name, "Service name")->required();
  command->add_option("--reason", flags->reason, "Why deploying is safe again; kept in the ledger")
      ->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context, context.api.Post(ServicePath(flags->name) + "/unfreeze",
                                                 Json{{"reason", flags->reason}}));
  });
}

// One line above the table: the live release by the manifest and by the folder, which differ
// until reconciliation corrects the manifest.
std::string ReleasesHeader(const Json& answer) {
  const Json& folder = answer.value("folder", Json::object());
  std::string text =
      fmt::format("service {}: live release {} by the manifest, {} by the folder",
                  answer.value("service", ""), FormatCell(answer.value("live_version", Json())),
                  FormatCell(folder.value("live_version", Json())));
  if (folder.contains("error") && !folder["error"].is_null()) {
    text += fmt::format(" (folder not read: {})", FormatCell(folder["error"]));
  }
  if (const std::string problem = folder.value("live_problem", ""); !problem.empty()) {
    text += fmt::format(" (no live release in the folder: {})", problem);
  }
  text += fmt::format("; reconciled {}\n", FormatCell(answer.value("reconciled_at", Json())));
  return text;
}

// Change ids shown per release in the table; `-o json` and `-o yaml` list them all.
constexpr size_t kChangesShown = 2;

// The releases of a manifest response with a `changes` cell: the newest change ids, so a release
// deployed many times keeps the table readable.
Json ReleaseRows(const Json& answer) {
  Json rows = answer.value("releases", Json::array());
  for (Json& row : rows) {
    if (row.is_object()) {
      row["changes"] = FormatNewest(row.value("change_ids", Json::array()), kChangesShown);
    }
  }
  return rows;
}

void AddServiceReleases(CLI::App& service, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = service.add_subcommand(
      "releases",
      "Show the release manifest of a service deployed by release folders: each release's "
      "status (deployed, validated_good, failed, rolled_back, present), when it changed and what "
      "set it");
  command->add_option("NAME", flags->name, "Service name")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    auto answer = context.api.Get(ServicePath(flags->name) + "/releases");
    if (!answer) return core::Result<int>(std::unexpected(answer.error()));
    if (context.format != OutputFormat::kTable) return PrintSingle(context, answer);
    PrintOut(ReleasesHeader(*answer));
    PrintOut(RenderTable(ReleaseRows(*answer), {{"VERSION", "version"},
                                                {"STATUS", "status"},
                                                {"LIVE", "live"},
                                                {"CHANGED_AT", "status_changed_at"},
                                                {"SET_BY", "set_by"},
                                                {"COMPLETE", "complete"},
                                                {"IN_FOLDER", "in_folder"},
                                                {"CHANGES", "changes"}}));
    return core::Result<int>(kExitOk);
  });
}

}  // namespace

void AddServiceCommands(CLI::App& app, int& exit_status) {
  auto* service = app.add_subcommand("service",
                                     "Inspect services, their release manifests and lift deploy "
                                     "freezes");
  service->require_subcommand(1);
  AddServiceList(*service, exit_status);
  AddServiceShow(*service, exit_status);
  AddServiceUnfreeze(*service, exit_status);
  AddServiceReleases(*service, exit_status);
}

}  // namespace backout::cli
