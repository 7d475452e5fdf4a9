#include "providers/releases/release_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace backout::providers::releases {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kReleasesFolder = "releases";
constexpr std::string_view kCurrentLink = "current";
constexpr std::string_view kRevisionLogName = "revisions.log";
constexpr std::string_view kTempLinkPrefix = "current.tmp-";
constexpr size_t kKeyMax = 100;
// A revisions.log larger than this is read from its end only.
constexpr size_t kRevisionLogMax = 4 * 1024 * 1024;

core::Time FromTimespec(const struct timespec& time) {
  return core::Time(std::chrono::seconds(time.tv_sec) +
                    std::chrono::microseconds(time.tv_nsec / 1000));
}

std::string ErrnoText(int error) { return std::strerror(error); }

// A file descriptor closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Makes a link's text comparable: lexically normal, without a trailing slash.
std::string NormalPath(std::string_view text) {
  std::string normal = fs::path(text).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

// Keeps an idempotency key usable as part of a file name.
std::string SafeKey(std::string_view key) {
  std::string safe;
  for (char c : key.substr(0, kKeyMax)) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
    safe += plain ? c : '_';
  }
  return safe.empty() ? "_" : safe;
}

core::Result<void> SyncFolder(const fs::path& folder) {
  Fd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot open folder {} to sync it: {}",
                           folder.string(), ErrnoText(errno));
  }
  if (::fsync(fd.get()) != 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "fsync of folder {} failed: {}",
                           folder.string(), ErrnoText(errno));
  }
  return {};
}

// Parses "YYYY-MM-DD HH:MM:SS" with an optional " UTC" or "Z" as a UTC time.
std::optional<core::Time> ParseLogTime(std::string_view text) {
  std::string rfc3339(text);
  if (rfc3339.ends_with(" UTC")) rfc3339.resize(rfc3339.size() - 4);
  if (rfc3339.size() == 19 && rfc3339[10] == ' ') rfc3339[10] = 'T';
  if (!rfc3339.ends_with("Z")) rfc3339 += 'Z';
  auto time = core::ParseTime(rfc3339);
  if (!time) return std::nullopt;
  return *time;
}

}  // namespace

RevisionLog ParseRevisionLog(std::string_view text) {
  static const std::regex kTimePrefix(R"(^\[([^\]]+)\]\s*(.*)$)");
  static const std::regex kDeploy(
      R"(^Branch (.+) \(at (\S+)\) deployed as release (\S+) by (.+)$)");
  static const std::regex kRollback(R"(^(.+) rolled back to release (\S+)$)");

  RevisionLog log;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    std::string line(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;

    RevisionLogLine parsed;
    parsed.line_number = line_number;
    std::smatch match;
    if (std::regex_match(line, match, kTimePrefix)) {
      parsed.time = ParseLogTime(match[1].str());
      line = match[2].str();
    }
    if (std::regex_match(line, match, kDeploy)) {
      parsed.kind = HistoryKind::kDeploy;
      parsed.branch = match[1].str();
      parsed.revision = match[2].str();
      parsed.version = match[3].str();
      parsed.actor = match[4].str();
    } else if (std::regex_match(line, match, kRollback)) {
      parsed.kind = HistoryKind::kRollback;
      parsed.actor = match[1].str();
      parsed.version = match[2].str();
    } else {
      ++log.unrecognized_lines;
      continue;
    }
    log.lines.push_back(std::move(parsed));
  }
  return log;
}

std::string RollbackLogLine(std::string_view actor, std::string_view version) {
  return fmt::format("{} rolled back to release {}", actor, version);
}

core::Result<void> CheckVersionName(std::string_view version) {
  if (version.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "the release name is empty");
  }
  if (version == "." || version == "..") {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "'{}' is not a release name; give the name of a folder under releases/",
                           version);
  }
  for (char c : version) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "release name '{}' contains '/' or a control character; give the "
                             "name of one folder under releases/",
                             version);
    }
  }
  return {};
}

ReleaseTree::ReleaseTree(fs::path root, std::string marker)
    : root_(std::move(root)), marker_(std::move(marker)) {}

fs::path ReleaseTree::LinkPath() const { return root_ / kCurrentLink; }
fs::path ReleaseTree::ReleasesPath() const { return root_ / kReleasesFolder; }
fs::path ReleaseTree::ReleasePath(std::string_view version) const {
  return ReleasesPath() / version;
}
fs::path ReleaseTree::RevisionLogPath() const { return root_ / kRevisionLogName; }
fs::path ReleaseTree::TempLinkPath(std::string_view key) const {
  return root_ / fmt::format("{}{}", kTempLinkPrefix, SafeKey(key));
}

CurrentLink ReleaseTree::ReadCurrent() const {
  CurrentLink link;
  const fs::path path = LinkPath();
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    link.state = LinkState::kMissing;
    return link;
  }
  link.changed_at = FromTimespec(status.st_ctim);
  if (!S_ISLNK(status.st_mode)) {
    link.state = LinkState::kNotALink;
    return link;
  }

  std::error_code error;
  link.target = fs::read_symlink(path, error).string();
  if (error) {
    link.state = LinkState::kMissing;
    return link;
  }
  // A relative target resolves against the folder that contains the link, <root>.
  link.relative = !fs::path(link.target).is_absolute();
  const fs::path absolute = link.relative ? root_ / link.target : fs::path(link.target);

  // The target must name a folder directly under <root>/releases, either as the root is
  // configured or through its real path (when the root itself is reached by a link).
  fs::path target(NormalPath(absolute.string()));
  std::string parent = target.parent_path().string();
  std::string name = target.filename().string();
  fs::path real_releases = fs::weakly_canonical(ReleasesPath(), error);
  bool under_releases =
      parent == ReleasesPath().string() || (!error && parent == real_releases.string());
  if (!under_releases || !CheckVersionName(name)) {
    link.state = LinkState::kOutsideReleases;
    return link;
  }
  link.version = name;

  struct stat resolved {};
  if (::stat(path.c_str(), &resolved) != 0 || !S_ISDIR(resolved.st_mode)) {
    link.state = LinkState::kDangling;
    return link;
  }

  // A relative target is normalized lexically above, but the kernel resolves "..", and links on
  // the way, physically: it must reach the same folder.
  if (link.relative) {
    struct stat release {};
    if (::stat(ReleasePath(name).c_str(), &release) != 0 || release.st_dev != resolved.st_dev ||
        release.st_ino != resolved.st_ino) {
      link.version.clear();
      link.state = LinkState::kOutsideReleases;
      return link;
    }
  }
  // A release folder replaced by a link to elsewhere would let anyone who can write there decide
  // what runs, so Backout does not count it as live.
  if (!DescribeUntrustedRelease(name).empty()) {
    link.state = LinkState::kUntrustedRelease;
    return link;
  }
  // A folder without its marker may be a deploy still copying files, or one that failed.
  struct stat marker {};
  const fs::path marker_path = ReleasePath(name) / marker_;
  if (::stat(marker_path.c_str(), &marker) != 0 || !S_ISREG(marker.st_mode)) {
    link.state = LinkState::kIncomplete;
    return link;
  }
  link.state = LinkState::kLive;
  return link;
}

std::string ReleaseTree::DescribeProblem(const CurrentLink& link) const {
  const std::string path = LinkPath().string();
  std::string repair = fmt::format(
      "point it at a complete release with an absolute target, such as `ln -sfn "
      "{}/VERSION {}`",
      ReleasesPath().string(), path);
  switch (link.state) {
    case LinkState::kLive:
      return "";
    case LinkState::kMissing:
      return fmt::format("{} does not exist, so no release is live; {}", path, repair);
    case LinkState::kNotALink:
      // `ln -sfn` on a folder creates the link inside it, so the folder has to go first.
      return fmt::format(
          "{0} is not a symbolic link, and `ln -sfn` would create the link inside it; move it "
          "aside first (`mv {0} {0}.old`), then point a new link at a complete release with an "
          "absolute target, such as `ln -sfn {1}/VERSION {0}`",
          path, ReleasesPath().string());
    case LinkState::kOutsideReleases:
      return fmt::format("{} links to '{}', which is not a folder directly under {}; {}", path,
                         link.target, ReleasesPath().string(), repair);
    case LinkState::kDangling:
      return fmt::format("{} links to '{}', which does not exist (a dangling link); {}", path,
                         link.target, repair);
    case LinkState::kIncomplete:
      return fmt::format(
          "{} links to release {}, which is incomplete: its marker {} is missing, so its deploy "
          "may not have finished and Backout does not count it as live; create the marker once "
          "the release is complete, or {}",
          path, link.version, (ReleasePath(link.version) / marker_).string(), repair);
    case LinkState::kUntrustedRelease:
      return fmt::format(
          "{} links to release {}, which Backout does not count as live because {}. Replace the "
          "link {} with the release's own folder, or {}",
          path, link.version, DescribeUntrustedRelease(link.version),
          ReleasePath(link.version).string(), repair);
  }
  return "";
}

std::string ReleaseTree::DescribeUntrustedRelease(std::string_view version) const {
  const fs::path path = ReleasePath(version);
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0 || !S_ISLNK(status.st_mode)) return "";

  // Every link counts, also one to a sibling release: such an alias would make a second name for
  // one release, so a rollback to it could keep the suspected release live.
  std::error_code error;
  const std::string text = fs::read_symlink(path, error).string();
  return fmt::format(
      "release folder {} is a symbolic link to '{}', and Backout trusts only real folders "
      "directly under {}",
      path.string(), text, ReleasesPath().string());
}

std::string ReleaseTree::DescribeNote(const CurrentLink& link) const {
  if (!link.live() || !link.relative) return "";
  return fmt::format(
      "{} is a relative link to '{}', which resolves to release {}; a switch by Backout "
      "replaces it with the absolute target {}",
      LinkPath().string(), link.target, link.version, ReleasePath(link.version).string());
}

core::Result<std::vector<Release>> ReleaseTree::ListReleases() const {
  std::error_code error;
  fs::directory_iterator it(ReleasesPath(), error);
  if (error) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "cannot list the release folders in {}: {}; check the provider's root",
                           ReleasesPath().string(), error.message());
  }

  std::vector<Release> releases;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (error) break;
    if (!it->is_directory(error)) continue;
    std::string version = it->path().filename().string();
    if (!CheckVersionName(version)) continue;

    Release release;
    release.version = version;
    release.path = it->path();
    release.untrusted = DescribeUntrustedRelease(version);
    struct stat marker {};
    fs::path marker_path = release.path / marker_;
    if (release.untrusted.empty() && ::stat(marker_path.c_str(), &marker) == 0 &&
        S_ISREG(marker.st_mode)) {
      release.complete = true;
      release.completed_at = FromTimespec(marker.st_mtim);
    }
    releases.push_back(std::move(release));
  }
  if (error) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "cannot list the release folders in {}: {}", ReleasesPath().string(),
                           error.message());
  }

  std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
    if (a.complete != b.complete) return !a.complete;
    if (a.completed_at != b.completed_at) return a.completed_at < b.completed_at;
    return a.version < b.version;
  });
  return releases;
}

core::Result<Release> ReleaseTree::FindRelease(std::string_view version) const {
  if (auto valid = CheckVersionName(version); !valid) return std::unexpected(valid.error());
  auto releases = ListReleases();
  if (!releases) return std::unexpected(releases.error());
  for (const Release& release : *releases) {
    if (release.version == version) return release;
  }

  std::vector<std::string> names;
  for (const Release& release : *releases) names.push_back(release.version);
  std::sort(names.begin(), names.end());
  return core::MakeError(core::ErrorCode::kNotFound,
                         "release {} not found: {} has no such folder; the releases there are: {}",
                         version, ReleasesPath().string(),
                         names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")));
}

core::Result<std::string> ReleaseTree::ReadMarker(std::string_view version,
                                                  size_t max_bytes) const {
  fs::path path = ReleasePath(version) / marker_;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "cannot read marker {}: {}", path.string(),
                           ErrnoText(errno));
  }
  std::string contents(max_bytes, '\0');
  size_t filled = 0;
  while (filled < max_bytes) {
    ssize_t n = ::read(fd.get(), contents.data() + filled, max_bytes - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return core::MakeError(core::ErrorCode::kUnavailable, "cannot read marker {}: {}",
                             path.string(), ErrnoText(errno));
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  contents.resize(filled);
  return contents;
}

core::Result<void> ReleaseTree::Switch(std::string_view version, std::string_view key,
                                       std::vector<SwitchStep>& steps) const {
  const fs::path temp = TempLinkPath(key);
  const fs::path link = LinkPath();
  const std::string target = ReleasePath(version).string();

  // A link left by an earlier attempt with the same key is this job's own; it may point
  // anywhere, so it is replaced.
  if (RemoveTempLink(key)) {
    steps.push_back({fmt::format("removed leftover {}", temp.string()), {{"path", temp.string()}}});
  }

  if (::symlink(target.c_str(), temp.c_str()) != 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot create link {} -> {}: {}",
                           temp.string(), target, ErrnoText(errno));
  }
  steps.push_back({fmt::format("created {} -> {}", temp.string(), target),
                   {{"call", "symlink"}, {"path", temp.string()}, {"target", target}}});

  if (auto synced = SyncFolder(root_); !synced) {
    RemoveTempLink(key);
    return std::unexpected(synced.error());
  }
  steps.push_back({fmt::format("synced {}", root_.string()), {{"call", "fsync"}}});

  if (::rename(temp.c_str(), link.c_str()) != 0) {
    int rename_error = errno;
    RemoveTempLink(key);
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "cannot rename {} over {}: {}; current is unchanged", temp.string(),
                           link.string(), ErrnoText(rename_error));
  }
  steps.push_back({fmt::format("renamed {} over {}", temp.string(), link.string()),
                   {{"call", "rename"}, {"from", temp.string()}, {"to", link.string()}}});

  // The rename is done; a failed sync leaves it in the page cache, where every reader sees it,
  // but a power loss could undo it. That is reported, and read back decides the outcome.
  if (auto synced = SyncFolder(root_); !synced) return std::unexpected(synced.error());
  steps.push_back({fmt::format("synced {}", root_.string()), {{"call", "fsync"}}});
  return {};
}

bool ReleaseTree::RemoveTempLink(std::string_view key) const {
  const fs::path temp = TempLinkPath(key);
  struct stat status {};
  if (::lstat(temp.c_str(), &status) != 0 || !S_ISLNK(status.st_mode)) return false;
  return ::unlink(temp.c_str()) == 0;
}

core::Result<std::optional<RevisionLog>> ReleaseTree::ReadRevisionLog() const {
  const fs::path path = RevisionLogPath();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<RevisionLog>();
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot read {}: {}", path.string(),
                           ErrnoText(errno));
  }

  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot read {}: {}", path.string(),
                           ErrnoText(errno));
  }
  off_t start = 0;
  if (static_cast<size_t>(status.st_size) > kRevisionLogMax) {
    start = status.st_size - static_cast<off_t>(kRevisionLogMax);
  }

  std::string text;
  text.resize(static_cast<size_t>(status.st_size - start));
  size_t filled = 0;
  while (filled < text.size()) {
    ssize_t n = ::pread(fd.get(), text.data() + filled, text.size() - filled,
                        start + static_cast<off_t>(filled));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return core::MakeError(core::ErrorCode::kUnavailable, "cannot read {}: {}", path.string(),
                             ErrnoText(errno));
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  text.resize(filled);

  // Reading from the middle starts inside a line, which is dropped.
  if (start > 0) {
    size_t newline = text.find('\n');
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  return std::optional<RevisionLog>(ParseRevisionLog(text));
}

core::Result<bool> ReleaseTree::AppendRevisionLog(std::string_view line) const {
  const fs::path path = RevisionLogPath();
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return false;
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot open {} to append: {}",
                           path.string(), ErrnoText(errno));
  }
  std::string text = fmt::format("{}\n", line);
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return core::MakeError(core::ErrorCode::kUnavailable, "cannot append to {}: {}",
                             path.string(), ErrnoText(errno));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "fsync of {} failed: {}", path.string(),
                           ErrnoText(errno));
  }
  return true;
}

}  // namespace backout::providers::releases
