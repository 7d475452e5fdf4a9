// `backout review write|show|status`.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/json.h"

namespace backout::cli {
namespace {

std::string ReviewPath(const std::string& incident_id) {
  return "/api/v1/incidents/" + EncodeUrlComponent(incident_id) + "/review";
}

// Prints a review: in table format its owner and status on stderr and the Markdown on stdout,
// so stdout can be saved as the file to edit. JSON and YAML print the whole response.
core::Result<int> PrintReview(const ClientContext& context, const core::Result<Json>& review) {
  if (!review) {
    return std::unexpected(review.error());
  }
  if (context.format != OutputFormat::kTable) {
    PrintOut(RenderSingle(*review, context.format));
    return kExitOk;
  }
  const std::string owner = StringField(*review, "owner");
  PrintNote(fmt::format("review of {}: owner {}, status {}\n", StringField(*review, "incident"),
                        owner.empty() ? "not set" : owner, StringField(*review, "status")));
  std::string markdown = StringField(*review, "markdown");
  if (!markdown.empty() && markdown.back() != '\n') {
    markdown += '\n';
  }
  PrintOut(markdown);
  return kExitOk;
}

// Prints a review after a status or owner change: one line (incident, status, owner) in table
// format, the whole response in JSON and YAML.
core::Result<int> PrintReviewSummary(const ClientContext& context,
                                     const core::Result<Json>& review) {
  if (!review) {
    return std::unexpected(review.error());
  }
  if (context.format != OutputFormat::kTable) {
    PrintOut(RenderSingle(*review, context.format));
    return kExitOk;
  }
  const std::string owner = StringField(*review, "owner");
  PrintOut(fmt::format("review of {}: status {}, owner {}\n", StringField(*review, "incident"),
                       StringField(*review, "status"), owner.empty() ? "not set" : owner));
  return kExitOk;
}

void AddReviewWrite(CLI::App& review, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string file;
    std::string owner;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = review.add_subcommand(
      "write",
      "Store the post-incident review: a Markdown file, or without --file the configured or "
      "built-in template filled from the incident (engineering lead)");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  command
      ->add_option("--file", flags->file,
                   "Markdown file with the review; replaces any review stored before")
      ->check(CLI::ExistingFile);
  command
      ->add_option("--owner", flags->owner,
                   "User on the roster who carries the review to completion; the caller on a "
                   "first write when absent")
      ->check(NonEmptyValidator());
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        Json body = Json::object();
        if (!flags->file.empty()) {
          auto markdown = ReadTextFile(flags->file);
          if (!markdown) {
            return std::unexpected(markdown.error());
          }
          // The server fills the template for an empty review, which would hide a wrong file.
          if (markdown->find_first_not_of(" \t\r\n") == std::string::npos) {
            return core::MakeError(core::ErrorCode::kInvalidArgument,
                                   "{} is empty or only whitespace; write the review in it, or "
                                   "leave out --file to store the filled template",
                                   flags->file);
          }
          body["markdown"] = *markdown;
        }
        if (!flags->owner.empty()) {
          body["owner"] = flags->owner;
        }
        return PrintReview(context, context.api.Put(ReviewPath(flags->incident_id), body));
      });
}

void AddReviewShow(CLI::App& review, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    bool html = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = review.add_subcommand(
      "show", "Print an incident's post-incident review (Markdown, or HTML with --html)");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  command->add_flag("--html", flags->html,
                    "Print the review rendered to a self-contained HTML page instead");
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        if (!flags->html) {
          return PrintReview(context, context.api.Get(ReviewPath(flags->incident_id)));
        }
        auto html = context.api.GetBytes(ReviewPath(flags->incident_id) + "/html");
        if (!html) {
          return std::unexpected(html.error());
        }
        PrintOut(*html);
        return kExitOk;
      });
}

void AddReviewStatus(CLI::App& review, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string status;
    std::string owner;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = review.add_subcommand(
      "status",
      "Set the review's status (draft, in_review, completed) and optionally its owner; only a "
      "completed review satisfies the audit (engineering lead or the review's owner)");
  command->add_option("ID", flags->incident_id, "Incident id, e.g. INC-1")->required();
  command->add_option("STATUS", flags->status, "draft, in_review or completed")
      ->check(CLI::IsMember({"draft", "in_review", "completed"}));
  command->add_option("--owner", flags->owner, "New owner, a user on the roster")
      ->check(NonEmptyValidator());
  command->parse_complete_callback([flags] {
    if (flags->status.empty() && flags->owner.empty()) {
      throw CLI::ValidationError("give a STATUS, --owner, or both", CLI::ExitCodes::RequiredError);
    }
  });
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = Json::object();
    if (!flags->status.empty()) body["status"] = flags->status;
    if (!flags->owner.empty()) body["owner"] = flags->owner;
    return PrintReviewSummary(context,
                              context.api.Post(ReviewPath(flags->incident_id) + "/status", body));
  });
}

}  // namespace

void AddReviewCommands(CLI::App& app, int& exit_status) {
  auto* review = app.add_subcommand("review", "Write, complete and read post-incident reviews");
  review->require_subcommand(1);
  AddReviewWrite(*review, exit_status);
  AddReviewShow(*review, exit_status);
  AddReviewStatus(*review, exit_status);
}

}  // namespace backout::cli
