// `backout evidence export|verify`.
#include "cli/evidence_commands.h"

#include <fstream>
#include <memory>
#include <regex>
#include <string>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/client_command.h"
#include "evidence/archive.h"
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

// Accepts an RFC 3339 time, or a date (YYYY-MM-DD) meaning the start of that day in UTC, and
// rewrites a date to its RFC 3339 form.
CLI::Validator TimeOrDateValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        static const std::regex kDate("[0-9]{4}-[0-9]{2}-[0-9]{2}");
        const std::string time = std::regex_match(text, kDate) ? text + "T00:00:00Z" : text;
        auto parsed = core::ParseTime(time);
        if (!parsed) {
          return fmt::format(
              "'{}' is neither a date (2026-12-31) nor an RFC 3339 time "
              "(2026-12-31T08:00:00Z)",
              text);
        }
        text = time;
        return std::string();
      },
      "DATE|TIME", "date or RFC 3339 time");
}

// Checks that exactly one of an incident id and a period is given, and that the period is not
// empty. Otherwise it throws a usage error that names the form to use.
void CheckExportForm(const std::string& incident_id, const std::string& from,
                     const std::string& to) {
  const bool period = !from.empty() || !to.empty();
  if (!incident_id.empty() && period) {
    throw CLI::ValidationError(
        "export",
        "give either an INCIDENT id or --from and --to, not both: an incident's bundle "
        "and a period's bundle are separate files");
  }
  if (incident_id.empty() && !period) {
    throw CLI::ValidationError(
        "export",
        "give an INCIDENT id (`evidence export INC-7 --out INC-7.tar.gz`) or a period "
        "(`evidence export --from 2026-10-01 --to 2027-01-01 --out q4.tar.gz`)");
  }
  if (period && (from.empty() || to.empty())) {
    throw CLI::ValidationError("export", "a period needs both --from and --to (--to is exclusive)");
  }
  CheckPeriodOrder(from, to);
}

void AddExport(CLI::App& evidence, int& exit_status) {
  struct Flags {
    ClientFlags client;
    std::string incident_id;
    std::string from;
    std::string to;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = evidence.add_subcommand(
      "export",
      "Download the evidence bundle (tar.gz with a signed manifest) of one incident, or of a "
      "period with --from and --to");
  command->add_option("INCIDENT", flags->incident_id, "Incident id, e.g. INC-1");
  command
      ->add_option("--from", flags->from,
                   "Start of the period, inclusive: a date (UTC midnight) or an RFC 3339 time")
      ->transform(TimeOrDateValidator());
  command
      ->add_option("--to", flags->to,
                   "End of the period, exclusive: a date (UTC midnight) or an RFC 3339 time")
      ->transform(TimeOrDateValidator());
  command->add_option("--out", flags->out, "File to write, e.g. INC-1.tar.gz")->required();
  AddClientFlags(*command, flags->client);
  const ClientBody body = [flags](ClientContext& context) -> core::Result<int> {
    const bool period = flags->incident_id.empty();
    const std::string path =
        period ? WithQuery("/api/v1/evidence", {{"from", flags->from}, {"to", flags->to}})
               : "/api/v1/incidents/" + EncodeUrlComponent(flags->incident_id) + "/evidence";
    auto bundle = context.api.GetBytes(path);
    if (!bundle) return std::unexpected(bundle.error());
    if (auto written = WriteBytes(flags->out, *bundle); !written) {
      return std::unexpected(written.error());
    }
    PrintNote(fmt::format("wrote {} ({} bytes, SHA-256 {})\n", flags->out, bundle->size(),
                          ledger::ToHex(ledger::Sha256(*bundle))));
    return kExitOk;
  };
  // The form is checked before connecting, so a usage error exits 2 and names the fix.
  command->callback([flags, body, &exit_status] {
    CheckExportForm(flags->incident_id, flags->from, flags->to);
    exit_status = RunClient(flags->client, body);
  });
}

Json ItemsJson(const std::vector<evidence::EvidenceItem>& items) {
  Json out = Json::array();
  for (const evidence::EvidenceItem& item : items) {
    out.push_back({{"number", item.number},
                   {"name", item.name},
                   {"present", item.present},
                   {"detail", item.detail}});
  }
  return out;
}

// The names of the evidence items `report` lacks, or "none".
std::string MissingItems(const evidence::BundleReport& report) {
  std::string missing;
  for (const evidence::EvidenceItem& item : report.items) {
    if (item.present) continue;
    missing += fmt::format("{}{}. {}", missing.empty() ? "" : ", ", item.number, item.name);
  }
  return missing.empty() ? "none" : missing;
}

int RunVerifyPeriod(const std::string& bytes, const evidence::BundleVerifyOptions& options,
                    const std::string& output) {
  auto report = evidence::VerifyPeriodBundle(bytes, options);
  if (!report) {
    fmt::print(stderr, "evidence verification FAILED: {}\n", report.error().message);
    return kExitFailed;
  }
  const std::optional<ledger::Checkpoint>& start = report->start_checkpoint;
  if (output == "json") {
    Json incidents = Json::array();
    for (const evidence::BundleReport& incident : report->incidents) {
      incidents.push_back({{"incident", incident.incident_id},
                           {"files", incident.files},
                           {"ledger_entries", incident.ledger_entries},
                           {"checkpoint", incident.checkpoint.ToJson()},
                           {"items", ItemsJson(incident.items)}});
    }
    fmt::print("{}\n", Json{{"verified", true},
                            {"format", evidence::kPeriodBundleFormat},
                            {"from", core::FormatTime(report->from)},
                            {"to", core::FormatTime(report->to)},
                            {"files", report->files},
                            {"incidents", incidents},
                            {"population_rows", report->population_rows},
                            {"policy_loads", report->policy_loads},
                            {"ledger_entries", report->ledger_entries},
                            {"start_checkpoint", start ? Json(start->ToJson()) : Json()},
                            {"end_checkpoint", report->end_checkpoint.ToJson()},
                            {"period_closed", report->period_closed},
                            {"signing_key_id", report->signing_key_id},
                            {"trusted_key_matched", report->trusted_key_matched}}
                           .dump(2));
    return kExitOk;
  }
  fmt::print(
      "period bundle verified: {} to {}, {} files, {} incidents, {} population rows, {} "
      "config loads\n",
      core::FormatTime(report->from), core::FormatTime(report->to), report->files,
      report->incidents.size(), report->population_rows, report->policy_loads);
  fmt::print(
      "consistency proven from the checkpoint of {} entries ({}) to the checkpoint of {} "
      "entries ({}, root {})\n",
      start ? start->tree_size : 0,
      start ? core::FormatTime(start->time) : std::string("the empty log"),
      report->end_checkpoint.tree_size, core::FormatTime(report->end_checkpoint.time),
      ledger::ToHex(report->end_checkpoint.root));
  if (!report->period_closed) {
    fmt::print(
        "NOTE: no checkpoint at or after the period's end existed at export; entries "
        "after {} are not covered\n",
        core::FormatTime(report->end_checkpoint.time));
  }
  fmt::print("signed by key {}{}\n", report->signing_key_id,
             report->trusted_key_matched
                 ? ", introduced by entry 0 as --public-key requires"
                 : " (introduced by the bundle itself; pass --public-key to pin it)");
  for (const evidence::BundleReport& incident : report->incidents) {
    fmt::print("  {:<12} {} entries proven, missing evidence items: {}\n", incident.incident_id,
               incident.ledger_entries, MissingItems(incident));
  }
  return kExitOk;
}

int RunVerify(const std::string& file, const std::string& public_key_file,
              const std::string& output) {
  evidence::BundleVerifyOptions options;
  if (!public_key_file.empty()) {
    auto pem = ReadFileUpTo(public_key_file, kMaxKeyFileBytes);
    if (!pem) {
      fmt::print(stderr, "error: {}\n", pem.error().message);
      return kExitUsage;
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
    return kExitUsage;
  }
  // Without libarchive the bundle cannot be opened at all. That is a check that could not be
  // made (3), not a bundle that failed verification (1).
  if (auto loaded = evidence::LoadLibarchive(); !loaded) {
    fmt::print(stderr, "error: the bundle could not be checked: {}\n", loaded.error().message);
    return kExitCouldNotCheck;
  }
  auto format = evidence::BundleFormatOf(*bytes);
  if (format && *format == evidence::kPeriodBundleFormat) {
    return RunVerifyPeriod(*bytes, options, output);
  }
  auto report = evidence::VerifyBundle(*bytes, options);
  if (!report) {
    fmt::print(stderr, "evidence verification FAILED: {}\n", report.error().message);
    return kExitFailed;
  }

  if (output == "json") {
    const Json items = ItemsJson(report->items);
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
      "Check an incident or period bundle offline: manifest signature, file digests, checkpoint "
      "signatures, inclusion proofs and, for a period, the consistency proof; then list which "
      "evidence items each incident holds. Exit status: 0 verified, 1 verification failed, 2 "
      "usage error, 3 the check could not be made (libarchive cannot be loaded)");
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
  command
      ->add_option("--from", flags->from,
                   "Start of the period, inclusive: a date (UTC midnight) or an RFC 3339 time")
      ->transform(TimeOrDateValidator());
  command
      ->add_option("--to", flags->to,
                   "End of the period, exclusive: a date (UTC midnight) or an RFC 3339 time")
      ->transform(TimeOrDateValidator());
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
    CheckPeriodOrder(flags->from, flags->to);
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
