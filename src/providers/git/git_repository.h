#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/time.h"
#include "providers/git/git_settings.h"
#include "providers/git/manifest_text.h"

struct git_repository;

// The libgit2 side of the `git` provider: a bare clone of the GitOps repository in the
// provider's work folder, fetched before every read, with commits made in memory (no work tree,
// no index file) and pushed without force. Commit ids are lower-case hex strings.
namespace backout::providers::git {

struct CommitInfo {
  std::string id;
  std::string summary;  // the message's first line
  std::string message;
  std::string author;        // "Name <email>"
  core::Time time{};         // the committer's time
  std::string first_parent;  // empty for a root commit
};

// One commit of the branch's first-parent history that changed the service's file.
struct PathChange {
  CommitInfo commit;
  std::optional<std::string> version_before;  // nullopt: no file, or no version in it
  std::optional<std::string> version_after;

  bool ChangesVersion() const { return version_before != version_after; }
};

// A file's new contents in a commit being built.
struct FileUpdate {
  std::string path;
  std::string contents;
};

// The tree a revert produces on top of a base commit.
struct RevertTree {
  std::string tree_id;
  std::vector<std::string> conflicts;      // paths; the tree is unusable when not empty
  std::vector<std::string> changed_files;  // paths that differ from the base, sorted
};

enum class PushStatus { kPushed, kRejected };

struct PushResult {
  PushStatus status = PushStatus::kPushed;
  std::string message;  // the remote's or libgit2's reason for a rejection
};

// Loads libgit2 with dlopen, resolves the functions that GitRepository calls and initializes the
// library. Only the first call in a process does this, and later calls return its result.
// GitRepository::Open calls it first, so another caller needs it only to get the error early.
// Fails with kUnavailable, naming the library and its Debian package, when libgit2 is missing,
// lacks a function or fails to initialize.
core::Result<void> LoadLibgit2();

// Not thread-safe: callers serialize all use of one work folder.
class GitRepository {
 public:
  // Opens the bare clone in settings.work_dir, creating it and its `origin` remote when needed
  // and pointing `origin` at settings.repository.
  static core::Result<GitRepository> Open(const GitSettings& settings);

  GitRepository(GitRepository&& other) noexcept;
  GitRepository& operator=(GitRepository&& other) noexcept;
  ~GitRepository();

  // Fetches the branch and returns the id of its head on the remote. Fails with kUnavailable
  // when the remote cannot be reached and kNotFound when it has no such branch.
  core::Result<std::string> Fetch();

  core::Result<CommitInfo> ReadCommit(std::string_view id) const;
  bool HasCommit(std::string_view id) const;
  // Whether `descendant` is `ancestor` or has it in its history.
  bool IsInHistory(std::string_view ancestor, std::string_view descendant) const;

  // Returns the file's contents at `commit`, or nullopt when the commit has no such file.
  core::Result<std::optional<std::string>> ReadFile(std::string_view commit,
                                                    std::string_view path) const;

  // Walks the first-parent history from `head`, newest first, and calls `visit` for each commit
  // that changed `path`, with the versions `reader` finds before and after. Stops when `visit`
  // returns false or after `max_commits` commits.
  core::Result<void> WalkPathChanges(std::string_view head, std::string_view path,
                                     const VersionReader& reader, size_t max_commits,
                                     const std::function<bool(const PathChange&)>& visit) const;

  // Walks the first-parent history from `head` back to, but not including, `stop_at` (or at most
  // `max_commits` commits) and returns the newest commit whose message contains `text`.
  core::Result<std::optional<CommitInfo>> FindCommitContaining(std::string_view head,
                                                               std::string_view stop_at,
                                                               std::string_view text,
                                                               size_t max_commits) const;

  // Applies the reverts of `commits` (newest first) one after the other on top of `base`, each
  // as `git revert` does against the commit's first parent, then writes `updates` over the
  // result. Stops at the first revert with conflicts and lists their paths.
  core::Result<RevertTree> BuildRevert(std::string_view base,
                                       const std::vector<std::string>& commits,
                                       const std::vector<FileUpdate>& updates) const;

  // Returns the contents of `path` in a tree made by BuildRevert, or nullopt when absent.
  core::Result<std::optional<std::string>> ReadTreeFile(std::string_view tree_id,
                                                        std::string_view path) const;

  // Writes a commit of `tree_id` whose only parent is `parent`, authored and committed by the
  // configured identity at `time`. No branch moves.
  core::Result<std::string> CreateCommit(std::string_view tree_id, std::string_view parent,
                                         const std::string& message, core::Time time) const;

  // Pushes `commit` to the branch, never forced: a remote that moved on rejects it. `key` names
  // the local reference the push is made from.
  core::Result<PushResult> Push(std::string_view commit, std::string_view key);

 private:
  GitRepository(git_repository* repository, const GitSettings& settings);

  git_repository* repository_ = nullptr;
  const GitSettings* settings_ = nullptr;
};

}  // namespace backout::providers::git
