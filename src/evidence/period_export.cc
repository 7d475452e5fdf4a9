// Export of a period's evidence: its incidents, population, policies in force and a consistency
// proof between the checkpoints around it.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/domain.h"
#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "evidence/bundle_files.h"
#include "evidence/population.h"
#include "ledger/canonical.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

constexpr uint64_t kReadChunk = 4096;

bool IsKeyEntry(std::string_view action) {
  return action == "ledger.key_introduced" || action == "ledger.key_rotated";
}

// The checkpoints that bound the period, and the log entries the bundle proves against the end.
struct PeriodLedger {
  std::optional<ledger::Checkpoint> start;  // none when the log's first checkpoint is later
  ledger::Checkpoint end;
  bool closed = false;                            // end.time >= to
  std::vector<ledger::StoredEntry> entries;       // key entries and policy loads, in sequence order
  std::vector<std::vector<ledger::Hash>> proofs;  // inclusion in the end checkpoint's tree
  std::vector<ledger::Hash> consistency;          // from start (or the empty log) to end
  std::set<std::string> key_ids;                  // keys introduced in the end checkpoint's tree
  std::vector<ledger::Hash> leaves;               // leaf hashes of the whole log
};

// A proof that the smaller of an incident bundle's checkpoint and the end checkpoint is a prefix
// of the larger, so the incident's entries belong to the same log as the period's.
core::Result<json> IncidentConsistency(const std::string& incident_id,
                                       const ledger::Checkpoint& incident,
                                       const PeriodLedger& selection) {
  const ledger::Checkpoint& end = selection.end;
  const ledger::Checkpoint& older = incident.tree_size <= end.tree_size ? incident : end;
  const ledger::Checkpoint& newer = incident.tree_size <= end.tree_size ? end : incident;
  if (newer.tree_size > selection.leaves.size()) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "the checkpoint of incident {} covers {} entries, more than the {} "
                           "read; run `backout ledger verify`",
                           incident_id, newer.tree_size, selection.leaves.size());
  }
  auto proof = ledger::ConsistencyProof(
      older.tree_size, std::span<const ledger::Hash>(selection.leaves).first(newer.tree_size));
  if (!proof) return std::unexpected(proof.error());
  json path = json::array();
  for (const ledger::Hash& hash : *proof) path.push_back(ledger::ToHex(hash));
  return json{{"incident", incident_id},
              {"old_size", older.tree_size},
              {"old_root", ledger::ToHex(older.root)},
              {"new_size", newer.tree_size},
              {"new_root", ledger::ToHex(newer.root)},
              {"proof", path}};
}

// Picks the last checkpoint at or before `from` and the first at or after `to`, or the latest one
// when none is that late. Stored checkpoints only grow, so later in time never means smaller.
core::Result<void> ChooseCheckpoints(store::Store& store, uint64_t entry_count, core::Time from,
                                     core::Time to, PeriodLedger& out) {
  auto checkpoints = store.ReadCheckpoints();
  if (!checkpoints) return std::unexpected(checkpoints.error());
  const ledger::Checkpoint* start = nullptr;
  const ledger::Checkpoint* end = nullptr;
  const ledger::Checkpoint* latest = nullptr;
  for (const ledger::Checkpoint& checkpoint : *checkpoints) {
    if (checkpoint.tree_size > entry_count) continue;
    if (checkpoint.time <= from && (start == nullptr || checkpoint.tree_size > start->tree_size)) {
      start = &checkpoint;
    }
    if (checkpoint.time >= to && (end == nullptr || checkpoint.tree_size < end->tree_size)) {
      end = &checkpoint;
    }
    if (latest == nullptr || checkpoint.tree_size > latest->tree_size) latest = &checkpoint;
  }
  if (latest == nullptr) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the ledger has no checkpoint yet, so no period can be proven; start "
                           "the server once so that it records its policy");
  }
  out.closed = end != nullptr;
  out.end = end != nullptr ? *end : *latest;
  if (start != nullptr) out.start = *start;
  return {};
}

// Reads the whole log, keeps the key entries and the policy loads in force during the period,
// proves them against the end checkpoint and proves the start checkpoint's tree a prefix of the
// end checkpoint's.
core::Result<PeriodLedger> SelectPeriodLedger(store::Store& store, core::Time from, core::Time to) {
  auto count = store.EntryCount();
  if (!count) return std::unexpected(count.error());
  PeriodLedger selection;
  if (auto chosen = ChooseCheckpoints(store, *count, from, to, selection); !chosen) {
    return std::unexpected(chosen.error());
  }
  const uint64_t size = selection.end.tree_size;

  // The whole log is read, because incident checkpoints may lie past the end checkpoint, but only
  // entries inside the end checkpoint's tree are selected.
  std::vector<ledger::Hash>& all_leaves = selection.leaves;
  all_leaves.reserve(*count);
  std::optional<ledger::StoredEntry> in_force_at_start;
  std::vector<ledger::StoredEntry> loads_inside;
  std::vector<ledger::StoredEntry> key_entries;
  while (all_leaves.size() < *count) {
    auto chunk =
        store.ReadEntries(all_leaves.size(), std::min(kReadChunk, *count - all_leaves.size()));
    if (!chunk) return std::unexpected(chunk.error());
    if (chunk->empty()) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "the ledger ends at entry {} but reports {} entries; run `backout "
                             "ledger verify`",
                             all_leaves.size(), *count);
    }
    for (ledger::StoredEntry& row : *chunk) {
      all_leaves.push_back(row.leaf_hash);
      if (row.sequence >= size) continue;
      auto entry = ledger::DecodeEntry(row.encoded);
      if (!entry) {
        return core::MakeError(core::ErrorCode::kCorruption,
                               "ledger entry {} cannot be decoded: {}; run `backout ledger "
                               "verify`",
                               row.sequence, entry.error().message);
      }
      if (IsKeyEntry(entry->action)) {
        selection.key_ids.insert(entry->change.value("key_id", ""));
        key_entries.push_back(row);
      } else if (entry->action == "policy.loaded") {
        if (entry->time <= from) {
          in_force_at_start = row;
        } else if (entry->time < to) {
          loads_inside.push_back(row);
        }
      }
    }
  }

  const std::span<const ledger::Hash> leaves =
      std::span<const ledger::Hash>(all_leaves).first(size);
  const ledger::Hash end_root = ledger::RootOf(leaves);
  if (end_root != selection.end.root) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "the stored ledger's first {} entries have root {}, but their signed "
                           "checkpoint says {}; run `backout ledger verify`",
                           size, ledger::ToHex(end_root), ledger::ToHex(selection.end.root));
  }
  const uint64_t start_size = selection.start ? selection.start->tree_size : 0;
  if (selection.start) {
    const ledger::Hash start_root = ledger::RootOf(leaves.first(start_size));
    if (start_root != selection.start->root) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "the stored ledger's first {} entries have root {}, but their signed "
                             "checkpoint says {}; run `backout ledger verify`",
                             start_size, ledger::ToHex(start_root),
                             ledger::ToHex(selection.start->root));
    }
  }
  auto consistency = ledger::ConsistencyProof(start_size, leaves);
  if (!consistency) return std::unexpected(consistency.error());
  selection.consistency = *std::move(consistency);

  std::map<uint64_t, ledger::StoredEntry> chosen;
  for (ledger::StoredEntry& row : key_entries) chosen.emplace(row.sequence, std::move(row));
  if (in_force_at_start) chosen.emplace(in_force_at_start->sequence, *in_force_at_start);
  for (ledger::StoredEntry& row : loads_inside) chosen.emplace(row.sequence, std::move(row));
  // NOTE: each proof costs O(n) hashes over all leaves, so a period of a long log with many config
  // reloads takes a while to export.
  for (auto& [sequence, row] : chosen) {
    auto proof = ledger::InclusionProof(sequence, leaves);
    if (!proof) return std::unexpected(proof.error());
    selection.entries.push_back(std::move(row));
    selection.proofs.push_back(*std::move(proof));
  }
  return selection;
}

// Incidents opened in the period or with a rollback requested in it, sorted by id.
core::Result<std::vector<std::string>> IncidentsOf(store::Store& store, core::Time from,
                                                   core::Time to) {
  auto in_period = [&](core::Time time) { return time >= from && time < to; };
  std::vector<std::string> ids;
  auto read = store.Read([&](store::Transaction& tx) -> core::Result<void> {
    std::string after;
    while (true) {
      auto page = tx.List(store::ListQuery{.kind = "incident", .after_id = after, .limit = 500});
      if (!page) return std::unexpected(page.error());
      for (const store::Object& object : *page) {
        auto incident = core::FromJson<core::Incident>(object.body);
        if (!incident) {
          return core::MakeError(core::ErrorCode::kCorruption,
                                 "stored incident {} cannot be read: {}", object.id,
                                 incident.error().message);
        }
        bool keep = in_period(incident->opened_at);
        for (const core::Rollback& rollback : incident->rollbacks) {
          keep = keep || in_period(rollback.requested_at);
        }
        if (keep) ids.push_back(incident->id);
      }
      if (page->size() < 500) break;
      after = page->back().id;
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  std::ranges::sort(ids);
  return ids;
}

// Incident ids become folder names, so only plain names are accepted.
bool PlainName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

void AddPeriodLedgerFiles(const PeriodLedger& selection, const ledger::Signer& signer,
                          BundleFiles& files) {
  std::string entries;
  json proofs = json::array();
  for (size_t i = 0; i < selection.entries.size(); ++i) {
    const ledger::StoredEntry& row = selection.entries[i];
    entries += row.encoded + "\n";
    json path = json::array();
    for (const ledger::Hash& hash : selection.proofs[i]) path.push_back(ledger::ToHex(hash));
    proofs.push_back(
        {{"sequence", row.sequence}, {"leaf_hash", ledger::ToHex(row.leaf_hash)}, {"proof", path}});
  }
  files[internal::kEntries] = entries;
  files[internal::kProofs] = internal::PrettyJson({{"tree_size", selection.end.tree_size},
                                                   {"root", ledger::ToHex(selection.end.root)},
                                                   {"entries", proofs}});
  files[internal::kCheckpoint] = internal::PrettyJson(selection.end.ToJson());
  if (selection.start) {
    files[internal::kStartCheckpoint] = internal::PrettyJson(selection.start->ToJson());
  }
  json proof = json::array();
  for (const ledger::Hash& hash : selection.consistency) proof.push_back(ledger::ToHex(hash));
  const ledger::Hash empty_root = ledger::RootOf({});
  files[internal::kConsistency] = internal::PrettyJson(
      {{"old_size", selection.start ? selection.start->tree_size : 0},
       {"old_root", ledger::ToHex(selection.start ? selection.start->root : empty_root)},
       {"new_size", selection.end.tree_size},
       {"new_root", ledger::ToHex(selection.end.root)},
       {"proof", proof}});
  files[internal::kSigningKey] = signer.public_key().pem();
}

}  // namespace

namespace internal {

json PolicyHistory(const std::vector<ledger::Entry>& entries) {
  json history = json::array();
  for (const ledger::Entry& entry : entries) {
    if (entry.action != "policy.loaded") continue;
    const json& change = entry.change;
    history.push_back({{"ledger_sequence", entry.sequence},
                       {"time", core::FormatTime(entry.time)},
                       {"loaded_by", change.value("loaded_by", entry.actor)},
                       {"config_file", change.value("config_file", json())},
                       {"config_sha256", change.value("config_sha256", json())},
                       {"policy", change.value("policy", json())},
                       {"roster", change.value("policy", json::object()).value("roster", json())},
                       {"provider_bindings", change.value("provider_bindings", json())}});
  }
  return history;
}

}  // namespace internal

core::Result<std::string> ExportPeriodBundle(store::Store& store, core::Time from, core::Time to,
                                             const ledger::Signer& signer) {
  if (!(from < to)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the period from {} to {} is empty; --from must be before --to",
                           core::FormatTime(from), core::FormatTime(to));
  }
  auto selection = SelectPeriodLedger(store, from, to);
  if (!selection) return std::unexpected(selection.error());
  if (!selection->key_ids.contains(signer.public_key().key_id())) {
    // TODO: carry key entries after the end checkpoint, checked by their signature chain, so a
    // period before a key rotation can still be exported.
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the evidence signing key {} is not introduced in the ledger's first "
                           "{} entries, which the period's end checkpoint covers; a period before "
                           "a key rotation cannot be exported yet",
                           signer.public_key().key_id(), selection->end.tree_size);
  }

  BundleFiles files;
  json incident_proofs = json::array();
  auto incidents = IncidentsOf(store, from, to);
  if (!incidents) return std::unexpected(incidents.error());
  for (const std::string& id : *incidents) {
    if (!PlainName(id)) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "stored incident id '{}' is not a plain name and cannot name a "
                             "folder of the bundle",
                             id);
    }
    auto built = internal::BuildIncidentFiles(store, id, signer);
    if (!built) {
      return core::MakeError(built.error().code, "incident {} of the period: {}", id,
                             built.error().message);
    }
    auto linked = IncidentConsistency(id, built->checkpoint, *selection);
    if (!linked) return std::unexpected(linked.error());
    incident_proofs.push_back(*std::move(linked));
    for (ArchiveFile& file : built->ordered) {
      files[fmt::format("{}{}/{}", internal::kIncidentsFolder, id, file.path)] =
          std::move(file.content);
    }
  }

  auto rows = BuildPopulation(store, from, to);
  if (!rows) return std::unexpected(rows.error());
  files[internal::kPopulationJson] = internal::PrettyJson(*rows);
  files[internal::kPopulationCsv] = PopulationCsv(*rows);

  std::vector<ledger::Entry> decoded;
  for (const ledger::StoredEntry& row : selection->entries) {
    auto entry = ledger::DecodeEntry(row.encoded);
    if (entry) decoded.push_back(*std::move(entry));
  }
  files[internal::kPolicyHistory] = internal::PrettyJson(internal::PolicyHistory(decoded));
  AddPeriodLedgerFiles(*selection, signer, files);
  files[internal::kIncidentConsistency] = internal::PrettyJson({{"proofs", incident_proofs}});

  json listed = json::array();
  for (const auto& [path, content] : files) {
    listed.push_back({{"path", path},
                      {"sha256", ledger::ToHex(ledger::Sha256(content))},
                      {"size", content.size()}});
  }
  const json manifest_json{
      {"format", kPeriodBundleFormat},
      {"from", core::FormatTime(from)},
      {"to", core::FormatTime(to)},
      {"incidents", *incidents},
      {"checkpoint", selection->end.ToJson()},
      {"start_checkpoint", selection->start ? selection->start->ToJson() : json()},
      {"period_closed", selection->closed},
      {"signing_key_id", signer.public_key().key_id()},
      {"files", listed}};
  auto manifest = ledger::CanonicalJson(manifest_json);
  if (!manifest) return std::unexpected(manifest.error());

  std::vector<ArchiveFile> ordered;
  ordered.push_back({internal::kManifest, *manifest});
  ordered.push_back({internal::kManifestSignature, signer.SignBase64(*manifest) + "\n"});
  for (auto& [path, content] : files) ordered.push_back({path, std::move(content)});
  auto archive = WriteTarGz(ordered, internal::ArchiveTime(selection->end));
  if (archive) {
    spdlog::info(
        "component=evidence event=period_exported from={} to={} incidents={} rows={} files={} "
        "start_size={} end_size={} closed={} bytes={}",
        core::FormatTime(from), core::FormatTime(to), incidents->size(), rows->size(),
        ordered.size(), selection->start ? selection->start->tree_size : 0,
        selection->end.tree_size, selection->closed, archive->size());
  }
  return archive;
}

}  // namespace backout::evidence
