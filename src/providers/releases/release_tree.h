#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "providers/provider.h"

// The file system side of the `releases` provider: a deploy root laid out the way Capistrano and
// Deployer lay it out,
//
//   <root>/releases/<version>/          one folder per release, never deleted here
//   <root>/releases/<version>/<marker>  present once the release was completely deployed
//   <root>/current -> <root>/releases/<version>   a symbolic link; Backout writes it absolute
//   <root>/revisions.log                optional, Capistrano's one-line-per-event log
//
// Every function may be called from any thread. Concurrent switches of one root are the job
// queue's to prevent; two of them still leave `current` pointing at one complete release.
namespace backout::providers::releases {

// A relative link's text resolves against <root>, as the kernel resolves it, so
// `current -> releases/3` is live like `current -> <root>/releases/3`. Only kLive is a release
// Backout trusts as live. Every other state is a problem to report, never a switch to record.
enum class LinkState {
  kLive,              // a link to an existing folder <root>/releases/<version>
  kMissing,           // no `current` at all
  kNotALink,          // `current` is a folder or a file, not a symbolic link
  kOutsideReleases,   // a link to something other than <root>/releases/<version>
  kDangling,          // a link into <root>/releases whose folder does not exist
  kIncomplete,        // a link to a release folder without its completion marker
  kUntrustedRelease,  // a link to <root>/releases/<version> that is itself a symbolic link
};

// The state of `current`, read with lstat and readlink.
struct CurrentLink {
  LinkState state = LinkState::kMissing;
  std::string target;       // the link's text; empty unless `current` is a symbolic link
  bool relative = false;    // the link's text is a relative path
  std::string version;      // the release's name when the target names <root>/releases/<name>,
                            // also when that folder is missing or incomplete
  core::Time changed_at{};  // the link's status change time (lstat st_ctime) when it exists

  bool live() const { return state == LinkState::kLive; }
};

// One folder under <root>/releases.
struct Release {
  std::string version;
  std::filesystem::path path;
  bool complete = false;      // the marker file exists and the folder is trusted
  core::Time completed_at{};  // the marker's modification time, when complete
  // The reason the folder is not trusted as a release, or empty when it is. A folder that is a
  // symbolic link is never complete, never a target and never live.
  std::string untrusted;
};

// One recognized line of revisions.log. Capistrano writes
//   Branch <branch> (at <revision>) deployed as release <version> by <user>
//   <user> rolled back to release <version>
// with no time; some setups prefix a line with "[YYYY-MM-DD HH:MM:SS]" (UTC), which is read too.
struct RevisionLogLine {
  size_t line_number = 0;
  HistoryKind kind = HistoryKind::kDeploy;
  std::string version;
  std::string actor;
  std::string branch;    // deploy lines only
  std::string revision;  // deploy lines only
  std::optional<core::Time> time;
};

struct RevisionLog {
  std::vector<RevisionLogLine> lines;
  size_t unrecognized_lines = 0;
};

RevisionLog ParseRevisionLog(std::string_view text);

// The Capistrano line for a rollback by `actor`.
std::string RollbackLogLine(std::string_view actor, std::string_view version);

// Returns an error naming the problem when `version` cannot be a release folder's name: empty,
// "." or "..", or containing '/', NUL or control characters.
core::Result<void> CheckVersionName(std::string_view version);

// One system call of a switch, for the transcript.
struct SwitchStep {
  std::string summary;
  nlohmann::json data = nlohmann::json::object();
};

class ReleaseTree {
 public:
  // `root` is absolute and lexically normal; `marker` is a file name without '/'.
  ReleaseTree(std::filesystem::path root, std::string marker);

  const std::filesystem::path& root() const { return root_; }
  const std::string& marker() const { return marker_; }
  std::filesystem::path LinkPath() const;
  std::filesystem::path ReleasesPath() const;
  std::filesystem::path ReleasePath(std::string_view version) const;
  std::filesystem::path RevisionLogPath() const;
  // The temporary link a switch with this idempotency key creates beside `current`.
  std::filesystem::path TempLinkPath(std::string_view key) const;

  CurrentLink ReadCurrent() const;
  // Says what is wrong with `link` and how to repair it; empty when it is live.
  std::string DescribeProblem(const CurrentLink& link) const;
  // Says that a live `link` is relative and that a switch rewrites it; empty otherwise.
  std::string DescribeNote(const CurrentLink& link) const;
  // Returns the reason <root>/releases/<version> is not trusted as a release: it is a symbolic
  // link, wherever it leads. Returns an empty string for a real folder.
  std::string DescribeUntrustedRelease(std::string_view version) const;

  // Lists the release folders, oldest completion first (incomplete and untrusted ones first, then
  // by name).
  core::Result<std::vector<Release>> ListReleases() const;
  // Fails with kNotFound, naming the releases that exist, when the folder is missing.
  core::Result<Release> FindRelease(std::string_view version) const;
  // Returns up to `max_bytes` of the release's marker file.
  core::Result<std::string> ReadMarker(std::string_view version, size_t max_bytes) const;

  // Points `current` at <root>/releases/<version> atomically: creates the temporary link with the
  // absolute target, syncs the root folder, renames the link over `current` and syncs again.
  // Readers of `current` see the old or the new target, never a missing or partial link. Appends
  // each system call to `steps`. On failure `current` is unchanged and the temporary link is
  // removed.
  core::Result<void> Switch(std::string_view version, std::string_view key,
                            std::vector<SwitchStep>& steps) const;
  // Removes a temporary link left by a switch that stopped midway; true when one was removed.
  bool RemoveTempLink(std::string_view key) const;

  // Reads revisions.log; nullopt when the root has none.
  core::Result<std::optional<RevisionLog>> ReadRevisionLog() const;
  // Appends `line` to an existing revisions.log and syncs it. Returns false, writing nothing,
  // when the root has no revisions.log: Backout never creates one.
  core::Result<bool> AppendRevisionLog(std::string_view line) const;

 private:
  std::filesystem::path root_;
  std::string marker_;
};

}  // namespace backout::providers::releases
