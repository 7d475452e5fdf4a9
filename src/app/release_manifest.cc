// The release manifest: its stored form, the events that change a release's status, and its
// reconciliation against the tool's inventory.
#include "app/release_manifest.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"

namespace backout::app {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<ReleaseStatus, std::string_view>, 5> kStatusNames = {{
    {ReleaseStatus::kDeployed, "deployed"},
    {ReleaseStatus::kValidatedGood, "validated_good"},
    {ReleaseStatus::kFailed, "failed"},
    {ReleaseStatus::kRolledBack, "rolled_back"},
    {ReleaseStatus::kPresent, "present"},
}};

constexpr char kReconciliationSource[] = "reconciliation";

std::string ReleaseSubject(std::string_view service, std::string_view version) {
  return fmt::format("service/{}/release/{}", service, version);
}

json TimeOrNull(const std::optional<core::Time>& time) {
  return time ? json(core::FormatTime(*time)) : json(nullptr);
}

core::Time ReadTime(const json& value) {
  auto time = core::ParseTime(value.get<std::string>());
  if (!time) throw std::invalid_argument(time.error().message);
  return *time;
}

std::optional<core::Time> ReadOptionalTime(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return ReadTime(*it);
}

ReleaseStatus ReadStatus(const json& value) {
  auto status = ParseReleaseStatus(value.get<std::string>());
  if (!status) throw std::invalid_argument(status.error().message);
  return *status;
}

json ToJson(const ReleaseStatusChange& change) {
  return {{"status", ReleaseStatusName(change.status)},
          {"time", core::FormatTime(change.time)},
          {"set_by", change.set_by},
          {"reason", change.reason}};
}

json ToJson(const ReleaseEntry& entry) {
  json history = json::array();
  for (const ReleaseStatusChange& change : entry.history) history.push_back(ToJson(change));
  return {{"version", entry.version},
          {"status", ReleaseStatusName(entry.status)},
          {"first_seen", core::FormatTime(entry.first_seen)},
          {"completed_at", TimeOrNull(entry.completed_at)},
          {"complete", entry.complete},
          {"in_folder", entry.in_folder},
          {"change_ids", entry.change_ids},
          {"history", std::move(history)}};
}

ReleaseEntry EntryFromJson(const json& body) {
  ReleaseEntry entry{.version = body.at("version").get<std::string>(),
                     .status = ReadStatus(body.at("status")),
                     .first_seen = ReadTime(body.at("first_seen")),
                     .completed_at = ReadOptionalTime(body, "completed_at"),
                     .complete = body.value("complete", false),
                     .in_folder = body.value("in_folder", false),
                     .change_ids = body.value("change_ids", std::vector<std::string>{})};
  for (const json& item : body.value("history", json::array())) {
    entry.history.push_back(ReleaseStatusChange{.status = ReadStatus(item.at("status")),
                                                .time = ReadTime(item.at("time")),
                                                .set_by = item.value("set_by", ""),
                                                .reason = item.value("reason", "")});
  }
  return entry;
}

// The manifest with the stored object it came from, so saving keeps optimistic concurrency.
struct StoredManifest {
  store::Object object;
  ReleaseManifest manifest;
};

core::Result<StoredManifest> LoadForWrite(store::Transaction& tx, std::string_view service) {
  BACKOUT_TRY(auto object, tx.Get(kReleaseManifestKind, service));
  if (!object) {
    return StoredManifest{store::Object{.kind = kReleaseManifestKind,
                                        .id = std::string(service),
                                        .service = std::string(service)},
                          ReleaseManifest{.service = std::string(service)}};
  }
  BACKOUT_TRY(ReleaseManifest manifest, ReleaseManifestFromJson(object->body));
  return StoredManifest{std::move(*object), std::move(manifest)};
}

core::Result<void> SaveManifest(store::Transaction& tx, StoredManifest& stored) {
  std::ranges::stable_sort(
      stored.manifest.releases,
      [](const ReleaseEntry& a, const ReleaseEntry& b) { return a.DeployedBefore(b); });
  stored.object.body = ToJson(stored.manifest);
  return tx.Put(stored.object);
}

// Returns the release's entry, adding a new one first seen at `first_seen` when it has none.
// A new entry has no status history yet; the caller sets its first status.
ReleaseEntry& Entry(ReleaseManifest& manifest, std::string_view version, core::Time first_seen) {
  if (ReleaseEntry* found = manifest.Find(version)) {
    found->first_seen = std::min(found->first_seen, first_seen);
    return *found;
  }
  manifest.releases.push_back(
      ReleaseEntry{.version = std::string(version), .first_seen = first_seen});
  return manifest.releases.back();
}

// Appends `status` to the history of `entry` and writes the ledger entry, whatever the current
// status is.
core::Result<void> RecordStatus(store::Transaction& tx, const Caller& caller,
                                std::string_view service, ReleaseEntry& entry, ReleaseStatus status,
                                core::Time time, std::string set_by, std::string reason) {
  json from = entry.history.empty() ? json(nullptr) : json(ReleaseStatusName(entry.status));
  entry.status = status;
  entry.history.push_back(
      ReleaseStatusChange{.status = status, .time = time, .set_by = set_by, .reason = reason});
  BACKOUT_CHECK(Ledger(tx, caller, "release.status_changed", ReleaseSubject(service, entry.version),
                       {{"version", entry.version},
                        {"from", std::move(from)},
                        {"to", ReleaseStatusName(status)},
                        {"time", core::FormatTime(time)},
                        {"set_by", std::move(set_by)},
                        {"reason", std::move(reason)}}));
  return {};
}

// Moves `entry` to `status`, keeps the change in its history and writes the ledger entry.
// Returns false, writing nothing, when the entry already has that status.
core::Result<bool> SetStatus(store::Transaction& tx, const Caller& caller, std::string_view service,
                             ReleaseEntry& entry, ReleaseStatus status, core::Time time,
                             std::string set_by, std::string reason) {
  if (!entry.history.empty() && entry.status == status) return false;
  BACKOUT_CHECK(
      RecordStatus(tx, caller, service, entry, status, time, std::move(set_by), std::move(reason)));
  return true;
}

// Moves `entry` to `status` like SetStatus. When the entry already has `status` because a
// reconciliation saw the folder change first and stated "without a record in Backout", records the
// status again with `set_by`, so the latest reason names the record that explains the change.
core::Result<bool> SetStatusFromRecord(store::Transaction& tx, const Caller& caller,
                                       std::string_view service, ReleaseEntry& entry,
                                       ReleaseStatus status, core::Time time, std::string set_by,
                                       std::string reason) {
  const bool set_by_reconciliation = !entry.history.empty() && entry.status == status &&
                                     entry.history.back().set_by == kReconciliationSource;
  if (set_by_reconciliation) {
    BACKOUT_CHECK(RecordStatus(tx, caller, service, entry, status, time, std::move(set_by),
                               std::move(reason)));
    return true;
  }
  return SetStatus(tx, caller, service, entry, status, time, std::move(set_by), std::move(reason));
}

// Returns whether the latest status of `entry` was set by the reconciliation that made the
// manifest's live release live. Such a reconciliation compared the folder alone, as a start does
// when the history cannot be read, so it stated "without a record in Backout" for a switch that
// a record found later explains.
bool SetBySwitchReconciliation(const ReleaseManifest& manifest, const ReleaseEntry& entry) {
  return !entry.history.empty() && entry.history.back().set_by == kReconciliationSource &&
         manifest.live_since && entry.history.back().time == *manifest.live_since;
}

// A rollback counts as done when it read back its target or a person confirmed it happened.
bool RollbackHappened(const core::Rollback& rollback) {
  if (rollback.outcome == core::RollbackOutcome::kRolledBack) return true;
  return rollback.confirmation.has_value() && rollback.confirmation->happened;
}

void MakeLive(ReleaseManifest& manifest, std::string_view version, core::Time time) {
  manifest.live_version = std::string(version);
  manifest.live_since = time;
}

// Returns whether a release with this status becomes deployed when it is made live again: a
// failed or validated-good verdict is about the artifact and stays.
bool RedeployedWhenLive(const ReleaseEntry& entry) {
  return entry.history.empty() || entry.status == ReleaseStatus::kRolledBack ||
         entry.status == ReleaseStatus::kPresent;
}

// Returns the position of `version` among the complete releases of `inventory`, which lists them
// in the provider's order.
std::optional<size_t> CompletePosition(const providers::Inventory& inventory,
                                       std::string_view version) {
  size_t position = 0;
  for (const providers::InventoryItem& item : inventory.items) {
    if (!item.complete) continue;
    if (item.version == version) return position;
    ++position;
  }
  return std::nullopt;
}

// Returns whether `version` is a Capistrano-style release name: a UTC time as YYYYMMDDHHMMSS.
bool IsTimestampName(std::string_view version) {
  return version.size() == 14 &&
         std::ranges::all_of(version, [](char c) { return c >= '0' && c <= '9'; });
}

// The release the folder shows live, when Backout can trust it, or the problem that stops it.
struct TrustedLive {
  std::string version;  // empty when the folder shows no release Backout can trust as live
  std::string problem;  // why, when version is empty
};

// Trusts the inventory's live version only when the inventory lists it as complete. A provider
// should report an incomplete live release as a problem itself, and this catches one that does
// not, so an unfinished deploy is never recorded as a switch.
TrustedLive CheckLiveRelease(const providers::Inventory& inventory) {
  const std::string& live = inventory.live_version;
  if (live.empty()) {
    return {"", inventory.live_problem.empty() ? std::string("the folder shows no live release")
                                               : inventory.live_problem};
  }
  auto item = std::ranges::find(inventory.items, live, &providers::InventoryItem::version);
  if (item == inventory.items.end()) {
    return {"", fmt::format("the folder shows release {} live, but does not list it among its "
                            "releases; point current at a complete release",
                            live)};
  }
  if (!item->complete) {
    return {"", fmt::format("the folder shows release {} live, but it is incomplete: its "
                            "completion marker is missing; create the marker once the release "
                            "is complete, or point current at a complete release",
                            live)};
  }
  return {live, ""};
}

}  // namespace

std::string_view ReleaseStatusName(ReleaseStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "deployed";
}

core::Result<ReleaseStatus> ParseReleaseStatus(std::string_view text) {
  for (const auto& [value, name] : kStatusNames) {
    if (name == text) return value;
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "unknown release status '{}'; expected deployed, validated_good, failed, "
                         "rolled_back or present",
                         text);
}

// A `touch` of a marker must neither turn a switch of `current` around nor change the target,
// so the marker's latest time does not count. The first_seen time is a release's first change
// or its earliest marker time.
// NOTE: with timestamp names and other names mixed in one folder, this order can be cyclic, so a
// sort may place a timestamp-named release between two others inconsistently.
bool ReleaseEntry::DeployedBefore(const ReleaseEntry& other) const {
  if (IsTimestampName(version) && IsTimestampName(other.version)) return version < other.version;
  return std::pair(first_seen, version) < std::pair(other.first_seen, other.version);
}

const ReleaseEntry* ReleaseManifest::Find(std::string_view version) const {
  for (const ReleaseEntry& entry : releases) {
    if (entry.version == version) return &entry;
  }
  return nullptr;
}

ReleaseEntry* ReleaseManifest::Find(std::string_view version) {
  return const_cast<ReleaseEntry*>(std::as_const(*this).Find(version));
}

json ToJson(const ReleaseManifest& manifest) {
  json releases = json::array();
  for (const ReleaseEntry& entry : manifest.releases) releases.push_back(ToJson(entry));
  return {{"service", manifest.service},
          {"live_version", manifest.live_version},
          {"live_since", TimeOrNull(manifest.live_since)},
          {"live_problem", manifest.live_problem},
          {"live_problem_since", TimeOrNull(manifest.live_problem_since)},
          {"reconciled_at", TimeOrNull(manifest.reconciled_at)},
          {"releases", std::move(releases)}};
}

core::Result<ReleaseManifest> ReleaseManifestFromJson(const json& body) {
  try {
    ReleaseManifest manifest{.service = body.at("service").get<std::string>(),
                             .live_version = body.value("live_version", ""),
                             .live_since = ReadOptionalTime(body, "live_since"),
                             .live_problem = body.value("live_problem", ""),
                             .live_problem_since = ReadOptionalTime(body, "live_problem_since"),
                             .reconciled_at = ReadOptionalTime(body, "reconciled_at")};
    for (const json& item : body.value("releases", json::array())) {
      manifest.releases.push_back(EntryFromJson(item));
    }
    return manifest;
  } catch (const std::exception& error) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "stored release manifest cannot be read: {}", error.what());
  }
}

bool KeepsReleaseManifest(const Settings& settings, std::string_view service) {
  auto provider = settings.providers.find(std::string(service));
  return provider != settings.providers.end() && provider->second->Capabilities().inventory;
}

core::Result<std::optional<ReleaseManifest>> LoadReleaseManifest(store::Transaction& tx,
                                                                 std::string_view service) {
  BACKOUT_TRY(auto object, tx.Get(kReleaseManifestKind, service));
  if (!object) return std::optional<ReleaseManifest>();
  BACKOUT_TRY(ReleaseManifest manifest, ReleaseManifestFromJson(object->body));
  return std::optional<ReleaseManifest>(std::move(manifest));
}

core::Result<void> NoteReleaseDeployed(store::Transaction& tx, const Settings& settings,
                                       const Caller& caller, const core::Change& change) {
  if (!KeepsReleaseManifest(settings, change.service)) return {};
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, change.service));
  ReleaseManifest& manifest = stored.manifest;
  ReleaseEntry& entry = Entry(manifest, change.version, change.time);
  if (std::ranges::find(entry.change_ids, change.id) == entry.change_ids.end()) {
    entry.change_ids.push_back(change.id);
  }
  // The tool's history also lists releases that were completed but never made live, so a
  // discovered change leaves the status and the live release to the folder's `current`.
  if (change.source == core::ChangeSource::kDiscovered) {
    if (entry.history.empty()) {
      BACKOUT_CHECK(SetStatus(
          tx, caller, change.service, entry, ReleaseStatus::kPresent, change.time,
          fmt::format("change/{}", change.id),
          fmt::format("change {} was discovered in the tool's history; the release folder's "
                      "current link decides whether it is live",
                      change.id)));
    }
    return SaveManifest(tx, stored);
  }
  // A release validated good stays so when it is deployed again: it is the same artifact.
  if (entry.history.empty() || entry.status != ReleaseStatus::kValidatedGood) {
    BACKOUT_CHECK(SetStatus(tx, caller, change.service, entry, ReleaseStatus::kDeployed,
                            change.time, fmt::format("change/{}", change.id),
                            fmt::format("change {} deployed it", change.id)));
  }
  // Once the manifest has read the folder, only a release the folder had at that read becomes
  // live on a change's word. A release recorded before its folder exists waits for a
  // reconciliation that finds `current` pointing at it.
  const bool folder_has_it = !manifest.reconciled_at || entry.in_folder;
  if (folder_has_it && (!manifest.live_since || change.time >= *manifest.live_since)) {
    MakeLive(manifest, change.version, change.time);
  }
  return SaveManifest(tx, stored);
}

core::Result<void> NoteChangeVerified(store::Transaction& tx, const Settings& settings,
                                      const Caller& caller, const core::Change& change, bool passed,
                                      core::Time time) {
  if (!KeepsReleaseManifest(settings, change.service)) return {};
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, change.service));
  ReleaseEntry& entry = Entry(stored.manifest, change.version, change.time);
  if (std::ranges::find(entry.change_ids, change.id) == entry.change_ids.end()) {
    entry.change_ids.push_back(change.id);
  }
  BACKOUT_CHECK(SetStatus(tx, caller, change.service, entry,
                          passed ? ReleaseStatus::kValidatedGood : ReleaseStatus::kFailed, time,
                          fmt::format("change/{}", change.id),
                          fmt::format("{} posted a {} verification of change {}", caller.name(),
                                      passed ? "passing" : "failing", change.id)));
  return SaveManifest(tx, stored);
}

core::Result<void> NoteRollbackFinished(store::Transaction& tx, const Settings& settings,
                                        const Caller& caller, const core::Incident& incident,
                                        const core::Rollback& rollback,
                                        std::string_view from_version, core::Time time) {
  if (!KeepsReleaseManifest(settings, incident.service) || !RollbackHappened(rollback)) return {};
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, incident.service));
  ReleaseManifest& manifest = stored.manifest;
  const std::string& target = rollback.target_version;

  // The release the rollback moved away from: the provider's account, else Backout's records.
  // A provider that read the folder after a restart finds the target already live, so it names
  // the target as the release live before. That is no account of what the rollback moved from.
  std::string from(from_version == target ? std::string_view() : from_version);
  if (from.empty() && manifest.live_version != target) from = manifest.live_version;
  if (from.empty() && incident.suspected_change_id) {
    BACKOUT_TRY(auto suspected, tx.Get(kChangeKind, *incident.suspected_change_id));
    if (suspected) from = suspected->body.value("version", "");
  }

  const std::string set_by = fmt::format("incident/{}", incident.id);
  if (!from.empty() && from != target) {
    ReleaseEntry& entry = Entry(manifest, from, time);
    BACKOUT_CHECK(SetStatusFromRecord(
        tx, caller, incident.service, entry, ReleaseStatus::kRolledBack, time, set_by,
        fmt::format("rollback job {} of {} moved the service from {} to {}", rollback.job_id,
                    incident.id, from, target)));
  }
  if (!target.empty()) {
    ReleaseEntry& entry = Entry(manifest, target, time);
    if (RedeployedWhenLive(entry) || entry.status == ReleaseStatus::kDeployed) {
      BACKOUT_CHECK(SetStatusFromRecord(
          tx, caller, incident.service, entry, ReleaseStatus::kDeployed, time, set_by,
          fmt::format("rollback job {} of {} made it live", rollback.job_id, incident.id)));
    }
    MakeLive(manifest, target, time);
  }
  return SaveManifest(tx, stored);
}

core::Result<void> NoteRollbackDiscovered(store::Transaction& tx, const Settings& settings,
                                          const Caller& caller, std::string_view service,
                                          std::string_view id, std::string_view version,
                                          std::string_view from_version, core::Time time) {
  if (!KeepsReleaseManifest(settings, service) || from_version.empty() || from_version == version) {
    return {};
  }
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, service));
  ReleaseManifest& manifest = stored.manifest;
  // A rollback from a release the manifest never had live, such as one before Backout first read
  // the folder, leaves the statuses to the folder's reconciliation. A reconciliation of the folder
  // alone may have recorded this switch already, and then this record replaces its reasons.
  const ReleaseEntry* before = manifest.Find(from_version);
  const ReleaseEntry* now_live = manifest.Find(version);
  const bool seen_by_reconciliation = manifest.live_version == version && before != nullptr &&
                                      before->status == ReleaseStatus::kRolledBack &&
                                      SetBySwitchReconciliation(manifest, *before);
  const bool live_set_by_reconciliation = seen_by_reconciliation && now_live != nullptr &&
                                          SetBySwitchReconciliation(manifest, *now_live);
  if (manifest.live_version != from_version && !seen_by_reconciliation) return {};
  const std::string set_by = fmt::format("discovered_rollback/{}", id);
  ReleaseEntry& away = Entry(manifest, from_version, time);
  BACKOUT_CHECK(SetStatusFromRecord(
      tx, caller, service, away, ReleaseStatus::kRolledBack, time, set_by,
      fmt::format("current was switched from {} back to the older release {} outside Backout, "
                  "recorded as discovered rollback {}",
                  from_version, version, id)));
  ReleaseEntry& target = Entry(manifest, version, time);
  if (RedeployedWhenLive(target) || live_set_by_reconciliation) {
    BACKOUT_CHECK(
        SetStatusFromRecord(tx, caller, service, target, ReleaseStatus::kDeployed, time, set_by,
                            fmt::format("discovered rollback {} made it live again", id)));
  }
  MakeLive(manifest, version, time);
  return SaveManifest(tx, stored);
}

core::Result<void> NoteDeploymentDiscovered(store::Transaction& tx, const Settings& settings,
                                            const Caller& caller, const core::Change& change) {
  const std::string& from = change.previous_version;
  if (!KeepsReleaseManifest(settings, change.service) || from.empty() || from == change.version) {
    return {};
  }
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, change.service));
  ReleaseManifest& manifest = stored.manifest;
  // A reconciliation of the folder alone may have recorded this switch already, and then this
  // record replaces its reason.
  const ReleaseEntry* now_live = manifest.Find(change.version);
  const bool seen_by_reconciliation = manifest.live_version == change.version &&
                                      now_live != nullptr &&
                                      SetBySwitchReconciliation(manifest, *now_live);
  if (manifest.live_version != from && !seen_by_reconciliation) return {};
  ReleaseEntry& entry = Entry(manifest, change.version, change.time);
  if (std::ranges::find(entry.change_ids, change.id) == entry.change_ids.end()) {
    entry.change_ids.push_back(change.id);
  }
  if (RedeployedWhenLive(entry) || seen_by_reconciliation) {
    BACKOUT_CHECK(SetStatusFromRecord(
        tx, caller, change.service, entry, ReleaseStatus::kDeployed, change.time,
        fmt::format("change/{}", change.id),
        fmt::format("current was switched from {} to it outside Backout, recorded as discovered "
                    "change {}",
                    from, change.id)));
  }
  MakeLive(manifest, change.version, change.time);
  return SaveManifest(tx, stored);
}

core::Result<void> NoteValidationFinding(store::Transaction& tx, const Settings& settings,
                                         const Caller& caller, const core::Incident& incident,
                                         std::string_view rollback_job_id,
                                         core::ValidationFinding finding, core::Time time) {
  if (finding != core::ValidationFinding::kRecovered) return {};
  if (!KeepsReleaseManifest(settings, incident.service)) return {};

  // The rollback this validation followed: the named job, else the latest one that acted.
  const core::Rollback* validated = nullptr;
  for (const core::Rollback& rollback : incident.rollbacks) {
    const bool acted =
        RollbackHappened(rollback) || rollback.outcome == core::RollbackOutcome::kSkippedNoop;
    if (rollback.job_id == rollback_job_id || (rollback_job_id.empty() && acted)) {
      validated = &rollback;
    }
  }
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, incident.service));
  std::string version = validated != nullptr ? validated->target_version : "";
  if (version.empty()) version = stored.manifest.live_version;
  if (version.empty()) return {};

  ReleaseEntry& entry = Entry(stored.manifest, version, time);
  const std::string job = validated != nullptr ? validated->job_id : std::string("(none)");
  BACKOUT_CHECK(SetStatus(
      tx, caller, incident.service, entry, ReleaseStatus::kValidatedGood, time,
      fmt::format("incident/{}", incident.id),
      fmt::format("validation of {} found the service recovered on it after rollback job {}",
                  incident.id, job)));
  return SaveManifest(tx, stored);
}

std::optional<bool> ReleasedBefore(const providers::Inventory& inventory,
                                   const ReleaseManifest* manifest, std::string_view version,
                                   std::string_view other) {
  if (version.empty() || other.empty() || version == other) return std::nullopt;
  if (IsTimestampName(version) && IsTimestampName(other)) return version < other;
  const ReleaseEntry* entry = manifest != nullptr ? manifest->Find(version) : nullptr;
  const ReleaseEntry* other_entry = manifest != nullptr ? manifest->Find(other) : nullptr;
  if (entry != nullptr && other_entry != nullptr) return entry->DeployedBefore(*other_entry);
  const std::optional<size_t> position = CompletePosition(inventory, version);
  const std::optional<size_t> other_position = CompletePosition(inventory, other);
  if (position && other_position) return *position < *other_position;
  return std::nullopt;
}

json ToJson(const ManifestReconciliation& report) {
  return {{"service", report.service},
          {"live_version", report.live_version},
          {"live_problem", report.live_problem},
          {"corrections", report.corrections},
          {"written", report.written}};
}

core::Result<ManifestReconciliation> ReconcileReleaseManifest(store::Transaction& tx,
                                                              const Caller& caller,
                                                              std::string_view service,
                                                              const providers::Inventory& inventory,
                                                              core::Time now) {
  BACKOUT_TRY(StoredManifest stored, LoadForWrite(tx, service));
  ReleaseManifest& manifest = stored.manifest;
  const TrustedLive folder_live = CheckLiveRelease(inventory);
  ManifestReconciliation report{.service = std::string(service),
                                .live_version = folder_live.version,
                                .live_problem = folder_live.problem};
  std::vector<std::string>& corrections = report.corrections;

  // Step 1: every release folder. A complete one the manifest lacks was deployed without a record.
  std::set<std::string, std::less<>> in_folder;
  for (const providers::InventoryItem& item : inventory.items) {
    in_folder.insert(item.version);
    ReleaseEntry* entry = manifest.Find(item.version);
    if (entry == nullptr) {
      if (!item.complete) continue;  // a deploy in progress, or one that never finished
      // Only `current` shows a release was live. An older release may have been rolled back
      // before Backout saw the folder, and a newer one may never have been made live.
      const bool live = item.version == folder_live.version;
      entry = &Entry(manifest, item.version, item.completed_at.value_or(now));
      BACKOUT_CHECK(SetStatus(
          tx, caller, service, *entry, live ? ReleaseStatus::kDeployed : ReleaseStatus::kPresent,
          now, kReconciliationSource,
          live ? "found live in the release folder without a record"
               : "found complete in the release folder without a record of it being live"));
      corrections.push_back(
          fmt::format("added release {} as {}, complete in the folder but not in the manifest",
                      item.version, live ? "deployed" : "present"));
    }
    if (entry->complete != item.complete) {
      corrections.push_back(
          fmt::format("release {} {} its marker", item.version, item.complete ? "gained" : "lost"));
    }
    entry->in_folder = true;
    entry->complete = item.complete;
    entry->completed_at = item.completed_at;
    // The earliest marker time seen counts, so a later `touch` of the marker cannot move the
    // release forward in the order that decides a switch's direction.
    if (item.complete && item.completed_at) {
      entry->first_seen = std::min(entry->first_seen, *item.completed_at);
    }
  }

  // Step 2: releases the folder no longer has; a deploy tool's cleanup removes old ones.
  for (ReleaseEntry& entry : manifest.releases) {
    if (in_folder.contains(entry.version) || !entry.in_folder) continue;
    entry.in_folder = false;
    corrections.push_back(fmt::format("release {} is no longer in the folder", entry.version));
  }

  // Step 3: the live release. No live release in the folder is a problem to report, not a
  // version: the service most likely still runs the release the manifest records as live.
  const std::string previous = manifest.live_version;
  const std::string& live = folder_live.version;
  if (live.empty()) {
    std::string problem = folder_live.problem;
    if (manifest.live_problem != problem) {
      corrections.push_back(fmt::format(
          "the folder shows no live release: {}; the manifest keeps {} as the last known live "
          "release",
          problem, previous.empty() ? "none" : previous));
      manifest.live_problem = std::move(problem);
      manifest.live_problem_since = now;
    }
  } else if (!manifest.live_problem.empty()) {
    corrections.push_back(fmt::format("the folder shows a live release again: {}", live));
    manifest.live_problem.clear();
    manifest.live_problem_since.reset();
  }

  // `current` moved without a store write: a switch whose record was lost when the server
  // stopped, or a switch by hand.
  if (!live.empty() && previous != live) {
    corrections.push_back(fmt::format("live release was {} by the manifest, {} by the folder",
                                      previous.empty() ? "unknown" : previous, live));
    const ReleaseEntry* before = manifest.Find(previous);
    const ReleaseEntry* now_live = manifest.Find(live);
    const bool moved_back =
        before != nullptr && now_live != nullptr && now_live->DeployedBefore(*before);
    if (moved_back) {
      ReleaseEntry& away = *manifest.Find(previous);
      BACKOUT_TRY(bool changed,
                  SetStatus(tx, caller, service, away, ReleaseStatus::kRolledBack, now,
                            kReconciliationSource,
                            fmt::format("current was switched from {} back to the older release "
                                        "{} without a record in Backout",
                                        previous, live)));
      if (changed) corrections.push_back(fmt::format("release {} marked rolled back", previous));
    }
    MakeLive(manifest, live, now);
  }

  // The live release is deployed again when a rollback had moved away from it, or when it was
  // only present: switched to by hand, or the target of a switch whose store write was lost.
  if (ReleaseEntry* live_entry = live.empty() ? nullptr : manifest.Find(live);
      live_entry != nullptr && !live_entry->history.empty() && RedeployedWhenLive(*live_entry)) {
    const std::string reason =
        !previous.empty() && previous != live
            ? fmt::format("current was switched from {} to it without a record in Backout",
                          previous)
            : std::string("the release folder's current link points to it");
    BACKOUT_CHECK(SetStatus(tx, caller, service, *live_entry, ReleaseStatus::kDeployed, now,
                            kReconciliationSource, reason));
    corrections.push_back(fmt::format("release {} marked deployed: it is live", live));
  }

  manifest.reconciled_at = now;
  report.written = true;
  BACKOUT_CHECK(SaveManifest(tx, stored));
  if (!corrections.empty()) {
    json releases = json::array();
    for (const providers::InventoryItem& item : inventory.items) {
      releases.push_back({{"version", item.version},
                          {"complete", item.complete},
                          {"completed_at", TimeOrNull(item.completed_at)}});
    }
    BACKOUT_CHECK(Ledger(tx, caller, "release_manifest.reconciled",
                         fmt::format("service/{}", service),
                         {{"found",
                           {{"live_version", inventory.live_version},
                            {"live_problem", folder_live.problem},
                            {"observed_at", core::FormatTime(inventory.observed_at)},
                            {"releases", std::move(releases)}}},
                          {"corrections", corrections}}));
  }
  return report;
}

}  // namespace backout::app
