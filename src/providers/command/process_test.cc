#include "providers/command/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stop_token>
#include <string>
#include <thread>

#include "providers/command/test_scripts.h"
#include "support/temp_dir.h"

namespace backout::providers::command {
namespace {

using namespace std::chrono_literals;
using testing::LaunchDetached;
using testing::ReadFile;
using testing::WaitForExit;
using testing::WriteScript;

ProcessSpec SpecFor(const backout::testing::TempDir& dir, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.working_dir = dir.path().string();
  spec.output_dir = dir.path();
  return spec;
}

TEST(ProcessStatTest, ReadsOwnProcess) {
  auto stat = ReadProcessStat(::getpid());
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->process_group, ::getpgrp());
  EXPECT_GT(stat->start_ticks, 0u);
  EXPECT_NE(stat->state, 'Z');
}

TEST(ProcessStatTest, MissingProcessIsNullopt) {
  EXPECT_FALSE(ReadProcessStat(0).has_value());
  EXPECT_FALSE(ReadProcessStat(-5).has_value());
}

TEST(ProcessStatTest, WrongStartTimeIsNotRunning) {
  auto stat = ReadProcessStat(::getpid());
  ASSERT_TRUE(stat.has_value());
  EXPECT_TRUE(IsRunning(ProcessIdentity{::getpid(), stat->start_ticks}));
  EXPECT_FALSE(IsRunning(ProcessIdentity{::getpid(), stat->start_ticks + 1}));
}

TEST(RunProcessTest, CapturesOutputAndExitCode) {
  backout::testing::TempDir dir;
  std::string script = WriteScript(dir.path(), "s", "echo out; echo err >&2; exit 3");
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_EQ(run->exit.code, 3);
  EXPECT_TRUE(run->exit.known);
  EXPECT_EQ(run->stdout_output.tail, "out\n");
  EXPECT_EQ(run->stderr_output.tail, "err\n");
  EXPECT_FALSE(run->timed_out);
  EXPECT_EQ(run->exit.Describe(), "exit code 3");
}

TEST(RunProcessTest, RunsInOwnProcessGroupAndFolder) {
  backout::testing::TempDir dir;
  std::string script = WriteScript(dir.path(), "s", "cut -d' ' -f5 /proc/$$/stat; pwd");
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  std::string expected = std::to_string(run->identity.pid) + "\n" + dir.path().string() + "\n";
  EXPECT_EQ(run->stdout_output.tail, expected);
}

TEST(RunProcessTest, MissingProgramFailsWithPath) {
  backout::testing::TempDir dir;
  std::string missing = (dir.path() / "absent").string();
  auto run = RunProcess(SpecFor(dir, {missing}), ProcessLimits{}, {}, nullptr);
  ASSERT_FALSE(run.has_value());
  EXPECT_NE(run.error().message.find(missing), std::string::npos) << run.error().message;
  EXPECT_NE(run.error().message.find("No such file"), std::string::npos) << run.error().message;
}

TEST(RunProcessTest, RelativeProgramIsRejected) {
  backout::testing::TempDir dir;
  auto run = RunProcess(SpecFor(dir, {"sh"}), ProcessLimits{}, {}, nullptr);
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.error().code, core::ErrorCode::kInvalidArgument);
}

TEST(RunProcessTest, BeforeStartSeesProcessBeforeItRuns) {
  backout::testing::TempDir dir;
  auto marker = dir.path() / "ran";
  std::string script = WriteScript(dir.path(), "s", "touch '" + marker.string() + "'");
  bool marker_existed = true;
  bool was_running = false;
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, {},
                        [&](const ProcessIdentity& identity) -> core::Result<void> {
                          marker_existed = std::filesystem::exists(marker);
                          was_running = IsRunning(identity);
                          return {};
                        });
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_FALSE(marker_existed);
  EXPECT_TRUE(was_running);
  EXPECT_TRUE(std::filesystem::exists(marker));
}

TEST(RunProcessTest, BeforeStartFailureRunsNothing) {
  backout::testing::TempDir dir;
  auto marker = dir.path() / "ran";
  std::string script = WriteScript(dir.path(), "s", "touch '" + marker.string() + "'");
  ProcessIdentity seen;
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, {},
                        [&](const ProcessIdentity& identity) -> core::Result<void> {
                          seen = identity;
                          return core::MakeError(core::ErrorCode::kUnavailable, "store down");
                        });
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.error().message, "store down");
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_FALSE(IsRunning(seen));
}

TEST(RunProcessTest, TimeoutKillsWholeGroup) {
  backout::testing::TempDir dir;
  auto pid_file = dir.path() / "grandchild.pid";
  std::string script =
      WriteScript(dir.path(), "s", "sleep 60 & echo $! > '" + pid_file.string() + "'; sleep 60");
  ProcessLimits limits{300ms, 2s, 1024};
  auto run = RunProcess(SpecFor(dir, {script}), limits, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_TRUE(run->timed_out);
  EXPECT_EQ(run->exit.signal, SIGTERM);

  int64_t grandchild = std::stoll(ReadFile(pid_file));
  auto stat = ReadProcessStat(grandchild);
  bool grandchild_gone = !stat || stat->state == 'Z' || stat->process_group != run->identity.pid;
  EXPECT_TRUE(grandchild_gone) << "grandchild " << grandchild << " still runs";
}

TEST(RunProcessTest, IgnoredTermGetsKill) {
  backout::testing::TempDir dir;
  std::string script = WriteScript(dir.path(), "s", "trap '' TERM; while :; do sleep 0.05; done");
  ProcessLimits limits{200ms, 300ms, 1024};
  auto run = RunProcess(SpecFor(dir, {script}), limits, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_TRUE(run->timed_out);
  EXPECT_EQ(run->exit.signal, SIGKILL);
}

TEST(RunProcessTest, StopRequestTerminates) {
  backout::testing::TempDir dir;
  std::string script = WriteScript(dir.path(), "s", "sleep 60");
  std::stop_source stop;
  std::jthread stopper([&stop] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  auto started = std::chrono::steady_clock::now();
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, stop.get_token(), nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_TRUE(run->stopped);
  EXPECT_FALSE(run->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(RunProcessTest, OutputKeepsOnlyTail) {
  backout::testing::TempDir dir;
  std::string script =
      WriteScript(dir.path(), "s", "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done");
  ProcessLimits limits;
  limits.output_max = 100;
  auto run = RunProcess(SpecFor(dir, {script}), limits, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_EQ(run->stdout_output.tail.size(), 100u);
  EXPECT_GT(run->stdout_output.total_bytes, 40000u);
  EXPECT_TRUE(run->stdout_output.tail.ends_with("line-4999\n"));
}

TEST(RunProcessTest, InvalidUtf8IsReplaced) {
  backout::testing::TempDir dir;
  std::string script = WriteScript(dir.path(), "s", "printf 'a\\377b\\303\\251'");
  auto run = RunProcess(SpecFor(dir, {script}), ProcessLimits{}, {}, nullptr);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_EQ(run->stdout_output.tail,
            "a\xEF\xBF\xBD"
            "b\xC3\xA9");
}

TEST(RunProcessTest, EnvironmentIsExactlyTheSpec) {
  backout::testing::TempDir dir;
  ::setenv("BACKOUT_PROCESS_TEST_LEAK", "leaked", 1);
  std::string script = WriteScript(dir.path(), "s", "env | sort");
  ProcessSpec spec = SpecFor(dir, {script});
  spec.env.push_back("ONLY=this");
  auto run = RunProcess(spec, ProcessLimits{}, {}, nullptr);
  ::unsetenv("BACKOUT_PROCESS_TEST_LEAK");
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_NE(run->stdout_output.tail.find("ONLY=this\n"), std::string::npos);
  EXPECT_EQ(run->stdout_output.tail.find("leaked"), std::string::npos);
}

TEST(WaitUntilGoneTest, WaitsForForeignProcess) {
  ProcessIdentity identity = LaunchDetached({"/bin/sleep", "0.3"});
  ASSERT_GT(identity.pid, 0);
  ASSERT_TRUE(IsRunning(identity));
  WaitEnd end = WaitUntilGone(identity, std::chrono::steady_clock::now() + 10s, {});
  EXPECT_EQ(end, WaitEnd::kGone);
  EXPECT_FALSE(IsRunning(identity));
}

TEST(WaitUntilGoneTest, StopsAtDeadline) {
  ProcessIdentity identity = LaunchDetached({"/bin/sleep", "30"});
  ASSERT_TRUE(IsRunning(identity));
  WaitEnd end = WaitUntilGone(identity, std::chrono::steady_clock::now() + 100ms, {});
  EXPECT_EQ(end, WaitEnd::kDeadline);
  TerminateGroup(identity, 1s);
  EXPECT_TRUE(WaitForExit(identity, 2s));
}

TEST(TerminateGroupTest, LeavesReusedPidAlone) {
  ProcessIdentity identity = LaunchDetached({"/bin/sleep", "30"});
  ASSERT_TRUE(IsRunning(identity));
  TerminateGroup(ProcessIdentity{identity.pid, identity.start_ticks + 1}, 100ms);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(IsRunning(identity));
  TerminateGroup(identity, 1s);
  EXPECT_TRUE(WaitForExit(identity, 2s));
}

}  // namespace
}  // namespace backout::providers::command
