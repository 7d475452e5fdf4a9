#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/git/git_repository.h"
#include "providers/git/git_settings.h"
#include "providers/git/manifest_text.h"
#include "providers/provider.h"

// What the git provider reverts and how it reads the branch's history, on top of a fetched
// GitRepository. Every function reads the repository only; none fetches or pushes.
namespace backout::providers::git {

// Commits walked at most when searching the branch's history.
inline constexpr size_t kHistoryWalkMax = 5000;

// Trailers of a Backout revert commit's message, one per line at the message's end.
inline constexpr std::string_view kIncidentTrailer = "Backout-Incident: ";
inline constexpr std::string_view kPathTrailer = "Backout-Path: ";
inline constexpr std::string_view kFromTrailer = "Backout-From-Version: ";
inline constexpr std::string_view kToTrailer = "Backout-To-Version: ";
inline constexpr std::string_view kApproverTrailer = "Backout-Approver: ";
inline constexpr std::string_view kExecutorTrailer = "Backout-Executor: ";
inline constexpr std::string_view kKeyTrailer = "Backout-Idempotency-Key: ";

// The text that marks the commit of one execution, searched for before every push.
std::string KeyMarker(std::string_view key);

// Returns the value of `trailer` in `message`, or "" when the message has none.
std::string TrailerValue(std::string_view message, std::string_view trailer);

// The revert that rolls the service back to a target on top of a branch head.
struct RevertPlan {
  std::string head;  // the branch head it was computed on; not part of the plan's digest
  std::string from_version;
  std::string target_version;
  std::string rule;  // how the target was chosen, for people
  bool noop = false;
  std::optional<CommitInfo> suspect;  // the commit that introduced from_version
  std::vector<CommitInfo> reverts;    // newest first
  RevertTree tree;
  std::vector<std::string> suspended;          // automation manifests this revert suspends
  std::vector<std::string> already_suspended;  // automation manifests that were suspended
};

// A change of the version that undid a Backout revert.
struct Undo {
  std::string commit;  // empty when the revert commit itself left the branch
  std::string author;
  std::string summary;
  std::string version;  // the version the branch declares now
};

class RevertPlanner {
 public:
  RevertPlanner(const GitSettings& settings, const VersionReader& reader)
      : settings_(settings), reader_(reader) {}

  // Returns the version the file declares at `commit`. Fails with kFailedPrecondition when the
  // file is missing or has no version.
  core::Result<std::string> VersionAt(const GitRepository& repository,
                                      std::string_view commit) const;

  // Plans the revert to `target` on `head`; an empty target requests the version before the
  // commit that introduced the live one. Fails with kNotFound when the target never appears in
  // the file's history (or, with an empty target, no earlier version exists), and with
  // kFailedPrecondition when the revert conflicts (naming the files) or the automation cannot be
  // suspended.
  core::Result<RevertPlan> Plan(const GitRepository& repository, std::string_view head,
                                std::string_view target) const;

  // The action the plan's digest covers: the branch head is left out, so unrelated commits do
  // not void an approval, but any change to what would be reverted does.
  nlohmann::json Action(const RevertPlan& plan) const;

  // Finds a later change that moved the version away from `target` after `revert_commit`, when
  // the branch at `head` no longer declares `target`.
  core::Result<std::optional<Undo>> FindUndo(const GitRepository& repository, std::string_view head,
                                             std::string_view revert_commit,
                                             std::string_view target) const;

  // The version changes of the file at or after `since`, oldest first. A change back to a version
  // the file had before, or a commit whose message marks a revert, is a rollback.
  core::Result<std::vector<HistoryEntry>> History(const GitRepository& repository,
                                                  std::string_view head, core::Time since) const;

 private:
  const GitSettings& settings_;
  const VersionReader& reader_;
};

}  // namespace backout::providers::git
