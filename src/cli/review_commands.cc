// `backout review write|show`.
#include <memory>
#include <string>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"

namespace backout::cli {
namespace {

std::string ReviewPath(const std::string& incident_id) {
  return "/api/v1/incidents/" + EncodeUrlComponent(incident_id) + "/review";
}

// Prints a review: the Markdown itself in table format, the whole answer in JSON or YAML.
core::Result<int> PrintReview(const ClientContext& context, const core::Result<Json>& review) {
  if (!review) {
    return std::unexpected(review.error());
  }
  if (context.format != OutputFormat::kTable) {
    PrintOut(RenderSingle(*review, context.format));
    return kExitOk;
  }
  std::string markdown = StringField(*review, "markdown");
  if (!markdown.empty() && markdown.back() != '\n') {
    markdown += '\n';
  }
  PrintOut(markdown);
  return kExitOk;
}

void AddReviewWrite(CLI::App& review, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string file;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = review.add_subcommand(
      "write",
      "Store the post-incident review: a Markdown file, or without --file the built-in template "
      "filled from the incident's timeline");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  command
      ->add_option("--file", flags->file,
                   "Markdown file with the review; replaces any review stored before")
      ->check(CLI::ExistingFile);
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        Json body = Json::object();
        if (!flags->file.empty()) {
          auto markdown = ReadWholeFile(flags->file);
          if (!markdown) {
            return std::unexpected(markdown.error());
          }
          body["markdown"] = *markdown;
        }
        return PrintReview(context, context.api.Put(ReviewPath(flags->incident_id), body));
      });
}

void AddReviewShow(CLI::App& review, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
  };
  auto flags = std::make_shared<Flags>();
  auto* command =
      review.add_subcommand("show", "Print an incident's post-incident review (Markdown)");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintReview(context, context.api.Get(ReviewPath(flags->incident_id)));
  });
}

}  // namespace

void AddReviewCommands(CLI::App& app, int& exit_status) {
  auto* review = app.add_subcommand("review", "Write and read post-incident reviews");
  review->require_subcommand(1);
  AddReviewWrite(*review, exit_status);
  AddReviewShow(*review, exit_status);
}

}  // namespace backout::cli
