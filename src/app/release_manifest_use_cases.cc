// Showing a service's release manifest beside the folder's state.
#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/release_manifest.h"
#include "app/try.h"

namespace backout::app {
namespace {

using nlohmann::json;

// One row per release: the manifest's entry. `live` marks the manifest's live release, so the
// rows agree with the manifest's live_version, also while the folder shows no live release.
json ReleaseRow(const ReleaseEntry& entry, std::string_view live_version) {
  json row = {{"version", entry.version},
              {"status", ReleaseStatusName(entry.status)},
              {"first_seen", core::FormatTime(entry.first_seen)},
              {"completed_at",
               entry.completed_at ? json(core::FormatTime(*entry.completed_at)) : json(nullptr)},
              {"complete", entry.complete},
              {"in_folder", entry.in_folder},
              {"change_ids", entry.change_ids},
              {"status_changed_at", nullptr},
              {"set_by", ""},
              {"reason", ""},
              {"history", json::array()}};
  for (const ReleaseStatusChange& change : entry.history) {
    row["history"].push_back({{"status", ReleaseStatusName(change.status)},
                              {"time", core::FormatTime(change.time)},
                              {"set_by", change.set_by},
                              {"reason", change.reason}});
  }
  if (!entry.history.empty()) {
    const ReleaseStatusChange& last = entry.history.back();
    row["status_changed_at"] = core::FormatTime(last.time);
    row["set_by"] = last.set_by;
    row["reason"] = last.reason;
  }
  row["live"] = !live_version.empty() && live_version == entry.version;
  return row;
}

}  // namespace

core::Result<json> ControlPlane::ListReleases(const Caller& caller, std::string_view name) {
  const auto current = settings();
  std::optional<ReleaseManifest> manifest;
  BACKOUT_CHECK(Read(
      caller, "service.releases", fmt::format("service/{}", name),
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        if (current->config.FindService(name) == nullptr) {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "service {} is not in the configuration; `backout "
                                 "service list` shows the configured services",
                                 name);
        }
        if (!KeepsReleaseManifest(*current, name)) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "service {} has no release manifest: only services whose provider "
                                 "lists the versions it keeps (kind releases) have one",
                                 name);
        }
        BACKOUT_TRY(manifest, LoadReleaseManifest(tx, name));
        return {};
      }));

  // The folder, read now, so a reader sees where the two disagree before reconciliation runs.
  const auto& provider = current->providers.at(std::string(name));
  auto inventory = provider->ReadInventory();
  json folder = {{"live_version", nullptr}, {"live_problem", ""}, {"error", nullptr}};
  if (inventory) {
    folder["live_version"] =
        inventory->live_version.empty() ? json(nullptr) : json(inventory->live_version);
    folder["live_problem"] = inventory->live_problem;
    folder["observed_at"] = core::FormatTime(inventory->observed_at);
  } else {
    folder["error"] = inventory.error().message;
  }

  json releases = json::array();
  if (manifest) {
    for (const ReleaseEntry& entry : manifest->releases) {
      releases.push_back(ReleaseRow(entry, manifest->live_version));
    }
  }
  // A folder without a live release cannot confirm the manifest's, even when both are empty.
  const bool agrees = manifest && inventory && !inventory->live_version.empty() &&
                      manifest->live_version == inventory->live_version;
  return json{
      {"service", std::string(name)},
      {"provider", provider->Kind()},
      {"live_version",
       manifest && !manifest->live_version.empty() ? json(manifest->live_version) : json(nullptr)},
      {"live_problem", manifest ? manifest->live_problem : std::string()},
      {"reconciled_at", manifest && manifest->reconciled_at
                            ? json(core::FormatTime(*manifest->reconciled_at))
                            : json(nullptr)},
      {"folder", std::move(folder)},
      {"agrees_with_folder", agrees},
      {"releases", std::move(releases)}};
}

}  // namespace backout::app
