#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace backout::integration {

// Paths of the binaries under test, set by tests/integration/CMakeLists.txt.
const char* BackoutBinary();

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreeLoopbackPort();

// Sends `GET path` to 127.0.0.1:port and returns the status code, or 0 when nothing answers.
int HttpGetStatus(int port, const std::string& path);

// Reads a whole file; returns "" when it does not exist.
std::string ReadFile(const std::filesystem::path& path);

// Writes `content` to `path`, replacing it, with the given permission bits.
void WriteFile(const std::filesystem::path& path, const std::string& content,
               std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                              std::filesystem::perms::owner_write);

// Counts the lines of a file (0 when it does not exist).
int CountLines(const std::filesystem::path& path);

// A `backout serve --config FILE` child process whose stdout and stderr go to a log file.
class ServerProcess {
 public:
  ServerProcess(std::filesystem::path config, std::filesystem::path log,
                std::map<std::string, std::string> environment);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits until GET /healthz on `port` answers 200. Returns false (and
  // leaves the log for the failure message) when it exits or does not answer within `timeout`.
  bool Start(int port, std::chrono::seconds timeout = std::chrono::seconds(30));

  // Sends `signal` and waits for the process to end; returns its wait status.
  int Stop(int signal);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  std::filesystem::path config_;
  std::filesystem::path log_;
  std::map<std::string, std::string> environment_;
  pid_t pid_ = -1;
};

// What one CLI run produced.
struct CliResult {
  int exit_code = -1;  // the process's exit status, or 128 + signal number
  std::string out;
  std::string err;

  // stdout parsed as JSON (for runs with -o json); null when it is not JSON.
  nlohmann::json Json() const;
};

// Runs the `backout` binary with `args` and the environment variables in `environment` added to
// the test's own, and waits for it. `work_dir` holds the captured output files.
CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& environment,
                 const std::filesystem::path& work_dir);

}  // namespace backout::integration
