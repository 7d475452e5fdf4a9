// The release manifest's part in choosing a rollback target.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/release_manifest.h"
#include "app/try.h"

namespace backout::app {
namespace {

bool Excluded(const ReleaseEntry& entry) {
  return entry.status == ReleaseStatus::kFailed || entry.status == ReleaseStatus::kRolledBack;
}

// The status change that set the entry's current status, for rule and precondition texts.
std::string LastChange(const ReleaseEntry& entry) {
  if (entry.history.empty()) return "";
  const ReleaseStatusChange& change = entry.history.back();
  return fmt::format("set by {} at {}: {}", change.set_by, core::FormatTime(change.time),
                     change.reason);
}

// The version the rollback moves away from, with the time it counts from: the suspected change,
// else the latest change, else the manifest's live release.
struct Suspect {
  std::string version;
  std::optional<core::Time> time;
  const ReleaseEntry* entry = nullptr;  // its release in the manifest, when there is one
};

Suspect FindSuspect(const ReleaseManifest& manifest, const std::vector<core::Change>& changes,
                    std::optional<std::string_view> suspected) {
  const core::Change* chosen = nullptr;
  for (const core::Change& change : changes) {
    if (suspected ? change.id == *suspected : (chosen == nullptr || change.time > chosen->time)) {
      chosen = &change;
    }
  }
  Suspect suspect;
  if (chosen != nullptr) {
    suspect.version = chosen->version;
    suspect.time = chosen->time;
  } else {
    suspect.version = manifest.live_version;
  }
  suspect.entry = manifest.Find(suspect.version);
  if (suspect.entry != nullptr) suspect.time = suspect.entry->OrderTime();
  return suspect;
}

// Says why `entry` cannot be the target, or returns "" when it can.
std::string WhyUnusable(const ReleaseEntry& entry) {
  if (Excluded(entry)) {
    return fmt::format("the release manifest marks it {} ({})", ReleaseStatusName(entry.status),
                       LastChange(entry));
  }
  if (!entry.in_folder) return "it is no longer in the release folder";
  if (!entry.complete) return "its completion marker is missing";
  return "";
}

// Returns the id of a change that deployed `entry` and is among `changes`, so the data
// implications are counted from it.
std::optional<std::string> ChangeOf(const ReleaseEntry& entry,
                                    const std::vector<core::Change>& changes) {
  for (auto id = entry.change_ids.rbegin(); id != entry.change_ids.rend(); ++id) {
    if (std::ranges::find(changes, *id, &core::Change::id) != changes.end()) return *id;
  }
  return std::nullopt;
}

}  // namespace

core::Result<ReleaseTargetAdvisor> ReleaseTargetAdvisor::Load(store::Store& store,
                                                              const Settings& settings,
                                                              std::string_view service) {
  ReleaseTargetAdvisor advisor;
  if (!KeepsReleaseManifest(settings, service)) return advisor;
  BACKOUT_CHECK(store.Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(advisor.manifest_, LoadReleaseManifest(tx, service));
    return {};
  }));
  if (!advisor.manifest_) return advisor;

  // The folder, read now, decides which releases exist and are complete, because the stored
  // flags are as old as the last reconciliation. The statuses come from the manifest. When the
  // folder cannot be read, the stored flags are used.
  auto inventory = settings.providers.at(std::string(service))->ReadInventory();
  if (!inventory) return advisor;
  ReleaseManifest& manifest = *advisor.manifest_;
  for (ReleaseEntry& entry : manifest.releases) entry.in_folder = false;
  for (const providers::InventoryItem& item : inventory->items) {
    ReleaseEntry* entry = manifest.Find(item.version);
    if (entry == nullptr) {
      // Unknown to the manifest: usable, as the provider's own rule would treat it.
      manifest.releases.push_back(ReleaseEntry{
          .version = item.version, .first_seen = item.completed_at.value_or(core::Time{})});
      entry = &manifest.releases.back();
    }
    entry->in_folder = true;
    entry->complete = item.complete;
    entry->completed_at = item.completed_at;
    // As in reconciliation, only the earliest marker time counts, so a `touch` cannot reorder.
    if (item.complete && item.completed_at) {
      entry->first_seen = std::min(entry->first_seen, *item.completed_at);
    }
  }
  std::ranges::stable_sort(manifest.releases, [](const ReleaseEntry& a, const ReleaseEntry& b) {
    return a.DeployedBefore(b);
  });
  return advisor;
}

void ReleaseTargetAdvisor::Refine(const std::vector<core::Change>& changes,
                                  std::optional<std::string_view> suspected,
                                  core::TargetChoice& target) const {
  if (!manifest_) return;
  const Suspect suspect = FindSuspect(*manifest_, changes, suspected);

  // Releases before the suspected one that could be made live: complete, still in the folder,
  // neither failed nor rolled back. The manifest keeps them in deployment order.
  const ReleaseEntry* newest_good = nullptr;
  const ReleaseEntry* newest_usable = nullptr;
  for (const ReleaseEntry& entry : manifest_->releases) {
    if (entry.version == suspect.version || !WhyUnusable(entry).empty()) continue;
    const bool before = suspect.entry != nullptr
                            ? entry.DeployedBefore(*suspect.entry)
                            : !suspect.time || entry.OrderTime() < *suspect.time;
    if (!before) continue;
    newest_usable = &entry;
    if (entry.status == ReleaseStatus::kValidatedGood) newest_good = &entry;
  }

  // A target chosen from the changes is kept unless it cannot be made live or the manifest
  // records a later validated-good release.
  if (!target.provider_rule && !target.version.empty()) {
    const ReleaseEntry* chosen = manifest_->Find(target.version);
    const std::string unusable = chosen != nullptr ? WhyUnusable(*chosen) : "";
    const bool excluded = !unusable.empty();
    const bool later_good = newest_good != nullptr && newest_good->version != target.version &&
                            (chosen == nullptr || chosen->DeployedBefore(*newest_good));
    if (!excluded && !later_good) return;
    if (excluded && newest_good == nullptr && newest_usable == nullptr) {
      target = core::TargetChoice{
          std::nullopt, "",
          fmt::format("{}: release {} cannot be the target because {}, and no other complete "
                      "release before {} is usable",
                      core::kRuleProvider, chosen->version, unusable, suspect.version),
          true};
      return;
    }
  }

  if (newest_good != nullptr) {
    target = core::TargetChoice{
        ChangeOf(*newest_good, changes), newest_good->version,
        fmt::format(
            "{}, by the release manifest: release {} is validated good ({}){}",
            core::kRuleLastValidatedGood, newest_good->version, LastChange(*newest_good),
            target.version.empty() || target.version == newest_good->version
                ? ""
                : fmt::format("; release {} from the changes was not used", target.version)),
        false};
    return;
  }
  if (newest_usable != nullptr) {
    target = core::TargetChoice{
        ChangeOf(*newest_usable, changes), newest_usable->version,
        fmt::format("{}, with the release manifest: the newest complete release before {} that "
                    "is not marked failed or rolled back is {}",
                    core::kRuleProvider, suspect.version.empty() ? "the live one" : suspect.version,
                    newest_usable->version),
        false};
    return;
  }
  target.rule += fmt::format(
      " (the release manifest lists no complete release before {} that is neither failed nor "
      "rolled back)",
      suspect.version.empty() ? "the live one" : suspect.version);
}

std::string ReleaseTargetAdvisor::WhyNotTarget(const std::vector<core::Change>& changes,
                                               std::optional<std::string_view> suspected,
                                               std::string_view version) const {
  if (!manifest_) return "";
  const ReleaseEntry* entry = manifest_->Find(version);
  if (entry == nullptr) {
    return fmt::format("release {} is not a trusted release in the release folder", version);
  }
  if (std::string unusable = WhyUnusable(*entry); !unusable.empty()) {
    return fmt::format("release {} cannot be the target because {}", version, unusable);
  }
  const Suspect suspect = FindSuspect(*manifest_, changes, suspected);
  if (suspect.version.empty()) return "";
  const bool before = suspect.entry != nullptr
                          ? entry->DeployedBefore(*suspect.entry)
                          : !suspect.time || entry->OrderTime() < *suspect.time;
  if (entry->version == suspect.version || !before) {
    return fmt::format("release {} is the suspected release {} or was deployed after it", version,
                       suspect.version);
  }
  return "";
}

std::optional<core::Precondition> ReleaseTargetAdvisor::CheckPlanned(
    std::string_view version) const {
  if (!manifest_ || version.empty()) return std::nullopt;
  const ReleaseEntry* entry = manifest_->Find(version);
  if (entry == nullptr) return std::nullopt;
  constexpr std::string_view kName = "target release not failed or rolled back";
  if (Excluded(*entry)) {
    return core::Precondition{
        std::string(kName), false,
        fmt::format("the release manifest marks release {} {} ({}); choose another target with "
                    "`backout incident assess ID --target VERSION`, or roll forward",
                    entry->version, ReleaseStatusName(entry->status), LastChange(*entry))};
  }
  return core::Precondition{std::string(kName), true,
                            fmt::format("the release manifest marks release {} {}", entry->version,
                                        ReleaseStatusName(entry->status))};
}

}  // namespace backout::app
