// `backout incident open|list|show|assess|decide|rollback|confirm|validate|document|close`.
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/incident_view.h"
#include "cli/job_wait.h"
#include "cli/request_fields.h"
#include "core/attachment_limits.h"
#include "core/time.h"

namespace backout::cli {
namespace {

std::string IncidentPath(const std::string& id) {
  return "/api/v1/incidents/" + EncodeUrlComponent(id);
}

// Prints an incident: in table format its identifying fields and then only `sections` (the part
// the command changed), in JSON or YAML the whole incident.
core::Result<int> PrintIncident(const ClientContext& context, const core::Result<Json>& incident,
                                std::initializer_list<const char*> sections) {
  if (!incident) {
    return std::unexpected(incident.error());
  }
  if (context.format != OutputFormat::kTable) {
    PrintOut(RenderSingle(*incident, context.format));
    return kExitOk;
  }
  Json summary = Json::object();
  for (const char* key : {"id", "service", "severity", "title", "state"}) {
    if (incident->contains(key)) {
      summary[key] = (*incident)[key];
    }
  }
  for (const char* key : sections) {
    if (incident->contains(key)) {
      summary[key] = (*incident)[key];
    }
  }
  PrintOut(RenderObject(summary));
  return kExitOk;
}

// Options shared by the commands that start a job (rollback, validate).
struct WaitFlags {
  bool wait = false;
  std::string wait_timeout = "0s";
};

void AddWaitFlags(CLI::App& command, WaitFlags& flags) {
  command.add_flag("--wait", flags.wait,
                   "Wait until the job ends, printing its progress to stderr every time it "
                   "changes; exit 1 unless it ends well");
  command
      .add_option("--wait-timeout", flags.wait_timeout,
                  "With --wait, stop waiting after this long (e.g. 90s, 10m; the job keeps "
                  "running on the server); 0s waits until the job ends")
      ->check(DurationValidator())
      ->capture_default_str();
}

// Shows a started job. With --wait it follows the job to its end and prints the finished job.
// Without --wait it prints the job id and how to follow it.
core::Result<int> FollowJob(const ClientContext& context, const WaitFlags& flags,
                            const std::string& incident_id, const Json& started) {
  const std::string job_id = IdField(started, "job_id");
  if (!flags.wait) {
    PrintOut(RenderSingle(started, context.format));
    if (context.format == OutputFormat::kTable) {
      PrintNote(
          fmt::format("Follow it with `backout incident show {}`, or pass --wait.\n", incident_id));
    }
    return kExitOk;
  }
  if (job_id.empty()) {
    return core::MakeError(core::ErrorCode::kInternal,
                           "the server's answer names no job_id to wait for: {}", started.dump());
  }

  JobWaitOptions options;
  // The validator on --wait-timeout already accepted the text.
  options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      core::ParseDuration(flags.wait_timeout).value_or(core::Duration{0}));
  auto job = WaitForJob(context.api, job_id, options);
  if (!job) {
    return std::unexpected(job.error());
  }
  PrintOut(RenderSingle(*job, context.format));
  if (IsJobSuccessful(*job)) {
    return kExitOk;
  }
  std::string ending = StringField(*job, "outcome");
  if (ending.empty()) {
    ending = StringField(*job, "state");
  }
  if (const std::string message = StringField(*job, "message"); !message.empty()) {
    ending += " (" + message + ")";
  }
  PrintNote(fmt::format("error: job {} ended {}; see `backout incident show {}`\n", job_id, ending,
                        incident_id));
  if (StringField(*job, "outcome") == "interrupted") {
    PrintNote(fmt::format(
        "Check the deployment tool, then record what happened with `backout incident confirm {} "
        "--happened|--did-not-happen --reason TEXT`.\n",
        incident_id));
  }
  return kExitFailed;
}

void AddIncidentOpen(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string service;
    std::string severity;
    std::string title;
    std::string suspected_change;
    std::string ticket;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand("open", "Open an incident on a service");
  command->add_option("--service", flags->service, "Service that is failing")->required();
  command->add_option("--severity", flags->severity, "Severity from sev1 (most severe) to sev4")
      ->required()
      ->check(CLI::IsMember({"sev1", "sev2", "sev3", "sev4"}));
  command->add_option("--title", flags->title, "One-line summary of what is wrong")->required();
  command->add_option("--suspected-change", flags->suspected_change,
                      "Id of the change suspected to cause it (from `change list`)");
  command->add_option("--ticket", flags->ticket, "External incident ticket, e.g. a key or URL");
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = {
        {"service", flags->service}, {"severity", flags->severity}, {"title", flags->title}};
    SetIfNotEmpty(body, "suspected_change", flags->suspected_change);
    SetIfNotEmpty(body, "external_ticket", flags->ticket);
    return PrintIncident(context, context.api.Post("/api/v1/incidents", body),
                         {"suspected_change_id", "external_ticket", "opened_at"});
  });
}

void AddIncidentList(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string service;
    std::string state;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand("list", "List incidents in the order recorded");
  command->add_option("--service", flags->service, "Show only incidents of this service")
      ->check(NonEmptyValidator());
  command
      ->add_option("--state", flags->state,
                   "Show only incidents in this state, e.g. assessing or closed")
      ->check(NonEmptyValidator());
  command->add_option("--limit", flags->limit, "Show at most this many incidents; 0 shows all")
      ->check(LimitValidator())
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    const std::string path =
        WithQuery("/api/v1/incidents", {{"service", flags->service}, {"state", flags->state}});
    return PrintList(context, context.api.GetAll(path, flags->limit),
                     {{"ID", "id"},
                      {"SERVICE", "service"},
                      {"SEVERITY", "severity"},
                      {"STATE", "state"},
                      {"OPENED", "opened_at"},
                      {"TITLE", "title"}});
  });
}

void AddIncidentShow(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "show", "Show a whole incident: assessment, decisions, rollbacks, validations, timeline");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        auto incident = context.api.Get(IncidentPath(flags->id));
        if (!incident) {
          return std::unexpected(incident.error());
        }
        PrintOut(context.format == OutputFormat::kTable ? RenderIncidentView(*incident)
                                                        : RenderSingle(*incident, context.format));
        return kExitOk;
      });
}

void AddIncidentAssess(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    std::string target;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "assess",
      "Compute the impact and the rollback plan with its digest (engineering lead); the digest "
      "is what `incident decide` approves");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  command->add_option("--target", flags->target,
                      "Version to roll back to; default: the last validated-good change before "
                      "the suspected one, else the provider's own rule");
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = Json::object();
    SetIfNotEmpty(body, "target_version", flags->target);
    return PrintIncident(context, context.api.Post(IncidentPath(flags->id) + "/assess", body),
                         {"assessment"});
  });
}

void AddIncidentDecide(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    bool go = false;
    bool no_go = false;
    std::string reason;
    std::string override_reason;
    std::string digest;
    bool retroactive = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "decide", "Approve (--go) or reject (--no-go) the assessed rollback plan (engineering lead)");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  auto* decision = command->add_option_group("decision", "The decision (one is needed)");
  decision->add_flag("--go", flags->go, "Approve rolling back with the assessed plan");
  decision->add_flag("--no-go", flags->no_go, "Reject rolling back; the reason is documented");
  decision->require_option(1);

  command->add_option("--reason", flags->reason, "Why; kept with the decision in the ledger")
      ->required();
  command->add_option("--override-reason", flags->override_reason,
                      "Why to go ahead even though an irreversible migration lies between the "
                      "target and the current version");
  command->add_option("--digest", flags->digest,
                      "Digest of the plan being approved, as printed by `incident assess`; "
                      "default: the server's current assessment");
  command->add_flag("--retroactive", flags->retroactive,
                    "Approve after the fact a rollback run with --emergency (by a lead other than "
                    "its executor)");

  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = {{"decision", flags->go ? "go" : "no_go"}, {"reason", flags->reason}};
    SetIfNotEmpty(body, "approved_digest", flags->digest);
    SetIfNotEmpty(body, "override_reason", flags->override_reason);
    if (flags->retroactive) {
      body["retroactive"] = true;
    }
    return PrintIncident(context, context.api.Post(IncidentPath(flags->id) + "/decision", body),
                         {"decisions"});
  });
}

void AddIncidentRollback(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    bool emergency = false;
    std::string reason;
    WaitFlags wait;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "rollback",
      "Run the approved rollback plan as a durable job on the server (devops engineer granted "
      "the service)");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  auto* emergency = command->add_flag(
      "--emergency", flags->emergency,
      "Break glass: roll back without a go decision; the incident is flagged and needs a "
      "retroactive approval by another engineering lead");
  auto* reason = command->add_option("--reason", flags->reason,
                                     "Why the emergency cannot wait for a decision");
  emergency->needs(reason);
  AddWaitFlags(*command, flags->wait);
  SetClientCallback(*command, flags->client, exit_status,
                    [flags](ClientContext& context) -> core::Result<int> {
                      Json body = {{"emergency", flags->emergency}};
                      SetIfNotEmpty(body, "reason", flags->reason);
                      auto started = context.api.Post(IncidentPath(flags->id) + "/rollback", body);
                      if (!started) {
                        return std::unexpected(started.error());
                      }
                      return FollowJob(context, flags->wait, flags->id, *started);
                    });
}

void AddIncidentConfirm(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    bool happened = false;
    bool did_not_happen = false;
    std::string reason;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "confirm",
      "State whether an interrupted rollback took effect, after checking the tool itself");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  auto* verdict = command->add_option_group("verdict", "What the tool shows (one is needed)");
  verdict->add_flag("--happened", flags->happened,
                    "The rollback took effect: the incident moves on to validation");
  verdict->add_flag("--did-not-happen", flags->did_not_happen,
                    "The rollback did not take effect: the incident returns to assessment");
  verdict->require_option(1);
  command->add_option("--reason", flags->reason, "How it was checked, e.g. what the tool showed")
      ->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    Json body = {{"happened", flags->happened}, {"reason", flags->reason}};
    return PrintIncident(context, context.api.Post(IncidentPath(flags->id) + "/confirm", body),
                         {"rollbacks"});
  });
}

void AddIncidentValidate(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    WaitFlags wait;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "validate",
      "Run the service's checks after a rollback as a job; the finding is recovered, "
      "not_recovered or not_validated");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  AddWaitFlags(*command, flags->wait);
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        auto started = context.api.Post(IncidentPath(flags->id) + "/validate", Json::object());
        if (!started) {
          return std::unexpected(started.error());
        }
        return FollowJob(context, flags->wait, flags->id, *started);
      });
}

// Reads the --attach files of `incident document` as the request's attachments. Each file is
// checked against the limit before it is read, and the contents may total at most
// core::kMaxDocumentAttachmentBytes, which the server enforces too.
core::Result<Json> ReadDocumentAttachments(const std::vector<std::string>& paths) {
  Json attachments = Json::array();
  size_t total_bytes = 0;
  for (const std::string& path : paths) {
    auto content = ReadFileUpTo(path, core::kMaxDocumentAttachmentBytes);
    if (!content) {
      return std::unexpected(content.error());
    }
    total_bytes += content->size();
    if (total_bytes > core::kMaxDocumentAttachmentBytes) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "--attach {} brings the total to {} bytes, over the limit of {} bytes "
                             "for the attachments of one request; attach fewer or smaller files",
                             path, total_bytes, core::kMaxDocumentAttachmentBytes);
    }
    attachments.push_back({{"name", std::filesystem::path(path).filename().string()},
                           {"content_base64", EncodeBase64(*content)}});
  }
  return attachments;
}

void AddIncidentDocument(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
    std::string root_cause;
    std::vector<std::string> factors;
    std::vector<std::string> attachments;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "document", "Record the root cause, contributing factors and attachments");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  command->add_option("--root-cause", flags->root_cause, "What caused the incident")->required();
  command->add_option("--factor", flags->factors, "A contributing factor; repeat for several");
  command
      ->add_option("--attach", flags->attachments,
                   "File to attach, e.g. a log excerpt; stored by its digest; repeat for several. "
                   "The files total at most 10 MiB (10485760 bytes)")
      ->check(CLI::ExistingFile);
  SetClientCallback(
      *command, flags->client, exit_status,
      [flags](ClientContext& context) -> core::Result<int> {
        auto attachments = ReadDocumentAttachments(flags->attachments);
        if (!attachments) {
          return std::unexpected(attachments.error());
        }
        Json body = {{"root_cause", flags->root_cause},
                     {"contributing_factors", flags->factors},
                     {"attachments", *attachments}};
        return PrintIncident(context, context.api.Post(IncidentPath(flags->id) + "/document", body),
                             {"root_cause", "contributing_factors", "attachments"});
      },
      UsageErrorStatus);
}

void AddIncidentClose(CLI::App& incident, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string id;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = incident.add_subcommand(
      "close",
      "Close a complete incident (engineering lead): it needs a root cause, a recovered "
      "validation or a documented no-go, a review and its action items");
  command->add_option("ID", flags->id, "Incident id, e.g. INC-1")->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintIncident(context,
                         context.api.Post(IncidentPath(flags->id) + "/close", Json::object()),
                         {"closed_by", "closed_at"});
  });
}

}  // namespace

void AddIncidentCommands(CLI::App& app, int& exit_status) {
  auto* incident = app.add_subcommand(
      "incident",
      "Drive an incident from open through assessment, rollback and validation to close");
  incident->require_subcommand(1);
  AddIncidentOpen(*incident, exit_status);
  AddIncidentList(*incident, exit_status);
  AddIncidentShow(*incident, exit_status);
  AddIncidentAssess(*incident, exit_status);
  AddIncidentDecide(*incident, exit_status);
  AddIncidentRollback(*incident, exit_status);
  AddIncidentConfirm(*incident, exit_status);
  AddIncidentValidate(*incident, exit_status);
  AddIncidentDocument(*incident, exit_status);
  AddIncidentClose(*incident, exit_status);
}

}  // namespace backout::cli
