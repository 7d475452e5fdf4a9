// Offline verification of a period bundle.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/id_order.h"
#include "evidence/bundle.h"
#include "evidence/bundle_files.h"
#include "evidence/population.h"
#include "ledger/hash.h"
#include "ledger/merkle.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

std::unexpected<core::Error> Corrupt(std::string_view file, std::string_view message) {
  return std::unexpected(
      core::Error{core::ErrorCode::kCorruption, fmt::format("{}: {}", file, message)});
}

core::Result<core::Time> ManifestTime(const json& manifest, const char* key) {
  auto time = core::ParseTime(
      manifest.value(key, json()).is_string() ? manifest[key].get<std::string>() : std::string());
  if (!time) {
    return Corrupt(internal::kManifest, fmt::format("`{}` is not an RFC 3339 time", key));
  }
  return *time;
}

// Returns the start checkpoint when the manifest names one. ledger/start-checkpoint.json must
// equal it and carry the signature of the key in force at its size.
core::Result<std::optional<ledger::Checkpoint>> CheckStart(const internal::SignedFiles& verified,
                                                           const BundleFiles& files,
                                                           core::Time from) {
  const json& named = verified.manifest.value("start_checkpoint", json());
  if (named.is_null()) {
    if (files.contains(internal::kStartCheckpoint)) {
      return Corrupt(internal::kStartCheckpoint, "present, but the manifest names no start");
    }
    return std::nullopt;
  }
  auto start = ledger::Checkpoint::FromJson(internal::ParseFile(files, internal::kStartCheckpoint));
  if (!start) return Corrupt(internal::kStartCheckpoint, "missing or not a checkpoint");
  if (start->ToJson() != named) {
    return Corrupt(internal::kStartCheckpoint,
                   "differs from the start checkpoint the manifest "
                   "names");
  }
  const ledger::PublicKey* key = internal::KeyInForce(verified.keys, start->tree_size);
  if (key == nullptr || !key->Verify(*start)) {
    return Corrupt(internal::kStartCheckpoint,
                   fmt::format("the signature does not verify with the key in force at tree size "
                               "{} ({})",
                               start->tree_size, key == nullptr ? "none" : key->key_id()));
  }
  if (start->time > from) {
    return Corrupt(internal::kStartCheckpoint,
                   fmt::format("was signed at {}, after the period's start {}",
                               core::FormatTime(start->time), core::FormatTime(from)));
  }
  return start;
}

// Checks the consistency proof: the start checkpoint's tree (or the empty log) is a prefix of the
// end checkpoint's tree.
core::Result<void> CheckConsistency(const std::optional<ledger::Checkpoint>& start,
                                    const ledger::Checkpoint& end, const BundleFiles& files) {
  const json proof = internal::ParseFile(files, internal::kConsistency);
  if (proof.is_discarded() || !proof.is_object()) {
    return Corrupt(internal::kConsistency, "missing or not valid JSON");
  }
  const uint64_t old_size = start ? start->tree_size : 0;
  const ledger::Hash old_root = start ? start->root : ledger::RootOf({});
  if (proof.value("old_size", json()) != old_size ||
      proof.value("old_root", json()) != ledger::ToHex(old_root) ||
      proof.value("new_size", json()) != end.tree_size ||
      proof.value("new_root", json()) != ledger::ToHex(end.root)) {
    return Corrupt(internal::kConsistency,
                   fmt::format("is not a proof from the start checkpoint (size {}) to the end "
                               "checkpoint (size {})",
                               old_size, end.tree_size));
  }
  std::vector<ledger::Hash> path;
  for (const json& hex : proof.value("proof", json::array())) {
    auto hash = ledger::HashFromHex(hex.is_string() ? hex.get<std::string>() : "");
    if (!hash) return Corrupt(internal::kConsistency, hash.error().message);
    path.push_back(*hash);
  }
  if (!ledger::VerifyConsistency(old_size, end.tree_size, old_root, end.root, path)) {
    return Corrupt(
        internal::kConsistency,
        fmt::format("the proof does not show the tree of {} entries with root {} to be "
                    "a prefix of the tree of {} entries with root {}: entries of the "
                    "log were removed or altered, or the proof was changed",
                    old_size, ledger::ToHex(old_root), end.tree_size, ledger::ToHex(end.root)));
  }
  return {};
}

// Checks that each incident's checkpoint and the end checkpoint lie on one log: the proof in
// ledger/incident-consistency.json shows the smaller tree to be a prefix of the larger.
core::Result<void> CheckIncidentConsistency(const std::vector<BundleReport>& incidents,
                                            const ledger::Checkpoint& end,
                                            const BundleFiles& files) {
  const json proofs = internal::ParseFile(files, internal::kIncidentConsistency);
  if (proofs.is_discarded() || !proofs.is_object()) {
    return Corrupt(internal::kIncidentConsistency, "missing or not valid JSON");
  }
  const json list = proofs.value("proofs", json::array());
  if (list.size() != incidents.size()) {
    return Corrupt(internal::kIncidentConsistency,
                   fmt::format("has {} proofs for {} incidents", list.size(), incidents.size()));
  }
  for (size_t i = 0; i < incidents.size(); ++i) {
    const ledger::Checkpoint& incident = incidents[i].checkpoint;
    const ledger::Checkpoint& older = incident.tree_size <= end.tree_size ? incident : end;
    const ledger::Checkpoint& newer = incident.tree_size <= end.tree_size ? end : incident;
    const json& item = list[i];
    if (item.value("incident", json()) != incidents[i].incident_id ||
        item.value("old_size", json()) != older.tree_size ||
        item.value("old_root", json()) != ledger::ToHex(older.root) ||
        item.value("new_size", json()) != newer.tree_size ||
        item.value("new_root", json()) != ledger::ToHex(newer.root)) {
      return Corrupt(internal::kIncidentConsistency,
                     fmt::format("proof {} is not between the checkpoint of incident {} and the "
                                 "end checkpoint",
                                 i, incidents[i].incident_id));
    }
    std::vector<ledger::Hash> path;
    for (const json& hex : item.value("proof", json::array())) {
      auto hash = ledger::HashFromHex(hex.is_string() ? hex.get<std::string>() : "");
      if (!hash) return Corrupt(internal::kIncidentConsistency, hash.error().message);
      path.push_back(*hash);
    }
    if (!ledger::VerifyConsistency(older.tree_size, newer.tree_size, older.root, newer.root,
                                   path)) {
      return Corrupt(internal::kIncidentConsistency,
                     fmt::format("the checkpoint of incident {} (size {}) and the end checkpoint "
                                 "(size {}) are not on one log",
                                 incidents[i].incident_id, incident.tree_size, end.tree_size));
    }
  }
  return {};
}

// Verifies each listed incident's folder as a bundle of its own, and rejects any other folder.
core::Result<std::vector<BundleReport>> CheckIncidents(const json& manifest,
                                                       const BundleFiles& files,
                                                       const BundleVerifyOptions& options) {
  std::set<std::string> listed;
  for (const json& id : manifest.value("incidents", json::array())) {
    if (!id.is_string()) return Corrupt(internal::kManifest, "an incidents[] item is not a string");
    listed.insert(id.get<std::string>());
  }
  for (const auto& [path, content] : files) {
    if (!path.starts_with(internal::kIncidentsFolder)) continue;
    const std::string rest = path.substr(std::string_view(internal::kIncidentsFolder).size());
    const std::string id = rest.substr(0, rest.find('/'));
    if (!listed.contains(id)) {
      return Corrupt(path, "belongs to an incident the manifest does not list");
    }
  }

  std::vector<BundleReport> reports;
  for (const std::string& id : listed) {
    const std::string folder = fmt::format("{}{}/", internal::kIncidentsFolder, id);
    BundleFiles nested;
    for (auto it = files.lower_bound(folder); it != files.end() && it->first.starts_with(folder);
         ++it) {
      nested[it->first.substr(folder.size())] = it->second;
    }
    auto report = internal::VerifyIncidentFiles(nested, options);
    if (!report) {
      return std::unexpected(
          core::Error{report.error().code, fmt::format("{}{}", folder, report.error().message)});
    }
    if (report->incident_id != id) {
      return Corrupt(folder + internal::kManifest,
                     fmt::format("names incident {}, not {}", report->incident_id, id));
    }
    reports.push_back(*std::move(report));
  }
  return reports;
}

}  // namespace

core::Result<PeriodReport> VerifyPeriodBundle(std::string_view tar_gz,
                                              const BundleVerifyOptions& options) {
  auto files = internal::ReadBundleFiles(tar_gz);
  if (!files) return std::unexpected(files.error());

  // Step 1: the manifest, the digests of every file (nested ones included), the key chain, the
  // end checkpoint and the inclusion proofs of the policy and key entries.
  auto verified = internal::VerifySignedFiles(*files, kPeriodBundleFormat, options);
  if (!verified) return std::unexpected(verified.error());
  auto from = ManifestTime(verified->manifest, "from");
  if (!from) return std::unexpected(from.error());
  auto to = ManifestTime(verified->manifest, "to");
  if (!to) return std::unexpected(to.error());
  const bool closed = verified->manifest.value("period_closed", false);
  if (closed != (verified->checkpoint.time >= *to)) {
    return Corrupt(internal::kManifest, "period_closed disagrees with the end checkpoint's time");
  }

  // Step 2: the start checkpoint and the consistency proof from it to the end checkpoint.
  auto start = CheckStart(*verified, *files, *from);
  if (!start) return std::unexpected(start.error());
  if (auto consistent = CheckConsistency(*start, verified->checkpoint, *files); !consistent) {
    return std::unexpected(consistent.error());
  }

  // Step 3: every incident folder, and its checkpoint on the same log as the end checkpoint.
  auto incidents = CheckIncidents(verified->manifest, *files, options);
  if (!incidents) return std::unexpected(incidents.error());
  if (auto linked = CheckIncidentConsistency(*incidents, verified->checkpoint, *files); !linked) {
    return std::unexpected(linked.error());
  }

  // Step 4: the derived files agree with what they are derived from.
  const json rows = internal::ParseFile(*files, internal::kPopulationJson);
  if (rows.is_discarded() || !rows.is_array()) {
    return Corrupt(internal::kPopulationJson, "missing or not a JSON array");
  }
  auto csv = files->find(internal::kPopulationCsv);
  if (csv == files->end() || csv->second != PopulationCsv(rows)) {
    return Corrupt(internal::kPopulationCsv,
                   fmt::format("missing or not the CSV form of {}", internal::kPopulationJson));
  }
  std::vector<ledger::Entry> entries;
  for (const internal::BundleEntry& item : verified->entries) entries.push_back(item.entry);
  const json history = internal::PolicyHistory(entries);
  if (internal::ParseFile(*files, internal::kPolicyHistory) != history) {
    return Corrupt(
        internal::kPolicyHistory,
        fmt::format("missing or not the policy.loaded entries of {}", internal::kEntries));
  }

  PeriodReport report;
  report.from = *from;
  report.to = *to;
  report.files = verified->files;
  report.incidents = *std::move(incidents);
  // The bundle's proofs follow the text order of the ids, which the checks above rely on. The
  // report lists incidents in id number order (INC-2 before INC-10), as the store lists them.
  std::ranges::stable_sort(report.incidents, [](const BundleReport& a, const BundleReport& b) {
    return core::IdLess(a.incident_id, b.incident_id);
  });
  report.population_rows = rows.size();
  report.policy_loads = history.size();
  report.ledger_entries = verified->entries.size();
  report.start_checkpoint = *start;
  report.end_checkpoint = verified->checkpoint;
  report.period_closed = closed;
  report.signing_key_id = verified->signing_key_id;
  report.trusted_key_matched = options.trusted_key.has_value();
  return report;
}

}  // namespace backout::evidence
