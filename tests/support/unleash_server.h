#pragma once

#include <sys/types.h>

#include <chrono>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>

namespace backout::testing {

// A real Unleash server (unleash-server from tests/components/unleash, run by Node) for tests,
// on a free port of 127.0.0.1, against a new database of the test PostgreSQL cluster. It starts
// with two random tokens and no user with a password: an admin API token (`*:*.HEX`) and a
// backend token for the `production` environment (`*:production.HEX`).
//
// The components need `npm ci` in tests/components/unleash (scripts/install-deps.sh runs it).
// Tests that need Unleash call Shared() and fail, never skip, when it returns an error.
class UnleashServer {
 public:
  // Returns the server of this test process, started on the first call and stopped at exit.
  // Thread-safe. The error describes what failed and ends with the tail of the server's log.
  static std::expected<UnleashServer*, std::string> Shared();

  // Starts a server on a new database and waits until GET /health returns 200, at most `timeout`.
  static std::expected<std::unique_ptr<UnleashServer>, std::string> Start(
      std::chrono::milliseconds timeout = std::chrono::seconds(60));

  ~UnleashServer();
  UnleashServer(const UnleashServer&) = delete;
  UnleashServer& operator=(const UnleashServer&) = delete;

  // Stops the server: SIGTERM to its PID, then SIGKILL after 10 s.
  void Stop();

  std::string url() const { return url_; }  // http://127.0.0.1:PORT, without /api
  const std::string& admin_token() const { return admin_token_; }
  const std::string& backend_token() const { return backend_token_; }
  const std::string& database_url() const { return database_url_; }
  // The folder with package.json, node_modules and the scripts.
  static std::filesystem::path ComponentDir();
  // Runs one SQL statement on the server's database, for state the Admin API cannot set.
  std::expected<void, std::string> ExecuteSql(const std::string& sql) const;

 private:
  UnleashServer() = default;
  std::string LogTail() const;

  pid_t pid_ = 0;
  int port_ = 0;
  std::string url_;
  std::string admin_token_;
  std::string backend_token_;
  std::string database_url_;
  std::filesystem::path log_file_;
};

}  // namespace backout::testing
