#pragma once

#include <sys/types.h>
#include <chrono>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace backout::testing {

// A port that was free on 127.0.0.1 a moment ago: the kernel picks it for a socket bound to port
// 0. Another process may take it before the caller binds it, so callers retry on a bind failure.
std::expected<int, std::string> FreeLoopbackPort();

// The last `lines` lines of a text file, or a note that it does not exist.
std::string TailOfFile(const std::filesystem::path& file, size_t lines);

// A server program started by a test: its standard output and error go to a log file, and it
// receives SIGTERM when the test process dies (PR_SET_PDEATHSIG), so a crashed test leaves no
// server behind. Destroying the object stops the program by its PID. Not thread-safe.
class ChildProcess {
 public:
  // Runs argv[0] (looked up in PATH) with the arguments, output appended to `log_file`.
  static std::expected<ChildProcess, std::string> Spawn(const std::vector<std::string>& argv,
                                                        const std::filesystem::path& log_file);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Sends SIGTERM, waits up to `grace` for the exit, then sends SIGKILL and reaps the process.
  // Does nothing when the process was never started or has already been reaped.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // True while the process has not exited. Reaps it when it has, so its exit status is kept.
  bool Running();

  // The exit status as waitpid returned it, valid once Running() returned false.
  int wait_status() const { return wait_status_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  bool reaped_ = true;
  int wait_status_ = 0;
};

}  // namespace backout::testing
