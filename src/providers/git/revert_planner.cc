#include "providers/git/revert_planner.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace backout::providers::git {
namespace {

using nlohmann::json;

std::string Short(std::string_view id) { return std::string(id.substr(0, 10)); }

bool MarksRevert(const CommitInfo& commit) {
  return commit.summary.starts_with("Revert") ||
         commit.message.find("\nThis reverts commit ") != std::string::npos ||
         commit.message.find(kToTrailer) != std::string::npos;
}

}  // namespace

std::string KeyMarker(std::string_view key) { return fmt::format("\n{}{}\n", kKeyTrailer, key); }

std::string TrailerValue(std::string_view message, std::string_view trailer) {
  size_t at = message.rfind(fmt::format("\n{}", trailer));
  if (at == std::string_view::npos) return "";
  size_t start = at + 1 + trailer.size();
  size_t end = message.find('\n', start);
  return std::string(message.substr(start, end == std::string_view::npos ? end : end - start));
}

core::Result<std::string> RevertPlanner::VersionAt(const GitRepository& repository,
                                                   std::string_view commit) const {
  auto text = repository.ReadFile(commit, settings_.path);
  if (!text) return std::unexpected(text.error());
  if (!*text) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "{} does not exist at commit {} of branch {}; check the provider's path",
                           settings_.path, Short(commit), settings_.branch);
  }
  auto version = reader_.Read(**text);
  if (!version) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "cannot read the version from {} at commit {}: {}; check "
                           "version_pattern or version_key",
                           settings_.path, Short(commit), version.error().message);
  }
  return *version;
}

core::Result<RevertPlan> RevertPlanner::Plan(const GitRepository& repository, std::string_view head,
                                             std::string_view target) const {
  RevertPlan plan;
  plan.head = std::string(head);
  auto live = VersionAt(repository, head);
  if (!live) return std::unexpected(live.error());
  plan.from_version = *live;

  // Step 1: the version changes to undo, newest first, back to the one that left the target.
  std::vector<PathChange> changes;
  bool reached = false;
  auto walked = repository.WalkPathChanges(head, settings_.path, reader_, kHistoryWalkMax,
                                           [&](const PathChange& change) {
                                             if (!change.ChangesVersion()) return true;
                                             changes.push_back(change);
                                             if (target.empty()) {
                                               reached = change.version_before.has_value();
                                               return false;
                                             }
                                             reached = change.version_before == target;
                                             return !reached;
                                           });
  if (!walked) return std::unexpected(walked.error());
  if (!changes.empty()) plan.suspect = changes.front().commit;

  if (target.empty()) {
    if (!reached) {
      return core::MakeError(
          core::ErrorCode::kNotFound,
          "no rollback target: {} has declared version {} since {} on branch {}, and no earlier "
          "version exists",
          settings_.path, plan.from_version,
          changes.empty() ? "its first commit"
                          : fmt::format("commit {}", Short(changes[0].commit.id)),
          settings_.branch);
    }
    plan.target_version = *changes.front().version_before;
    plan.rule = fmt::format("provider rule: the version before commit {}, which introduced {}",
                            Short(changes.front().commit.id), plan.from_version);
  } else {
    plan.target_version = std::string(target);
    plan.rule = "named target";
  }

  if (plan.target_version == plan.from_version) {
    plan.noop = true;
    return plan;
  }
  if (!reached) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "version {} never appears in {} on branch {} (searched up to {} "
                           "commits); "
                           "give a version the file declared before",
                           plan.target_version, settings_.path, settings_.branch, kHistoryWalkMax);
  }
  for (const PathChange& change : changes) plan.reverts.push_back(change.commit);

  // Step 2: the reverts, which must apply without conflicts and restore the target.
  std::vector<std::string> ids;
  for (const CommitInfo& commit : plan.reverts) ids.push_back(commit.id);
  auto tree = repository.BuildRevert(head, ids, {});
  if (!tree) return std::unexpected(tree.error());
  if (!tree->conflicts.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "reverting {} on branch {} conflicts in {}; revert by hand or choose "
                           "another target",
                           fmt::join(ids | std::views::transform(Short), ", "), settings_.branch,
                           fmt::join(tree->conflicts, ", "));
  }
  auto restored = repository.ReadTreeFile(tree->tree_id, settings_.path);
  if (!restored) return std::unexpected(restored.error());
  auto restored_version =
      *restored
          ? reader_.Read(**restored)
          : core::Result<std::string>(std::unexpected(core::Error{core::ErrorCode::kNotFound, ""}));
  if (!restored_version || *restored_version != plan.target_version) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "reverting {} does not restore version {} in {} (it gives {}); revert "
                           "by hand",
                           fmt::join(ids | std::views::transform(Short), ", "), plan.target_version,
                           settings_.path, restored_version ? *restored_version : "no version");
  }

  // Step 3: the automation manifests, suspended in the same commit.
  std::vector<FileUpdate> updates;
  for (const std::string& manifest : settings_.suspend_automation) {
    auto text = repository.ReadTreeFile(tree->tree_id, manifest);
    if (!text) return std::unexpected(text.error());
    if (!*text) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "automation manifest {} not found on branch {}; fix "
                             "suspend_automation",
                             manifest, settings_.branch);
    }
    if (IsSuspended(**text)) {
      plan.already_suspended.push_back(manifest);
      continue;
    }
    auto suspended = SuspendAutomation(**text);
    if (!suspended) return std::unexpected(suspended.error().WithContext(manifest));
    updates.push_back(FileUpdate{manifest, std::move(*suspended)});
    plan.suspended.push_back(manifest);
  }
  if (!updates.empty()) {
    tree = repository.BuildRevert(head, ids, updates);
    if (!tree) return std::unexpected(tree.error());
  }
  plan.tree = std::move(*tree);
  return plan;
}

json RevertPlanner::Action(const RevertPlan& plan) const {
  json reverts = json::array();
  for (const CommitInfo& commit : plan.reverts) reverts.push_back(commit.id);
  return json{
      {"type", plan.noop ? "noop" : "revert"},
      {"repository", DisplayUrl(settings_.repository)},
      {"branch", settings_.branch},
      {"path", settings_.path},
      {"version_source", reader_.Describe()},
      {"from_version", plan.from_version},
      {"target_version", plan.target_version},
      {"suspect_commit", plan.suspect ? json(plan.suspect->id) : json(nullptr)},
      {"revert_commits", reverts},
      {"changed_files", plan.tree.changed_files},
      {"suspend_automation", plan.suspended},
      {"already_suspended", plan.already_suspended},
      {"author", fmt::format("{} <{}>", settings_.author_name, settings_.author_email)},
      {"force_push", false},
  };
}

core::Result<std::optional<Undo>> RevertPlanner::FindUndo(const GitRepository& repository,
                                                          std::string_view head,
                                                          std::string_view revert_commit,
                                                          std::string_view target) const {
  auto live = VersionAt(repository, head);
  if (!live) return std::unexpected(live.error());
  if (*live == target) return std::optional<Undo>();

  if (!repository.IsInHistory(revert_commit, head)) {
    return std::optional<Undo>(Undo{"", "", "the revert commit is no longer on the branch", *live});
  }

  // The oldest change after the revert that moved the version away from the target.
  std::optional<Undo> undo;
  auto walked = repository.WalkPathChanges(
      head, settings_.path, reader_, kHistoryWalkMax, [&](const PathChange& change) {
        if (change.commit.id == revert_commit) return false;
        if (change.ChangesVersion() && change.version_before == target) {
          undo = Undo{change.commit.id, change.commit.author, change.commit.summary,
                      change.version_after.value_or("no version")};
        }
        return true;
      });
  if (!walked) return std::unexpected(walked.error());
  if (!undo) undo = Undo{"", "", "a later commit changed the version", *live};
  undo->version = *live;
  return undo;
}

core::Result<std::vector<HistoryEntry>> RevertPlanner::History(const GitRepository& repository,
                                                               std::string_view head,
                                                               core::Time since) const {
  std::vector<PathChange> changes;
  auto walked = repository.WalkPathChanges(head, settings_.path, reader_, kHistoryWalkMax,
                                           [&](const PathChange& change) {
                                             if (change.ChangesVersion()) changes.push_back(change);
                                             return true;
                                           });
  if (!walked) return std::unexpected(walked.error());
  std::reverse(changes.begin(), changes.end());

  std::vector<HistoryEntry> entries;
  std::set<std::string> seen;
  for (const PathChange& change : changes) {
    if (change.version_before) seen.insert(*change.version_before);
    if (!change.version_after) continue;

    bool by_backout = change.commit.message.find(kToTrailer) != std::string::npos;
    bool rollback = MarksRevert(change.commit) || seen.contains(*change.version_after);
    seen.insert(*change.version_after);
    if (change.commit.time < since) continue;

    HistoryEntry entry;
    entry.version = *change.version_after;
    entry.time = change.commit.time;
    entry.actor = change.commit.author;
    entry.kind = rollback ? HistoryKind::kRollback : HistoryKind::kDeploy;
    entry.details =
        json{{"source", "git log"},
             {"commit", change.commit.id},
             {"summary", change.commit.summary},
             {"from_version", change.version_before ? json(*change.version_before) : json(nullptr)},
             {"by_backout", by_backout}};
    if (rollback && !by_backout) entry.details["discovered"] = true;
    if (by_backout) {
      entry.details["incident"] = TrailerValue(change.commit.message, kIncidentTrailer);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace backout::providers::git
