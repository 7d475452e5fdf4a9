// `backout incident confirm-check`: a person's result for a `manual` validation check.
#include <filesystem>
#include <memory>

#include "cli/api_client.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/request_fields.h"
#include "core/domain.h"

namespace backout::cli {

void AddCheckCommands(CLI::App& app, int& exit_status) {
  CLI::App* incident = app.get_subcommand("incident");
  struct Flags {
    ClientFlags client;
    std::string id;
    std::string check;
    std::string note;
    std::string attachment;
    bool failed = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident->add_subcommand(
      "confirm-check",
      "Record that you ran a manual check's user-level test, for the incident's validation");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  command->add_option("NAME", flags->check, "Name of the service's manual check")->required();
  command->add_option("--note", flags->note, "What you tested and what you saw")->required();
  command
      ->add_option("--attach", flags->attachment,
                   "File to attach, e.g. a screenshot; at most 10 MiB (10485760 bytes)")
      ->check(CLI::ExistingFile);
  command->add_flag("--failed", flags->failed,
                    "Record that the test failed (by default the check is confirmed as passed)");
  SetClientCallback(
      *command, flags->client, exit_status,
      [flags](ClientContext& context) -> core::Result<int> {
        Json body = {{"passed", !flags->failed}, {"note", flags->note}};
        if (!flags->attachment.empty()) {
          auto content = ReadFileUpTo(flags->attachment, core::kMaxConfirmationAttachmentBytes);
          if (!content) return std::unexpected(content.error());
          body["attachment"] = {
              {"name", std::filesystem::path(flags->attachment).filename().string()},
              {"content_base64", EncodeBase64(*content)}};
        }
        const std::string path = "/api/v1/incidents/" + EncodeUrlComponent(flags->id) + "/checks/" +
                                 EncodeUrlComponent(flags->check) + "/confirm";
        return PrintSingle(context, context.api.Post(path, body));
      },
      UsageErrorStatus);
}

}  // namespace backout::cli
