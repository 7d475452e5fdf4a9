// `backout evidence export|verify`.
#include "cli/evidence_commands.h"

#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "evidence/bundle.h"
#include "evidence/population.h"
#include "ledger/hash.h"

namespace backout::cli {
namespace {

core::Result<void> WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "cannot write '{}': check that its folder exists and is writable", path);
  }
  return {};
}

void AddExport(CLI::App& evidence, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = evidence.add_subcommand(
      "export", "Download an incident's evidence bundle (tar.gz with a signed manifest)");
  command->add_option("INCIDENT", flags->incident_id, "Incident id, e.g. INC-1")->required();
  command->add_option("--out", flags->out, "File to write, e.g. INC-1.tar.gz")->required();
  SetClientCallback(
      *command, flags->client, exit_status, [flags](ClientContext& context) -> core::Result<int> {
        auto bundle = context.api.GetBytes("/api/v1/incidents/" +
                                           EncodeUrlComponent(flags->incident_id) + "/evidence");
        if (!bundle) return std::unexpected(bundle.error());
        if (auto written = WriteBytes(flags->out, *bundle); !written) {
          return std::unexpected(written.error());
        }
        PrintNote(fmt::format("wrote {} ({} bytes, SHA-256 {})", flags->out, bundle->size(),
                              ledger::ToHex(ledger::Sha256(*bundle))));
        return kExitOk;
      });
}

int RunVerify(const std::string& file, const std::string& public_key_file,
              const std::string& output) {
  evidence::BundleVerifyOptions options;
  if (!public_key_file.empty()) {
    auto pem = ReadWholeFile(public_key_file);
    if (!pem) {
      fmt::print(stderr, "error: {}\n", pem.error().message);
      return kExitFailed;
    }
    auto key = ledger::PublicKey::FromPem(*pem);
    if (!key) {
      fmt::print(stderr, "error: --public-key {}: {}\n", public_key_file, key.error().message);
      return kExitFailed;
    }
    options.trusted_key = *key;
  }
  auto bytes = ReadWholeFile(file);
  if (!bytes) {
    fmt::print(stderr, "error: {}\n", bytes.error().message);
    return kExitFailed;
  }
  auto report = evidence::VerifyBundle(*bytes, options);
  if (!report) {
    fmt::print(stderr, "evidence verification FAILED: {}\n", report.error().message);
    return kExitFailed;
  }

  if (output == "json") {
    Json items = Json::array();
    for (const evidence::EvidenceItem& item : report->items) {
      items.push_back({{"number", item.number},
                       {"name", item.name},
                       {"present", item.present},
                       {"detail", item.detail}});
    }
    fmt::print("{}\n", Json{{"verified", true},
                            {"incident", report->incident_id},
                            {"files", report->files},
                            {"ledger_entries", report->ledger_entries},
                            {"checkpoint", report->checkpoint.ToJson()},
                            {"signing_key_id", report->signing_key_id},
                            {"trusted_key_matched", report->trusted_key_matched},
                            {"items", items}}
                           .dump(2));
    return kExitOk;
  }
  fmt::print(
      "bundle verified: incident {}, {} files, {} ledger entries proven against the "
      "checkpoint of {} entries (root {})\n",
      report->incident_id, report->files, report->ledger_entries, report->checkpoint.tree_size,
      ledger::ToHex(report->checkpoint.root));
  fmt::print("signed by key {}{}\n", report->signing_key_id,
             report->trusted_key_matched
                 ? ", introduced by entry 0 as --public-key requires"
                 : " (introduced by the bundle itself; pass --public-key to pin it)");
  fmt::print("SOC 2 evidence items:\n");
  for (const evidence::EvidenceItem& item : report->items) {
    fmt::print("  {}. {:<33} {:<8} {}\n", item.number, item.name,
               item.present ? "present" : "MISSING", item.detail);
  }
  return kExitOk;
}

void AddVerify(CLI::App& evidence, int& exit_status) {
  struct Flags {
    std::string file;
    std::string public_key;
    std::string output = "table";
  };
  auto flags = std::make_shared<Flags>();
  auto* command = evidence.add_subcommand(
      "verify",
      "Check a bundle offline: manifest signature, file digests, checkpoint signature and "
      "inclusion proofs; then list which evidence items it holds");
  command->add_option("FILE", flags->file, "The bundle, a .tar.gz file")
      ->required()
      ->check(CLI::ExistingFile);
  command
      ->add_option("--public-key", flags->public_key,
                   "PEM file of the ledger's first Ed25519 key, obtained from the operator out of "
                   "band; without it the bundle's own key is trusted")
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", flags->output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  command->callback([flags, &exit_status] {
    exit_status = RunVerify(flags->file, flags->public_key, flags->output);
  });
}

void AddPopulation(CLI::App& evidence, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string from;
    std::string to;
    std::string format = "csv";
  };
  auto flags = std::make_shared<Flags>();
  auto* command = evidence.add_subcommand(
      "population",
      "Print every change and rollback of a period, one row each, for sampling by an auditor");
  command->add_option("--from", flags->from, "Start of the period (RFC 3339), inclusive")
      ->check(TimeValidator());
  command->add_option("--to", flags->to, "End of the period (RFC 3339), exclusive")
      ->check(TimeValidator());
  command
      ->add_option("--url", flags->client.connection.url,
                   "Base URL of the Backout server, e.g. http://127.0.0.1:8470")
      ->envname("BACKOUT_URL")
      ->capture_default_str();
  command->add_option("--token", flags->client.connection.token, "Bearer token of the caller")
      ->envname("BACKOUT_TOKEN");
  command->add_option("-o,--output", flags->format, "Output format: csv or json")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  command->callback([flags, &exit_status] {
    exit_status = RunClient(flags->client, [flags](ClientContext& context) -> core::Result<int> {
      auto answer = context.api.Get(
          WithQuery("/api/v1/evidence/population", {{"from", flags->from}, {"to", flags->to}}));
      if (!answer) return std::unexpected(answer.error());
      const Json rows = answer->value("items", Json::array());
      if (flags->format == "json") {
        PrintOut(rows.dump(2) + "\n");
      } else {
        PrintOut(evidence::PopulationCsv(rows));
      }
      return kExitOk;
    });
  });
}

}  // namespace

void AddEvidenceCommands(CLI::App& app, int& exit_status) {
  auto* evidence =
      app.add_subcommand("evidence", "Export and verify evidence bundles for auditors");
  evidence->require_subcommand(1);
  AddExport(*evidence, exit_status);
  AddVerify(*evidence, exit_status);
  AddPopulation(*evidence, exit_status);
}

}  // namespace backout::cli
