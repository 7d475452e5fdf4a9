#include "providers/releases/release_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "providers/releases/test_releases.h"
#include "support/temp_dir.h"

namespace backout::providers::releases {
namespace {

namespace fs = std::filesystem;
using testing::MakeRelease;
using testing::PointCurrent;
using testing::SecondsAfterEpoch;

constexpr std::string_view kMarker = ".backout-release-complete";

class ReleaseTreeTest : public ::testing::Test {
 protected:
  ReleaseTreeTest() : root_(dir_.path() / "app"), tree_(root_, std::string(kMarker)) {
    fs::create_directories(root_ / "releases");
  }

  fs::path Release(const std::string& version, bool complete = true, int64_t at = 1'000) {
    return MakeRelease(root_, version, complete, at, std::string(kMarker));
  }

  backout::testing::TempDir dir_;
  fs::path root_;
  ReleaseTree tree_;
};

// --- reading current ---

TEST_F(ReleaseTreeTest, CurrentLiveAbsoluteLink) {
  Release("1");
  PointCurrent(root_, (root_ / "releases/1").string());
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kLive);
  EXPECT_EQ(link.version, "1");
  EXPECT_EQ(link.target, (root_ / "releases/1").string());
}

TEST_F(ReleaseTreeTest, CurrentWithTrailingSlashIsLive) {
  Release("1");
  PointCurrent(root_, (root_ / "releases/1").string() + "/");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kLive);
  EXPECT_EQ(link.version, "1");
}

TEST_F(ReleaseTreeTest, RelativeLinkToReleaseIsLive) {
  Release("1");
  PointCurrent(root_, "releases/1");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kLive);
  EXPECT_TRUE(link.relative);
  EXPECT_EQ(link.version, "1");
  EXPECT_EQ(link.target, "releases/1");
  EXPECT_EQ(tree_.DescribeProblem(link), "");
  std::string note = tree_.DescribeNote(link);
  EXPECT_NE(note.find("relative link to 'releases/1'"), std::string::npos) << note;
  EXPECT_NE(note.find((root_ / "releases/1").string()), std::string::npos) << note;
}

TEST_F(ReleaseTreeTest, RelativeLinkThroughParentIsLive) {
  Release("1");
  PointCurrent(root_, "../app/releases/1");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kLive);
  EXPECT_EQ(link.version, "1");
}

TEST_F(ReleaseTreeTest, AbsoluteLinkHasNoNote) {
  Release("1");
  PointCurrent(root_, (root_ / "releases/1").string());
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_FALSE(link.relative);
  EXPECT_EQ(tree_.DescribeNote(link), "");
}

TEST_F(ReleaseTreeTest, DeployerDoubleCdRelativeLink) {
  // `ln -nfs --relative` run from the wrong folder wrote current -> "10", which resolves to
  // <root>/10, outside the release folders.
  Release("10");
  PointCurrent(root_, "10");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kOutsideReleases);
  EXPECT_NE(tree_.DescribeProblem(link).find("'10'"), std::string::npos);
}

TEST_F(ReleaseTreeTest, RelativeDanglingLinkNamesTarget) {
  Release("1");
  PointCurrent(root_, "releases/9");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kDangling);
  EXPECT_EQ(link.version, "9");
  std::string problem = tree_.DescribeProblem(link);
  EXPECT_NE(problem.find("'releases/9'"), std::string::npos) << problem;
  EXPECT_NE(problem.find("dangling"), std::string::npos) << problem;
}

TEST_F(ReleaseTreeTest, LinkToIncompleteReleaseIsNotLive) {
  Release("2", false);
  PointCurrent(root_, (root_ / "releases/2").string());
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kIncomplete);
  EXPECT_FALSE(link.live());
  EXPECT_EQ(link.version, "2");
  std::string problem = tree_.DescribeProblem(link);
  EXPECT_NE(problem.find("release 2, which is incomplete"), std::string::npos) << problem;
  EXPECT_NE(problem.find((root_ / "releases/2" / kMarker).string()), std::string::npos) << problem;
}

TEST_F(ReleaseTreeTest, MarkerThatIsFolderIsIncomplete) {
  Release("2", false);
  fs::create_directories(root_ / "releases/2" / kMarker);
  PointCurrent(root_, "releases/2");
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kIncomplete);
}

TEST_F(ReleaseTreeTest, RelativeDotDotThroughLinkIsOutside) {
  // Lexically "releases/hop/../1" is releases/1, but the kernel follows the link `hop` first and
  // so resolves ".." in another root, whose folder 1 is no release of this one.
  Release("1");
  fs::create_directories(dir_.path() / "other/deep");
  fs::create_directories(dir_.path() / "other/1");
  fs::create_directory_symlink(dir_.path() / "other/deep", root_ / "releases/hop");
  PointCurrent(root_, "releases/hop/../1");
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kOutsideReleases);
  EXPECT_EQ(link.version, "");
}

TEST_F(ReleaseTreeTest, DanglingLinkNamesTarget) {
  PointCurrent(root_, (root_ / "releases/7").string());
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kDangling);
  EXPECT_EQ(link.version, "7");
  std::string problem = tree_.DescribeProblem(link);
  EXPECT_NE(problem.find((root_ / "releases/7").string()), std::string::npos) << problem;
  EXPECT_NE(problem.find("dangling"), std::string::npos) << problem;
}

TEST_F(ReleaseTreeTest, LinkOutsideReleasesIsReported) {
  fs::create_directories(dir_.path() / "elsewhere");
  PointCurrent(root_, (dir_.path() / "elsewhere").string());
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kOutsideReleases);
}

TEST_F(ReleaseTreeTest, LinkToNestedFolderIsOutsideReleases) {
  Release("1");
  fs::create_directories(root_ / "releases/1/public");
  PointCurrent(root_, (root_ / "releases/1/public").string());
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kOutsideReleases);
}

TEST_F(ReleaseTreeTest, DotDotLinkIsOutsideReleases) {
  Release("1");
  PointCurrent(root_, (root_ / "releases/1/..").string());
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kOutsideReleases);
}

TEST_F(ReleaseTreeTest, FolderInsteadOfLink) {
  fs::create_directories(root_ / "current");
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kNotALink);
  // `ln -sfn` alone would put the link inside the folder, so the repair moves the folder first.
  const std::string problem = tree_.DescribeProblem(tree_.ReadCurrent());
  const std::string current = (root_ / "current").string();
  const size_t move = problem.find(fmt::format("mv {0} {0}.old", current));
  const size_t link =
      problem.find(fmt::format("ln -sfn {}/VERSION {}", (root_ / "releases").string(), current));
  ASSERT_NE(move, std::string::npos) << problem;
  ASSERT_NE(link, std::string::npos) << problem;
  EXPECT_LT(move, link) << problem;
}

TEST_F(ReleaseTreeTest, MissingCurrent) {
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kMissing);
  EXPECT_NE(tree_.DescribeProblem(tree_.ReadCurrent()).find("does not exist"), std::string::npos);
}

TEST_F(ReleaseTreeTest, RootReachedThroughLinkIsLive) {
  Release("1");
  fs::path alias = dir_.path() / "alias";
  fs::create_directory_symlink(root_, alias);
  PointCurrent(root_, (root_ / "releases/1").string());
  ReleaseTree through_alias(alias, std::string(kMarker));
  CurrentLink link = through_alias.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kLive);
  EXPECT_EQ(link.version, "1");
}

// --- releases ---

TEST_F(ReleaseTreeTest, ListsByCompletionTime) {
  Release("b", true, 3'000);
  Release("a", true, 2'000);
  Release("c", false);
  auto releases = tree_.ListReleases();
  ASSERT_TRUE(releases.has_value()) << releases.error().message;
  ASSERT_EQ(releases->size(), 3u);
  EXPECT_EQ((*releases)[0].version, "c");
  EXPECT_FALSE((*releases)[0].complete);
  EXPECT_EQ((*releases)[1].version, "a");
  EXPECT_EQ((*releases)[1].completed_at, SecondsAfterEpoch(2'000));
  EXPECT_EQ((*releases)[2].version, "b");
}

// A release folder that is a link is listed, but never complete, even when the folder it leads
// to has a marker: a link outside releases/ and an alias of a sibling release alike.
TEST_F(ReleaseTreeTest, ReleaseLinkIsUntrusted) {
  Release("1", true, 1'000);
  const fs::path elsewhere =
      MakeRelease(dir_.path() / "other", "9", true, 2'000, std::string(kMarker));
  fs::create_directory_symlink(elsewhere, root_ / "releases/9");
  fs::create_directory_symlink(root_ / "releases/1", root_ / "releases/alias");

  auto releases = tree_.ListReleases();
  ASSERT_TRUE(releases.has_value()) << releases.error().message;
  ASSERT_EQ(releases->size(), 3u);
  for (const auto& release : *releases) {
    EXPECT_EQ(release.complete, release.version == "1") << release.version;
    EXPECT_EQ(release.untrusted.empty(), release.version == "1") << release.version;
  }
  const std::string alias_reason = tree_.DescribeUntrustedRelease("alias");
  EXPECT_NE(alias_reason.find("'" + (root_ / "releases/1").string() + "'"), std::string::npos)
      << alias_reason;

  PointCurrent(root_, (root_ / "releases/9").string());
  CurrentLink link = tree_.ReadCurrent();
  EXPECT_EQ(link.state, LinkState::kUntrustedRelease);
  EXPECT_EQ(link.version, "9");
  const std::string problem = tree_.DescribeProblem(link);
  EXPECT_NE(problem.find("is a symbolic link to '" + elsewhere.string() + "'"), std::string::npos)
      << problem;
  EXPECT_NE(problem.find("Replace the link " + (root_ / "releases/9").string()), std::string::npos)
      << problem;
  EXPECT_NE(problem.find("ln -sfn"), std::string::npos) << problem;

  PointCurrent(root_, "releases/9");
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kUntrustedRelease);
  PointCurrent(root_, (root_ / "releases/alias").string());
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kUntrustedRelease);
  PointCurrent(root_, (root_ / "releases/1").string());
  EXPECT_EQ(tree_.ReadCurrent().state, LinkState::kLive);
}

TEST_F(ReleaseTreeTest, FindMissingReleaseNamesExisting) {
  Release("1");
  Release("2");
  auto release = tree_.FindRelease("9");
  ASSERT_FALSE(release.has_value());
  EXPECT_EQ(release.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(release.error().message.find("the releases there are: 1, 2"), std::string::npos)
      << release.error().message;
}

TEST_F(ReleaseTreeTest, VersionNamesCannotEscape) {
  EXPECT_FALSE(CheckVersionName(""));
  EXPECT_FALSE(CheckVersionName(".."));
  EXPECT_FALSE(CheckVersionName("../../etc"));
  EXPECT_FALSE(CheckVersionName("a\nb"));
  EXPECT_TRUE(CheckVersionName("20260301120000"));
  EXPECT_TRUE(CheckVersionName("v1.2.3"));
}

// --- switching ---

TEST_F(ReleaseTreeTest, SwitchPointsCurrentAtAbsoluteRelease) {
  Release("1");
  Release("2");
  PointCurrent(root_, (root_ / "releases/2").string());
  std::vector<SwitchStep> steps;
  auto switched = tree_.Switch("1", "job-1", steps);
  ASSERT_TRUE(switched.has_value()) << switched.error().message;
  EXPECT_EQ(fs::read_symlink(root_ / "current").string(), (root_ / "releases/1").string());
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree_.TempLinkPath("job-1"))));
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].data["call"], "symlink");
  EXPECT_EQ(steps[2].data["call"], "rename");
}

TEST_F(ReleaseTreeTest, SwitchReplacesLeftoverTempLink) {
  Release("1");
  Release("2");
  PointCurrent(root_, (root_ / "releases/2").string());
  fs::create_symlink("/nonexistent", tree_.TempLinkPath("job-1"));
  std::vector<SwitchStep> steps;
  ASSERT_TRUE(tree_.Switch("1", "job-1", steps).has_value());
  EXPECT_EQ(tree_.ReadCurrent().version, "1");
  EXPECT_NE(steps[0].summary.find("removed leftover"), std::string::npos);
}

TEST_F(ReleaseTreeTest, SwitchNeverReplacesFolderNamedCurrent) {
  Release("1");
  fs::create_directories(root_ / "current");
  std::vector<SwitchStep> steps;
  auto switched = tree_.Switch("1", "job-1", steps);
  ASSERT_FALSE(switched.has_value());
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(root_ / "current")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree_.TempLinkPath("job-1"))));
}

TEST_F(ReleaseTreeTest, TempLinkNameKeepsKeyInsideRoot) {
  fs::path temp = tree_.TempLinkPath("../../etc/passwd");
  EXPECT_EQ(temp.parent_path(), root_);
  EXPECT_EQ(temp.filename().string(), "current.tmp-.._.._etc_passwd");
}

// A reader resolving `current` in a tight loop while 1 000 switches run must always find an
// absolute link to an existing release folder.
TEST_F(ReleaseTreeTest, ReaderNeverSeesMissingOrDanglingLink) {
  Release("1");
  Release("2");
  PointCurrent(root_, (root_ / "releases/1").string());
  const fs::path link = root_ / "current";
  const std::string first = (root_ / "releases/1").string();
  const std::string second = (root_ / "releases/2").string();

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> missing{0};
  std::atomic<int> relative{0};
  std::atomic<int> dangling{0};
  std::atomic<int> unexpected{0};
  std::thread reader([&] {
    char buffer[4096];
    while (!done.load()) {
      ssize_t n = ::readlink(link.c_str(), buffer, sizeof(buffer) - 1);
      if (n < 0) {
        ++missing;
        continue;
      }
      std::string target(buffer, static_cast<size_t>(n));
      if (target.empty() || target[0] != '/') ++relative;
      if (target != first && target != second) ++unexpected;
      struct stat status {};
      if (::stat(link.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) ++dangling;
      ++reads;
    }
  });

  int failures = 0;
  for (int i = 0; i < 1000; ++i) {
    std::vector<SwitchStep> steps;
    if (!tree_.Switch(i % 2 == 0 ? "2" : "1", "job-loop", steps)) ++failures;
  }
  done = true;
  reader.join();

  EXPECT_EQ(failures, 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(relative.load(), 0);
  EXPECT_EQ(dangling.load(), 0);
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(tree_.ReadCurrent().version, "1");
}

// --- revisions.log ---

TEST(RevisionLogTest, ParsesCapistranoLines) {
  RevisionLog log = ParseRevisionLog(
      "Branch main (at 1a2b3c) deployed as release 20260301120000 by alice\n"
      "bob rolled back to release 20260201120000\n"
      "garbage line\n"
      "\n");
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_EQ(log.unrecognized_lines, 1u);
  EXPECT_EQ(log.lines[0].kind, HistoryKind::kDeploy);
  EXPECT_EQ(log.lines[0].branch, "main");
  EXPECT_EQ(log.lines[0].revision, "1a2b3c");
  EXPECT_EQ(log.lines[0].version, "20260301120000");
  EXPECT_EQ(log.lines[0].actor, "alice");
  EXPECT_FALSE(log.lines[0].time.has_value());
  EXPECT_EQ(log.lines[1].kind, HistoryKind::kRollback);
  EXPECT_EQ(log.lines[1].actor, "bob");
  EXPECT_EQ(log.lines[1].version, "20260201120000");
  EXPECT_EQ(log.lines[1].line_number, 2u);
}

TEST(RevisionLogTest, ParsesTimePrefix) {
  RevisionLog log =
      ParseRevisionLog("[2026-03-01 12:00:05] Branch main (at abc) deployed as release 3 by ci\n");
  ASSERT_EQ(log.lines.size(), 1u);
  ASSERT_TRUE(log.lines[0].time.has_value());
  EXPECT_EQ(core::FormatTime(*log.lines[0].time), "2026-03-01T12:00:05.000000Z");
}

TEST(RevisionLogTest, RollbackLineRoundTrips) {
  RevisionLog log = ParseRevisionLog(RollbackLogLine("sre-1", "2") + "\n");
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0].kind, HistoryKind::kRollback);
  EXPECT_EQ(log.lines[0].actor, "sre-1");
  EXPECT_EQ(log.lines[0].version, "2");
}

TEST_F(ReleaseTreeTest, AppendNeverCreatesLog) {
  auto appended = tree_.AppendRevisionLog("x rolled back to release 1");
  ASSERT_TRUE(appended.has_value()) << appended.error().message;
  EXPECT_FALSE(*appended);
  EXPECT_FALSE(fs::exists(root_ / "revisions.log"));
}

TEST_F(ReleaseTreeTest, AppendAddsLineToExistingLog) {
  std::ofstream(root_ / "revisions.log") << "Branch main (at a) deployed as release 1 by ci\n";
  auto appended = tree_.AppendRevisionLog(RollbackLogLine("sre-1", "1"));
  ASSERT_TRUE(appended.has_value()) << appended.error().message;
  EXPECT_TRUE(*appended);
  auto log = tree_.ReadRevisionLog();
  ASSERT_TRUE(log.has_value());
  ASSERT_TRUE(log->has_value());
  ASSERT_EQ((*log)->lines.size(), 2u);
  EXPECT_EQ((*log)->lines[1].kind, HistoryKind::kRollback);
}

}  // namespace
}  // namespace backout::providers::releases
