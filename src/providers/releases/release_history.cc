#include "providers/releases/release_history.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace backout::providers::releases {
namespace {

using nlohmann::json;

// The newest complete release deployed after the live one that was complete when `current`
// last changed; nullptr when the live release was the newest then. Only such a release makes the
// switch a rollback: a release completed after the switch was deployed without being made live.
const Release* NewerAtSwitch(const std::vector<Release>& releases, const CurrentLink& current) {
  // ListReleases returns deployment order, so the releases after the live one are newer.
  const Release* newer = nullptr;
  bool after_live = false;
  for (const Release& release : releases) {
    if (release.version == current.version) {
      after_live = true;
      continue;
    }
    if (after_live && release.complete && release.completed_at <= current.changed_at) {
      newer = &release;
    }
  }
  return newer;
}

HistoryEntry FromLogLine(const RevisionLogLine& line, const std::map<std::string, Release>& known,
                         core::Time lower_bound) {
  HistoryEntry entry;
  entry.version = line.version;
  entry.actor = line.actor;
  entry.kind = line.kind;
  entry.details = json{{"source", "revisions.log"}, {"line", line.line_number}};
  if (line.kind == HistoryKind::kDeploy) {
    entry.details["branch"] = line.branch;
    entry.details["revision"] = line.revision;
  }

  auto release = known.find(line.version);
  if (line.time) {
    entry.time = *line.time;
    entry.details["time_source"] = "revisions.log";
  } else if (line.kind == HistoryKind::kDeploy && release != known.end() &&
             release->second.complete) {
    entry.time = release->second.completed_at;
    entry.details["time_source"] = "marker modification time";
  } else {
    entry.time = lower_bound;
    entry.details["time_source"] = "not recorded; at or after this time, the line before's";
  }
  if (release == known.end()) entry.details["release_folder_missing"] = true;
  return entry;
}

}  // namespace

core::Result<std::vector<HistoryEntry>> ReadReleaseHistory(const ReleaseTree& tree,
                                                           core::Time since) {
  auto releases = tree.ListReleases();
  if (!releases) return std::unexpected(releases.error());
  auto log = tree.ReadRevisionLog();
  if (!log) return std::unexpected(log.error());
  const CurrentLink current = tree.ReadCurrent();

  std::map<std::string, Release> known;
  for (const Release& release : *releases) known.emplace(release.version, release);

  // Step 1: what revisions.log records.
  std::vector<HistoryEntry> entries;
  std::set<std::string> logged_deploys;
  std::optional<size_t> last_logged;  // index in entries of the log's last line
  if (*log) {
    core::Time lower_bound{};
    for (const RevisionLogLine& line : (*log)->lines) {
      HistoryEntry entry = FromLogLine(line, known, lower_bound);
      lower_bound = std::max(lower_bound, entry.time);
      if (line.kind == HistoryKind::kDeploy) logged_deploys.insert(line.version);
      entries.push_back(std::move(entry));
      last_logged = entries.size() - 1;
    }
  }

  // Step 2: complete releases the log does not name, as deployments at their marker's time.
  for (const Release& release : *releases) {
    if (!release.complete || logged_deploys.contains(release.version)) continue;
    HistoryEntry entry;
    entry.version = release.version;
    entry.time = release.completed_at;
    entry.kind = HistoryKind::kDeploy;
    entry.details = json{{"source", "release folder"}, {"time_source", "marker modification time"}};
    entries.push_back(std::move(entry));
  }

  // Step 3: the latest switch of `current`, when nothing above explains it.
  if (current.live()) {
    const Release* newer = NewerAtSwitch(*releases, current);
    bool explained = false;
    if (last_logged) {
      HistoryEntry& last = entries[*last_logged];
      explained = last.version == current.version;
      if (explained && last.kind == HistoryKind::kRollback &&
          last.details.value("time_source", "") != "revisions.log") {
        last.time = current.changed_at;
        last.details["time_source"] = "current link status change time";
      }
    } else {
      // Without a log, a link to the newest release may be its deploy or a switch back to it
      // after a rollback, and the folder cannot tell the two apart. So only a link older than
      // the release's marker is explained by the deploy. Reconciliation counts a later link as
      // the deploy when its records already show the release live at the switch.
      const auto live = known.find(current.version);
      const bool replaced_after_marker =
          live != known.end() && current.changed_at > live->second.completed_at;
      explained = newer == nullptr && !replaced_after_marker;
    }

    if (!explained) {
      HistoryEntry entry;
      entry.version = current.version;
      entry.time = current.changed_at;
      entry.kind = newer != nullptr ? HistoryKind::kRollback : HistoryKind::kDeploy;
      entry.details = json{{"source", "current link"},
                           {"time_source", "current link status change time"},
                           {"discovered", true},
                           {"link_target", current.target}};
      if (newer != nullptr) entry.details["newer_release"] = newer->version;
      if (current.relative) {
        entry.details["link_relative"] = true;
        entry.details["link_note"] = tree.DescribeNote(current);
      }
      if (last_logged) {
        entry.details["log_out_of_sync"] = true;
        entry.details["last_logged_version"] = entries[*last_logged].version;
      }
      entries.push_back(std::move(entry));
    }
  }

  std::erase_if(entries, [since](const HistoryEntry& entry) { return entry.time < since; });
  std::stable_sort(entries.begin(), entries.end(),
                   [](const HistoryEntry& a, const HistoryEntry& b) { return a.time < b.time; });
  return entries;
}

json DescribeLogSync(const ReleaseTree& tree, const CurrentLink& current) {
  auto log = tree.ReadRevisionLog();
  if (!log) return json{{"present", true}, {"error", log.error().message}};
  if (!*log) return json{{"present", false}};
  if ((*log)->lines.empty()) {
    return json{{"present", true}, {"in_sync", false}, {"last_logged_version", nullptr}};
  }
  const std::string& last = (*log)->lines.back().version;
  return json{{"present", true},
              {"in_sync", current.live() && last == current.version},
              {"last_logged_version", last}};
}

}  // namespace backout::providers::releases
