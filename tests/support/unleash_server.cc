#include "support/unleash_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "support/postgres_server.h"

namespace backout::testing {
namespace {

std::string RandomHex(size_t bytes) {
  std::random_device device;
  std::string hex;
  for (size_t i = 0; i < bytes; ++i) hex += fmt::format("{:02x}", device() & 0xFF);
  return hex;
}

std::expected<int, std::string> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::unexpected("cannot create a socket to find a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!ok) return std::unexpected("cannot bind a socket on 127.0.0.1 to find a free port");
  return ntohs(address.sin_port);
}

// Sends GET /health over a plain socket and returns whether the response is HTTP 200.
bool Healthy(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = fmt::format(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", port);
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[64] = {};
      const ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
      ok = got > 12 && std::string(buffer, got).starts_with("HTTP/1.1 200");
    }
  }
  close(fd);
  return ok;
}

}  // namespace

std::filesystem::path UnleashServer::ComponentDir() {
  return std::filesystem::path(BACKOUT_SOURCE_DIR) / "tests" / "components" / "unleash";
}

std::expected<UnleashServer*, std::string> UnleashServer::Shared() {
  static std::unique_ptr<UnleashServer> server;
  static std::string error;
  static std::once_flag started;
  std::call_once(started, [] {
    auto own = Start();
    if (own) {
      server = std::move(*own);
    } else {
      error = own.error();
    }
  });
  if (server == nullptr) return std::unexpected(error);
  return server.get();
}

std::expected<std::unique_ptr<UnleashServer>, std::string> UnleashServer::Start(
    std::chrono::milliseconds timeout) {
  const std::filesystem::path dir = ComponentDir();
  if (!std::filesystem::exists(dir / "node_modules" / "unleash-server" / "package.json")) {
    return std::unexpected(fmt::format(
        "unleash-server is not installed in {}; run scripts/install-deps.sh (it runs npm ci there)",
        dir.string()));
  }
  auto postgres = PostgresServer::Shared();
  if (!postgres) return std::unexpected("no PostgreSQL test cluster: " + postgres.error());
  auto database = (*postgres)->CreateDatabase();
  if (!database) return std::unexpected(database.error());
  auto port = FreeLoopbackPort();
  if (!port) return std::unexpected(port.error());

  std::unique_ptr<UnleashServer> server(new UnleashServer());
  server->port_ = *port;
  server->url_ = fmt::format("http://127.0.0.1:{}", *port);
  server->admin_token_ = "*:*." + RandomHex(32);
  server->backend_token_ = "*:production." + RandomHex(32);
  server->database_url_ = *database;
  server->log_file_ = std::filesystem::temp_directory_path() /
                      fmt::format("backout-unleash-{}-{}.log", getpid(), *port);

  std::vector<std::string> env = {
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "HOME=" + std::filesystem::temp_directory_path().string(),
      "UNLEASH_DATABASE_URL=" + *database,
      fmt::format("UNLEASH_PORT={}", *port),
      "UNLEASH_ADMIN_TOKEN=" + server->admin_token_,
      "UNLEASH_BACKEND_TOKEN=" + server->backend_token_,
  };
  std::vector<std::string> argv = {"node", (dir / "start-unleash.mjs").string()};
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& variable : env) envp.push_back(variable.data());
  envp.push_back(nullptr);

  const int log = open(server->log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) return std::unexpected(fmt::format("cannot open {}", server->log_file_.string()));
  const std::string working_dir = dir.string();
  const pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec.
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    close_range(3, ~0U, 0);
    if (chdir(working_dir.c_str()) != 0) _exit(126);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log);
  if (child < 0) return std::unexpected("cannot fork to start Unleash");
  server->pid_ = child;

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Healthy(*port)) return server;
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) {
      server->pid_ = 0;
      return std::unexpected(
          fmt::format("Unleash exited during start (status {})\n{}", status, server->LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string tail = server->LogTail();
  server->Stop();
  return std::unexpected(
      fmt::format("Unleash did not answer GET /health on port {} within {} ms\n{}", *port,
                  timeout.count(), tail));
}

UnleashServer::~UnleashServer() {
  Stop();
  std::error_code ignored;
  std::filesystem::remove(log_file_, ignored);
}

void UnleashServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  pid_ = 0;
}

std::expected<void, std::string> UnleashServer::ExecuteSql(const std::string& sql) const {
  PGconn* connection = PQconnectdb(database_url_.c_str());
  std::unique_ptr<PGconn, decltype(&PQfinish)> guard(connection, PQfinish);
  if (PQstatus(connection) != CONNECTION_OK) {
    return std::unexpected(
        fmt::format("cannot connect to {}: {}", database_url_, PQerrorMessage(connection)));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection, sql.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return std::unexpected(fmt::format("{} failed: {}", sql, PQresultErrorMessage(result.get())));
  }
  return {};
}

std::string UnleashServer::LogTail() const {
  std::ifstream in(log_file_);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > 30) last.pop_front();
  }
  std::string text = fmt::format("--- tail of {} ---\n", log_file_.string());
  for (const std::string& line : last) text += line + "\n";
  return text;
}

}  // namespace backout::testing
