#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/caller.h"
#include "core/domain.h"
#include "core/error.h"
#include "core/policy.h"
#include "core/time.h"
#include "providers/provider.h"
#include "store/store.h"

// Backout's release manifest: for each service whose provider keeps an inventory of versions (the
// `releases` provider's release folders), the status of every release by Backout's records. The
// folder is the live truth, so reconciliation corrects the manifest where the two disagree.
//
// Every status change is written in the transaction of the event that causes it, with a ledger
// entry "release.status_changed" whose subject is "service/<name>/release/<version>".
namespace backout::app {

struct Settings;

// One object per service, id = service name.
inline constexpr char kReleaseManifestKind[] = "release_manifest";

// Backout's record of one release. A release can move between any two statuses, and each
// move is kept in ReleaseEntry::history.
enum class ReleaseStatus {
  kDeployed,       // deployed, not validated yet
  kValidatedGood,  // a passing verification, or a validation found the service recovered on it
  kFailed,         // a failing verification was posted for it
  kRolledBack,     // a rollback moved the service away from it
  kPresent,        // in the folder, but no record or observation shows it was ever live
};
std::string_view ReleaseStatusName(ReleaseStatus status);  // "validated_good"
core::Result<ReleaseStatus> ParseReleaseStatus(std::string_view text);

// One status change of a release.
struct ReleaseStatusChange {
  ReleaseStatus status = ReleaseStatus::kDeployed;
  core::Time time{};
  std::string set_by;  // "change/CHG-3", "incident/INC-2", "reconciliation"
  std::string reason;
};

struct ReleaseEntry {
  std::string version;
  ReleaseStatus status = ReleaseStatus::kDeployed;
  core::Time first_seen{};  // the earliest deployment time known: a change's time or the marker's
  std::optional<core::Time> completed_at;  // the release's marker time, as the folder last showed
  bool complete = false;                   // its marker was present at the last folder read
  bool in_folder = false;                  // the folder had it at the last read
  std::vector<std::string> change_ids;     // changes that deployed it
  std::vector<ReleaseStatusChange> history;

  // The time the release counts from in deployment order: the time the manifest first saw it.
  // A later `touch` of its marker does not move it.
  core::Time OrderTime() const { return first_seen; }
  // Returns whether this release was deployed before `other`. Two Capistrano-style timestamp
  // names (YYYYMMDDHHMMSS) compare by name, and other pairs by OrderTime, then by name. The
  // direction of a switch of `current` is decided by the same rule.
  bool DeployedBefore(const ReleaseEntry& other) const;
};

struct ReleaseManifest {
  std::string service;
  std::string live_version;              // by Backout's records, corrected by reconciliation
  std::optional<core::Time> live_since;  // when live_version became live, by the same records
  // Reason the folder showed no release Backout can trust as live at the last reconciliation, or
  // empty when it showed one. The reason is no link, a dangling link, a link outside the release
  // folders or a link to a release without its completion marker. live_version then stays the
  // last release the manifest recorded as live, which the service most likely still runs.
  std::string live_problem;
  std::optional<core::Time> live_problem_since;  // the reconciliation that first found it
  std::optional<core::Time> reconciled_at;
  std::vector<ReleaseEntry> releases;  // in deployment order (ReleaseEntry::DeployedBefore)

  const ReleaseEntry* Find(std::string_view version) const;
  ReleaseEntry* Find(std::string_view version);
};

nlohmann::json ToJson(const ReleaseManifest& manifest);
core::Result<ReleaseManifest> ReleaseManifestFromJson(const nlohmann::json& json);

// Returns whether `service` keeps a release manifest: its provider reads an inventory.
bool KeepsReleaseManifest(const Settings& settings, std::string_view service);

// Loads the service's manifest inside `tx`; nullopt when none was written yet.
core::Result<std::optional<ReleaseManifest>> LoadReleaseManifest(store::Transaction& tx,
                                                                 std::string_view service);

// ---- Events that change a status. Each is a no-op for a service without a manifest, and writes
// nothing when the status is already the one the event sets.

// A change deployed `change.version`: the release becomes deployed (a validated-good release
// stays validated good) and, when the change is the newest, live. A change discovered in the
// tool's history only adds the change to the release, as `present` when the release is new to
// the manifest: such history also names releases that were never made live, so only the
// folder's `current`, read by ReconcileReleaseManifest, makes a release live and deployed.
core::Result<void> NoteReleaseDeployed(store::Transaction& tx, const Settings& settings,
                                       const Caller& caller, const core::Change& change);

// A verification of `change` passed (validated good) or failed (failed).
core::Result<void> NoteChangeVerified(store::Transaction& tx, const Settings& settings,
                                      const Caller& caller, const core::Change& change, bool passed,
                                      core::Time time);

// Rollback `rollback` of `incident` ended. When it rolled back (or a person confirmed that an
// interrupted one happened), the release it moved away from becomes rolled back and the target
// becomes live, and deployed again when it was rolled back or only present. `from_version` is the
// provider's account of what was live before; when empty, the manifest's live version or the
// suspected change's version is used.
core::Result<void> NoteRollbackFinished(store::Transaction& tx, const Settings& settings,
                                        const Caller& caller, const core::Incident& incident,
                                        const core::Rollback& rollback,
                                        std::string_view from_version, core::Time time);

// Discovered rollback `id` found `current` switched by hand from `from_version` back to the
// release `version`, which the folder shows live. `from_version` becomes rolled back and
// `version` live, deployed again when it was rolled back or only present, both set by
// "discovered_rollback/<id>", so the manifest names the record reconciliation wrote. Writes
// nothing unless the manifest has `from_version` live, or a reconciliation of the folder alone
// recorded this switch already, whose reasons this record then replaces. Only call it for a
// switch the folder still shows, because an old line of the tool's log may name a release no
// longer live.
core::Result<void> NoteRollbackDiscovered(store::Transaction& tx, const Settings& settings,
                                          const Caller& caller, std::string_view service,
                                          std::string_view id, std::string_view version,
                                          std::string_view from_version, core::Time time);

// Discovered change `change`, read from the tool's history, is a switch of `current` from
// `change.previous_version` to `change.version`, which the folder shows live. The release becomes
// live, and deployed when it was rolled back or only present, set by "change/<id>", so the
// manifest names the record reconciliation wrote. Writes nothing unless the manifest has the
// previous version live, or a reconciliation of the folder alone recorded this switch already,
// whose reason this record then replaces. Only call it for a switch the folder still shows.
core::Result<void> NoteDeploymentDiscovered(store::Transaction& tx, const Settings& settings,
                                            const Caller& caller, const core::Change& change);

// A validation of `incident` found `finding`. `recovered` marks the version its rollback made
// live (the rollback of job `rollback_job_id`, or the latest one that acted) validated good.
core::Result<void> NoteValidationFinding(store::Transaction& tx, const Settings& settings,
                                         const Caller& caller, const core::Incident& incident,
                                         std::string_view rollback_job_id,
                                         core::ValidationFinding finding, core::Time time);

// ---- Reconciliation against the folder.

// Result of one comparison of the manifest with the tool's inventory: what it found and corrected.
struct ManifestReconciliation {
  std::string service;
  std::string live_version;              // what the folder shows as live
  std::string live_problem;              // why the folder shows no live release, when it shows none
  std::vector<std::string> corrections;  // one sentence each; empty when they agreed
  bool written = false;                  // the manifest was created or changed
};

nlohmann::json ToJson(const ManifestReconciliation& report);

// Compares the service's manifest with `inventory`, read from the tool just before, and corrects
// the manifest: releases the folder has and the manifest lacks (the live one as deployed, the
// others as present), releases gone from the folder, markers that appeared or vanished, and the
// live version. When `current` moved to an older release than the manifest's live one (a switch
// whose store write was lost, or a switch by hand), the release it moved away from becomes
// rolled back. The live release becomes deployed when it was rolled back or only present. When
// the folder shows no live release, or one that `inventory` does not list as complete, the
// manifest keeps its live version and stores the folder's problem, which the audit check
// reports, and nothing is marked deployed or rolled back. Records the corrections in one ledger
// entry "release_manifest.reconciled", and each status change as usual; a problem already stored is
// not a new correction.
core::Result<ManifestReconciliation> ReconcileReleaseManifest(store::Transaction& tx,
                                                              const Caller& caller,
                                                              std::string_view service,
                                                              const providers::Inventory& inventory,
                                                              core::Time now);

// Returns whether release `version` came before release `other`, by an order a `touch` of a
// marker cannot change. Two Capistrano-style timestamp names (YYYYMMDDHHMMSS) compare by name.
// Two releases in the manifest compare by the time it first saw them, then by name. Otherwise
// the releases provider's order decides: oldest marker time first, then by name, as `inventory`
// lists complete releases. Returns nullopt when the two are the same release or cannot be placed.
std::optional<bool> ReleasedBefore(const providers::Inventory& inventory,
                                   const ReleaseManifest* manifest, std::string_view version,
                                   std::string_view other);

// ---- Choosing the target.

// The manifest's view on the rollback target of one incident, loaded once per assessment.
class ReleaseTargetAdvisor {
 public:
  // Reads the manifest of `service` in a read transaction of its own; an advisor without a
  // manifest changes nothing.
  static core::Result<ReleaseTargetAdvisor> Load(store::Store& store, const Settings& settings,
                                                 std::string_view service);

  // Adjusts a target chosen by rule (not one a person named): never a release marked failed or
  // rolled back, and the last validated-good release before the suspected one when the manifest
  // records a later one than the changes do. Under the provider's rule, names the newest release
  // before the suspected one that is complete and neither failed nor rolled back. The rule text
  // says what the manifest changed.
  void Refine(const std::vector<core::Change>& changes, std::optional<std::string_view> suspected,
              core::TargetChoice& target) const;

  // A failed precondition when the planned target is marked failed or rolled back, or is gone
  // from the folder; nullopt when the manifest has nothing against it.
  std::optional<core::Precondition> CheckPlanned(std::string_view version) const;

  // Returns why a target the provider chose by its own rule cannot be used, or "" when it can
  // or there is no manifest. The checks are an assessment's: the folder or its marker is
  // missing, the manifest marks the release failed or rolled back, or it is the suspected
  // release or one deployed after it.
  std::string WhyNotTarget(const std::vector<core::Change>& changes,
                           std::optional<std::string_view> suspected,
                           std::string_view version) const;

 private:
  std::optional<ReleaseManifest> manifest_;
};

}  // namespace backout::app
