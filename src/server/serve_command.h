#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace backout::server {

// Adds `backout serve --config FILE`, which runs the control plane until SIGTERM or SIGINT and
// reloads its configuration on SIGHUP. The command's callback only stores in `run_serve` a
// function that runs the server and returns the exit status. The caller runs it after it has
// destroyed `app`, because the parser's option tree of every command kept about 0.35 MiB of
// heap allocated for the server's lifetime (valgrind massif of an idle `backout serve`).
void AddServeCommand(CLI::App& app, std::function<int()>& run_serve);

// Adds `backout config check FILE`, which loads a configuration as `serve` and a reload do and
// prints the problems without starting anything. It sets `exit_status` to 0 for a valid file, also
// one with warnings, which go to stderr, and to 1 for a file the loader rejects.
void AddConfigCommand(CLI::App& app, int& exit_status);

// Caps glibc's malloc arenas at kMallocArenas and returns the cap, or returns 0 and changes
// nothing when MALLOC_ARENA_MAX is set in the environment. glibc's default allows 8 arenas per
// core, and each request thread could keep freed memory in its own. Call it before the process
// starts threads, because arenas that already exist stay.
inline constexpr int kMallocArenas = 2;
int LimitMallocArenas();

}  // namespace backout::server
