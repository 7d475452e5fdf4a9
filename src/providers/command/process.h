#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/error.h"
#include "providers/provider.h"

// Local processes for the command provider: start without a shell in a process group of their
// own, wait with a timeout, terminate the group, and recognize a process again after a restart.
// Every function here may be called from any thread.
namespace backout::providers::command {

// The fields of /proc/PID/stat this module needs.
struct ProcessStat {
  char state = '?';  // R, S, D, Z, …
  int64_t process_group = 0;
  uint64_t start_ticks = 0;  // clock ticks after boot at which the process started
};

// Reads /proc/PID/stat. Returns nullopt when the process does not exist or cannot be read.
std::optional<ProcessStat> ReadProcessStat(int64_t pid);

// Returns whether `identity` names a process that still runs: the PID exists, is not a zombie,
// and started at the recorded time. A different start time means the PID was reused.
bool IsRunning(const ProcessIdentity& identity);

// How a process ended. `known` is false when the exit status could not be collected because the
// process was not this server's child, or another waiter reaped it.
struct ExitStatus {
  bool known = false;
  int code = -1;   // exit code when it exited normally, else -1
  int signal = 0;  // the signal that ended it, else 0

  bool Succeeded() const { return known && code == 0; }
  std::string Describe() const;  // "exit code 3", "killed by signal 9 (Killed)", "exit unknown"
};

// The end of one output stream, as valid UTF-8 (invalid bytes become U+FFFD).
struct CapturedOutput {
  std::string tail;
  uint64_t total_bytes = 0;  // bytes the process wrote in all; more than tail's size when cut
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path; no PATH search, no shell
  std::vector<std::string> env;   // the complete environment, as NAME=VALUE
  std::string working_dir = "/";
  // Folder for the two unlinked files that receive stdout and stderr. Files, unlike pipes, let
  // the process keep writing after this server dies, so a crash never kills a runbook midway.
  std::filesystem::path output_dir;
};

struct ProcessLimits {
  std::chrono::milliseconds timeout{300'000};
  std::chrono::milliseconds kill_grace{10'000};  // between SIGTERM and SIGKILL to the group
  size_t output_max = 64 * 1024;                 // bytes kept from the end of each stream
};

struct ProcessRun {
  ProcessIdentity identity;
  ExitStatus exit;
  bool timed_out = false;
  bool stopped = false;  // the caller requested a stop
  std::chrono::milliseconds duration{0};
  CapturedOutput stdout_output;
  CapturedOutput stderr_output;
};

// Called with the new process's identity before it runs its program. When it returns an error,
// the process is killed before running anything.
using BeforeStart = std::function<core::Result<void>(const ProcessIdentity& identity)>;

// Runs `spec` to the end. The process first becomes leader of a new process group and waits for
// `before_start` to succeed; only then does it execute argv[0]. On timeout or a stop request the
// whole group gets SIGTERM, then SIGKILL after the grace period. Fails, with nothing run, when the
// process cannot be created, `before_start` fails or argv[0] cannot be executed.
core::Result<ProcessRun> RunProcess(const ProcessSpec& spec, const ProcessLimits& limits,
                                    std::stop_token stop, const BeforeStart& before_start);

enum class WaitEnd { kGone, kDeadline, kStopped };

// Waits, by polling /proc, until `identity` no longer runs, `deadline` passes or a stop is
// requested. For processes that are not this server's children, such as a runbook adopted after a
// restart.
WaitEnd WaitUntilGone(const ProcessIdentity& identity,
                      std::chrono::steady_clock::time_point deadline, std::stop_token stop);

// Sends SIGTERM to the process group led by `identity`, waits up to `grace` for its members to
// end, then sends SIGKILL. Does nothing when `identity` no longer runs, so a reused PID is never
// signalled.
void TerminateGroup(const ProcessIdentity& identity, std::chrono::milliseconds grace);

}  // namespace backout::providers::command
