#pragma once

#include <CLI/CLI.hpp>

namespace backout::server {

// Adds `backout serve --config FILE`, which runs the control plane until SIGTERM or SIGINT and
// reloads its configuration on SIGHUP. The callback stores the exit status in `exit_status`.
void AddServeCommand(CLI::App& app, int& exit_status);

// Caps glibc's malloc arenas at kMallocArenas and returns the cap, or returns 0 and changes
// nothing when MALLOC_ARENA_MAX is set in the environment. glibc's default allows 8 arenas per
// core, and each request thread could keep freed memory in its own. Call it before the process
// starts threads, because arenas that already exist stay.
inline constexpr int kMallocArenas = 2;
int LimitMallocArenas();

}  // namespace backout::server
