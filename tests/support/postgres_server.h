#pragma once

#include <sys/types.h>
#include <atomic>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace backout::testing {

// A throwaway PostgreSQL cluster for tests: initdb and pg_ctl (the newest
// /usr/lib/postgresql/*/bin) in a temporary folder under /tmp, listening on a free port on
// 127.0.0.1 only, with fsync off. When the process runs as root, the server runs as the OS user
// `postgres` (through runuser), because PostgreSQL refuses to run as root.
//
// CTest starts one cluster for the whole run (the `postgres_cluster` fixture, see
// tests/support/CMakeLists.txt) and describes it in $BACKOUT_TEST_TMPDIR/postgres-cluster. A test
// binary run on its own starts its own cluster and stops it at exit.
//
// Tests that need PostgreSQL call Shared() and fail, never skip, when it returns an error.
class PostgresServer {
 public:
  // Returns the cluster of this test process: the one the CTest fixture describes when it accepts
  // connections, otherwise one started on the first call and stopped at process exit.
  // Thread-safe. The error explains what failed and ends with the tail of the server's log.
  static std::expected<PostgresServer*, std::string> Shared();

  // Starts a cluster in a new temporary folder. With `stop_at_exit`, destroying the object stops
  // the cluster and removes the folder; without it, the cluster outlives this process.
  static std::expected<std::unique_ptr<PostgresServer>, std::string> Start(bool stop_at_exit);

  // Connects to a running cluster that WriteInfo described in `info_file`. The returned object
  // does not stop the cluster when destroyed; Stop() does.
  static std::expected<std::unique_ptr<PostgresServer>, std::string> Attach(
      const std::filesystem::path& info_file);

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Records the folder and the port for Attach.
  std::expected<void, std::string> WriteInfo(const std::filesystem::path& info_file) const;

  // Stops the server (pg_ctl stop -m fast) and removes its folder.
  std::expected<void, std::string> Stop();

  // Creates a new empty database and returns its libpq URL,
  // postgresql://postgres@127.0.0.1:PORT/NAME.
  std::expected<std::string, std::string> CreateDatabase();

  int port() const { return port_; }
  std::string Url(std::string_view database) const;

 private:
  PostgresServer() = default;

  std::expected<void, std::string> Prepare();
  std::expected<void, std::string> Launch();
  // Runs `argv` (as `postgres` when this process is root), its output appended to the command log.
  std::expected<void, std::string> Run(std::vector<std::string> argv);
  std::filesystem::path CommandLog() const { return root_ / "commands.log"; }
  std::filesystem::path ServerLog() const { return root_ / "server.log"; }
  std::string LogTail() const;

  std::filesystem::path bin_dir_;
  std::filesystem::path root_;  // the temporary folder: data/, the socket, logs
  bool run_as_postgres_ = false;
  bool stop_at_exit_ = false;
  bool running_ = false;
  pid_t owner_pid_ = 0;  // only the process that created this object stops the cluster at exit
  int port_ = 0;
  std::atomic<int> databases_ = 0;
};

}  // namespace backout::testing
