// Crash suite: a writer process killed with SIGKILL at random moments never loses an entry whose
// Write had returned, and leaves a log that verifies.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "ledger/entry.h"
#include "ledger/verify.h"
#include "store/store_test_support.h"

extern char** environ;

namespace backout::store {
namespace {

constexpr int kKills = 20;

class StoreCrashTest : public StoreTest {
 protected:
  struct ChildRun {
    std::map<uint64_t, int64_t> reported;  // sequence number -> counter value in its change
    int status = 0;
  };

  // Starts the writer with `interval_seconds` as its checkpoint interval, waits until it has
  // reported `min_reports` writes, lets it run for `runtime` more, kills it and returns what it
  // reported.
  ChildRun RunAndKill(const std::filesystem::path& key_file, std::chrono::milliseconds runtime,
                      int interval_seconds = 0, size_t min_reports = 0) {
    ChildRun run;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return run;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    std::string program = STORE_CRASH_CHILD;
    std::string url = url_;
    std::string key = key_file.string();
    std::string interval = std::to_string(interval_seconds);
    char* argv[] = {program.data(), url.data(), key.data(), interval.data(), nullptr};
    pid_t child = 0;
    const int spawned = posix_spawn(&child, program.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    if (spawned != 0) {
      close(pipe_fds[0]);
      ADD_FAILURE() << "cannot start " << program << ": " << std::strerror(spawned);
      return run;
    }

    // The random delay counts from the first committed write, so a slow start (exec, key load,
    // connecting) under load does not end every run before anything was written.
    pollfd first_report{.fd = pipe_fds[0], .events = POLLIN, .revents = 0};
    poll(&first_report, 1, 30000);
    std::string output;
    char buffer[4096];
    while (static_cast<size_t>(std::count(output.begin(), output.end(), '\n')) < min_reports) {
      pollfd more{.fd = pipe_fds[0], .events = POLLIN, .revents = 0};
      if (poll(&more, 1, 30000) <= 0) break;
      const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      output.append(buffer, static_cast<size_t>(n));
    }
    std::this_thread::sleep_for(runtime);
    kill(child, SIGKILL);
    while (waitpid(child, &run.status, 0) < 0 && errno == EINTR) {
    }

    // Every write end is closed now, so reading ends at end of file. A line cut short by the
    // kill was never reported in full and does not count.
    for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      output.append(buffer, static_cast<size_t>(n));
    }
    close(pipe_fds[0]);
    std::istringstream lines(output.substr(0, output.rfind('\n') + 1));
    uint64_t sequence = 0;
    int64_t counter = 0;
    while (lines >> sequence >> counter) run.reported[sequence] = counter;
    return run;
  }
};

TEST_P(StoreCrashTest, KilledWriterLosesNoReportedEntry) {
  const std::filesystem::path key_file = temp_.path() / "ledger.key";
  auto signer = ledger::Signer::LoadOrCreate(key_file);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  signer_ = *signer;
  ASSERT_NE(OpenStore(), nullptr);  // migrations are not what this test kills

  const unsigned seed = std::random_device()();
  SCOPED_TRACE(::testing::Message() << "random seed " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(3, 100);
  std::map<uint64_t, int64_t> reported;

  for (int kill_number = 0; kill_number < kKills; ++kill_number) {
    SCOPED_TRACE(::testing::Message() << "kill " << kill_number);
    ChildRun run = RunAndKill(key_file, std::chrono::milliseconds(delay_ms(random)));
    ASSERT_TRUE(WIFSIGNALED(run.status))
        << "the writer exited on its own (wait status " << run.status << "); see its stderr";
    ASSERT_EQ(WTERMSIG(run.status), SIGKILL);
    reported.insert(run.reported.begin(), run.reported.end());

    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto report = ledger::VerifyLog(*store, {});
    ASSERT_TRUE(report.has_value()) << report.error().message;
    auto entries = store->ReadEntries(0, report->entries);
    ASSERT_TRUE(entries.has_value()) << entries.error().message;
    for (const auto& [sequence, counter] : reported) {
      ASSERT_LT(sequence, entries->size()) << "reported entry " << sequence << " is missing";
      auto entry = ledger::DecodeEntry((*entries)[sequence].encoded);
      ASSERT_TRUE(entry.has_value()) << entry.error().message;
      ASSERT_EQ(entry->action, "crash.appended") << "entry " << sequence;
      ASSERT_EQ(entry->change["number"], counter)
          << "entry " << sequence << " was replaced by a later write";
    }
  }
  EXPECT_GT(reported.size(), 0u) << "the writer never reported a committed write";
  RecordProperty("reported_writes", static_cast<int>(reported.size()));
}

// With the server's checkpoint interval, the writer saves ledger_state only with its first
// write's checkpoint, so a kill leaves the entries after it unsaved and unsigned. The next writer
// must fold them in, and its checkpoint must cover every reported entry.
TEST_P(StoreCrashTest, KilledWriterUnsavedEntriesAreKept) {
  constexpr size_t kReports = 5;
  const std::filesystem::path key_file = temp_.path() / "ledger.key";
  auto signer = ledger::Signer::LoadOrCreate(key_file);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  signer_ = *signer;
  ASSERT_NE(OpenStore(), nullptr);

  ChildRun run = RunAndKill(key_file, std::chrono::milliseconds(0), 3600, kReports);
  ASSERT_TRUE(WIFSIGNALED(run.status))
      << "the writer exited on its own (wait status " << run.status << "); see its stderr";
  ASSERT_GE(run.reported.size(), kReports);

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto count = store->EntryCount();
  ASSERT_TRUE(count.has_value()) << count.error().message;
  const std::string saved = QueryRaw(url_, "SELECT tree_size FROM ledger_state");
  ASSERT_FALSE(saved.empty());
  EXPECT_LT(std::stoull(saved), *count) << "the killed writer left no unsaved entries to fold in";

  WriteRecord(*store, "record/after-kill");  // signs: this store has not signed before

  auto report = ledger::VerifyLog(*store, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, *count + 1);
  auto latest = store->LatestCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, *count + 1);
  auto entries = store->ReadEntries(0, report->entries);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  for (const auto& [sequence, counter] : run.reported) {
    ASSERT_LT(sequence, entries->size()) << "reported entry " << sequence << " is missing";
    auto entry = ledger::DecodeEntry((*entries)[sequence].encoded);
    ASSERT_TRUE(entry.has_value()) << entry.error().message;
    EXPECT_EQ(entry->change["number"], counter) << "entry " << sequence;
  }
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(StoreCrashTest);

}  // namespace
}  // namespace backout::store
