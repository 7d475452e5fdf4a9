#pragma once

#include <atomic>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace backout::testing {

// A throwaway PostgreSQL cluster for one test process: initdb and pg_ctl (the newest
// /usr/lib/postgresql/*/bin) in a temporary folder, listening on a free port on 127.0.0.1 only,
// with fsync off. When the process runs as root, the server runs as the OS user `postgres`
// (through runuser), because PostgreSQL refuses to run as root. The cluster stops at process
// exit (pg_ctl stop -m fast) and its folder is removed.
//
// Tests that need PostgreSQL call Shared() and fail, never skip, when it returns an error.
class PostgresServer {
 public:
  // Starts the cluster on the first call; later calls return the same one. Thread-safe. The error
  // explains what failed and ends with the tail of the server's log.
  static std::expected<PostgresServer*, std::string> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates a new empty database and returns its libpq URL,
  // postgresql://postgres@127.0.0.1:PORT/NAME.
  std::expected<std::string, std::string> CreateDatabase();

  int port() const { return port_; }
  std::string Url(std::string_view database) const;

 private:
  PostgresServer() = default;

  std::expected<void, std::string> Start();
  void Stop();
  // Runs `argv` (as `postgres` when this process is root), its output appended to command_log_.
  std::expected<void, std::string> Run(std::vector<std::string> argv);
  std::string LogTail() const;

  std::filesystem::path bin_dir_;
  std::filesystem::path root_;  // the temporary folder: data/, the socket, logs
  std::filesystem::path command_log_;
  std::filesystem::path server_log_;
  bool run_as_postgres_ = false;
  bool running_ = false;
  pid_t owner_pid_ = 0;  // only the process that started the cluster stops it
  int port_ = 0;
  std::atomic<int> databases_ = 0;
};

}  // namespace backout::testing
