#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "providers/command/process.h"

// Helpers for tests that run real shell scripts. Header-only, used by the module's tests only.
namespace backout::providers::command::testing {

// Writes an executable /bin/sh script and returns its absolute path.
inline std::string WriteScript(const std::filesystem::path& folder, const std::string& name,
                               const std::string& body) {
  std::filesystem::path path = folder / name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path.string();
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// Starts `argv` as a grandchild that is not this process's child, leader of its own process
// group, the way a runbook looks to a server restarted after a crash. Returns its identity.
inline ProcessIdentity LaunchDetached(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t middle = ::fork();
  if (middle == 0) {
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::setpgid(0, 0);
      std::vector<char*> args;
      for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ssize_t ignored = ::write(fds[1], &grandchild, sizeof(grandchild));
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t grandchild = 0;
  ssize_t n = ::read(fds[0], &grandchild, sizeof(grandchild));
  ::close(fds[0]);
  ::waitpid(middle, nullptr, 0);
  if (n != sizeof(grandchild)) return {};

  // Its start time is readable once the kernel has created it, which fork has done.
  auto stat = ReadProcessStat(grandchild);
  return ProcessIdentity{grandchild, stat ? stat->start_ticks : 0};
}

// Waits up to `limit` for `identity` to stop running; returns whether it did.
inline bool WaitForExit(const ProcessIdentity& identity, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!IsRunning(identity)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !IsRunning(identity);
}

// Waits up to `limit` for `path` to exist.
inline bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::filesystem::exists(path);
}

}  // namespace backout::providers::command::testing
