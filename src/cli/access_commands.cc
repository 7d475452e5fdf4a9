// `backout access review [--attest]`.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "cli/client_commands.h"
#include "cli/json.h"

namespace backout::cli {
namespace {

std::string Names(const Json& list) {
  std::string out;
  for (const Json& name : list) {
    if (!out.empty()) out += ", ";
    out += name.is_string() ? name.get<std::string>() : name.dump();
  }
  return out.empty() ? "-" : out;
}

// Prints the review as tables: the grants, services with deciders and executors (granted and on
// the roster), the bypass paths as the documented limit, then the findings and the digest.
void PrintAccessTables(const Json& review) {
  Json grants = Json::array();
  for (const Json& grant : review.value("grants", Json::array())) {
    grants.push_back({{"user", StringField(grant, "user")},
                      {"roles", Names(grant.value("roles", Json::array()))},
                      {"services", Names(grant.value("services", Json::array()))},
                      {"tokens", Names(grant.value("tokens", Json::array()))},
                      {"on_roster", grant.value("on_roster", false) ? "yes" : "no"}});
  }
  PrintOut("Grants (users stored through the API, with their live tokens):\n");
  PrintOut(RenderTable(grants, {{"USER", "user"},
                                {"ROLES", "roles"},
                                {"SERVICES", "services"},
                                {"LIVE TOKENS", "tokens"},
                                {"ON ROSTER", "on_roster"}}));
  PrintOut("\nServices:\n");

  Json services = Json::array();
  Json bypass = Json::array();
  for (const Json& service : review.value("services", Json::array())) {
    services.push_back(
        {{"service", StringField(service, "service")},
         {"provider", StringField(service, "provider")},
         {"deciders", Names(service.value("deciders", Json::array()))},
         {"executors", Names(service.value("executors", Json::array()))},
         {"roster_deciders", Names(service.value("roster_deciders", Json::array()))},
         {"roster_executors", Names(service.value("roster_executors", Json::array()))}});
    bypass.push_back(
        {{"service", StringField(service, "service")}, {"bypass", StringField(service, "bypass")}});
  }
  PrintOut(RenderTable(services, {{"SERVICE", "service"},
                                  {"PROVIDER", "provider"},
                                  {"DECIDERS", "deciders"},
                                  {"EXECUTORS", "executors"},
                                  {"ROSTER DECIDERS", "roster_deciders"},
                                  {"ROSTER EXECUTORS", "roster_executors"}}));
  PrintOut("\nBypass paths (a documented limit: who could roll back with the tool directly):\n");
  PrintOut(RenderTable(bypass, {{"SERVICE", "service"}, {"WHO", "bypass"}}));
  const Json findings = review.value("findings", Json::array());
  if (!findings.empty()) {
    PrintOut("\nFindings:\n");
    PrintOut(RenderTable(findings, {{"KIND", "kind"}, {"USER", "user"}, {"FINDING", "message"}}));
  }
  PrintNote(fmt::format("{} finding(s); list sha256 {}\n", findings.size(),
                        StringField(review, "sha256")));
}

void AddAccessReview(CLI::App& access, int& exit_status) {
  struct Flags {
    ClientFlags client;
    bool attest = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = access.add_subcommand(
      "review",
      "Show who can decide and who can execute rollbacks of each service, from the live grants, "
      "against the roster, with each provider's bypass paths. Exit status: 0 grants match the "
      "roster, 1 they differ, 2 usage error, 3 could not check (server unreachable, token "
      "rejected, role missing, server error)");
  command->add_flag("--attest", flags->attest,
                    "Record in the ledger that you reviewed this exact list (its SHA-256); admin "
                    "or engineering lead");
  SetCheckCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        auto review = context.api.Get("/api/v1/access/review");
        if (!review) return std::unexpected(review.error());
        Json out = *review;
        if (flags->attest) {
          auto attestation = context.api.Post("/api/v1/access/review/attestations", Json::object());
          if (!attestation) return std::unexpected(attestation.error());
          out["attestation"] = *attestation;
        }
        if (context.format == OutputFormat::kTable) {
          PrintAccessTables(*review);
          if (flags->attest) {
            PrintNote(fmt::format("attestation {} recorded by {} at {} for sha256 {}\n",
                                  StringField(out["attestation"], "id"),
                                  StringField(out["attestation"], "attested_by"),
                                  StringField(out["attestation"], "attested_at"),
                                  StringField(out["attestation"], "sha256")));
          }
        } else {
          PrintOut(RenderSingle(out, context.format));
        }
        return review->value("findings", Json::array()).empty() ? kExitOk : kExitFailed;
      });
}

}  // namespace

void AddAccessCommands(CLI::App& app, int& exit_status) {
  auto* access = app.add_subcommand("access", "Review who may roll back what");
  access->require_subcommand(1);
  AddAccessReview(*access, exit_status);
}

}  // namespace backout::cli
