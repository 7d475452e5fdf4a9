// `backout user create|list` and `backout token revoke`.
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

const std::vector<std::string> kRoles = {"admin",   "engineering-lead", "devops-engineer",
                                         "auditor", "viewer",           "ci"};

void AddUserCreate(CLI::App& user, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string name;
    std::vector<std::string> roles;
    std::vector<std::string> services;
    std::string expires;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = user.add_subcommand(
      "create",
      "Grant a user from the server config's roster one or more roles and print a new token for "
      "them (shown once)");
  command
      ->add_option("NAME", flags->name, "User name, as listed under `users` in the server config")
      ->required();
  command
      ->add_option("--role", flags->roles,
                   "Role to grant: admin, engineering-lead, devops-engineer, auditor, viewer or "
                   "ci; repeat for several")
      ->required()
      ->check(CLI::IsMember(kRoles));
  command->add_option("--service", flags->services,
                      "Service the grant covers (a devops-engineer may roll back only the "
                      "services granted); repeat for several");
  command
      ->add_option("--expires", flags->expires,
                   "Time the token stops working, RFC 3339 UTC (e.g. 2027-01-31T00:00:00Z); "
                   "default: it does not expire")
      ->check(TimeValidator());

  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        Json body = {{"name", flags->name}, {"roles", flags->roles}, {"services", flags->services}};
        SetIfNotEmpty(body, "expires_at", flags->expires);
        auto created = context.api.Post("/api/v1/users", body);
        if (!created) {
          return std::unexpected(created.error());
        }
        if (context.format != OutputFormat::kTable) {
          PrintOut(RenderSingle(*created, context.format));
          return kExitOk;
        }
        Json user = Json::object();
        if (created->is_object() && created->contains("user") && (*created)["user"].is_object()) {
          user = (*created)["user"];
        }
        user["token_id"] = StringField(*created, "token_id");
        user["token"] = StringField(*created, "token");
        PrintOut(RenderObject(user));
        PrintNote(
            "Store the token now: the server keeps only its hash and cannot show "
            "it again.\n");
        return kExitOk;
      });
}

void AddUserList(CLI::App& user, int& exit_status) {
  struct Flags {
    ClientFlags client;
    size_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = user.add_subcommand(
      "list", "List users with their roles and the services granted to them, by name");
  command->add_option("--limit", flags->limit, "Show at most this many users; 0 shows all")
      ->capture_default_str();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintList(
        context, context.api.GetAll("/api/v1/users", flags->limit),
        {{"NAME", "name"}, {"ROLES", "roles"}, {"SERVICES", "services"}, {"ACTIVE", "active"}});
  });
}

void AddTokenRevoke(CLI::App& token, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string token_id;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = token.add_subcommand(
      "revoke", "Revoke a token so it is refused from now on (admins any, others their own)");
  command
      ->add_option("TOKEN_ID", flags->token_id,
                   "Token id as printed by `backout user create`, e.g. tok-3 (not the secret)")
      ->required();
  SetClientCallback(*command, flags->client, exit_status, [flags](ClientContext& context) {
    return PrintSingle(context,
                       context.api.Delete("/api/v1/tokens/" + EncodeUrlComponent(flags->token_id)));
  });
}

}  // namespace

void AddUserCommands(CLI::App& app, int& exit_status) {
  auto* user = app.add_subcommand("user", "Grant users roles and list them");
  user->require_subcommand(1);
  AddUserCreate(*user, exit_status);
  AddUserList(*user, exit_status);

  auto* token = app.add_subcommand("token", "Manage API tokens");
  token->require_subcommand(1);
  AddTokenRevoke(*token, exit_status);
}

}  // namespace backout::cli
