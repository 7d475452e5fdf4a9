#include "support/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace backout::testing {
namespace {

constexpr std::string_view kOsUser = "postgres";

// The bin folder of the newest PostgreSQL under /usr/lib/postgresql, as Debian installs it.
std::expected<std::filesystem::path, std::string> FindBinDir() {
  const std::filesystem::path base = "/usr/lib/postgresql";
  std::filesystem::path best;
  int best_version = -1;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(base, error)) {
    const std::string name = entry.path().filename().string();
    const int version = std::atoi(name.c_str());
    const std::filesystem::path bin = entry.path() / "bin";
    if (version > best_version && std::filesystem::exists(bin / "initdb") &&
        std::filesystem::exists(bin / "pg_ctl")) {
      best_version = version;
      best = bin;
    }
  }
  if (best.empty()) {
    return std::unexpected(
        "no PostgreSQL server found under /usr/lib/postgresql/*/bin (initdb and pg_ctl); "
        "install the Debian package postgresql (scripts/install-deps.sh does)");
  }
  return best;
}

// A port that was free on 127.0.0.1 a moment ago: the kernel picks it for a socket bound to 0.
std::expected<int, std::string> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::unexpected("cannot create a socket to find a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!ok) return std::unexpected("cannot bind a socket on 127.0.0.1 to find a free port");
  return ntohs(address.sin_port);
}

std::string Tail(const std::filesystem::path& file, size_t lines) {
  std::ifstream in(file);
  if (!in) return fmt::format("({} does not exist)\n", file.string());
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string text;
  for (const std::string& line : last) text += line + "\n";
  return text;
}

}  // namespace

std::expected<PostgresServer*, std::string> PostgresServer::Shared() {
  // Destroyed at exit, which stops a cluster this process started.
  static std::unique_ptr<PostgresServer> server;
  static std::string error;
  static std::once_flag started;
  std::call_once(started, [] {
    if (const char* tmp = std::getenv("BACKOUT_TEST_TMPDIR"); tmp != nullptr) {
      const std::filesystem::path info = std::filesystem::path(tmp) / "postgres-cluster";
      if (std::filesystem::exists(info)) {
        auto attached = Attach(info);
        if (attached) {
          server = std::move(*attached);
          return;
        }
        fmt::print(stderr, "not using the shared PostgreSQL test cluster: {}\n", attached.error());
      }
    }
    auto own = Start(/*stop_at_exit=*/true);
    if (own) {
      server = std::move(*own);
    } else {
      error = own.error();
    }
  });
  if (server == nullptr) return std::unexpected(error);
  return server.get();
}

std::expected<std::unique_ptr<PostgresServer>, std::string> PostgresServer::Start(
    bool stop_at_exit) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->stop_at_exit_ = stop_at_exit;
  if (auto prepared = server->Prepare(); !prepared) return std::unexpected(prepared.error());
  if (auto launched = server->Launch(); !launched) {
    std::string message = launched.error();
    if (auto stopped = server->Stop(); !stopped) message += "\n" + stopped.error();
    return std::unexpected(message);
  }
  return server;
}

std::expected<std::unique_ptr<PostgresServer>, std::string> PostgresServer::Attach(
    const std::filesystem::path& info_file) {
  std::ifstream in(info_file);
  std::string root;
  int port = 0;
  if (!std::getline(in, root) || !(in >> port) || root.empty() || port <= 0) {
    return std::unexpected(fmt::format("{} does not name a folder and a port", info_file.string()));
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  if (auto prepared = server->Prepare(); !prepared) return std::unexpected(prepared.error());
  server->root_ = root;
  server->port_ = port;
  server->running_ = true;
  if (PQping(server->Url("postgres").c_str()) != PQPING_OK) {
    return std::unexpected(fmt::format("no PostgreSQL server answers at {} (described by {})",
                                       server->Url("postgres"), info_file.string()));
  }
  return server;
}

PostgresServer::~PostgresServer() {
  if (!stop_at_exit_ || getpid() != owner_pid_) return;
  if (auto stopped = Stop(); !stopped) fmt::print(stderr, "{}\n", stopped.error());
}

std::string PostgresServer::Url(std::string_view database) const {
  return fmt::format("postgresql://postgres@127.0.0.1:{}/{}", port_, database);
}

std::expected<void, std::string> PostgresServer::WriteInfo(
    const std::filesystem::path& info_file) const {
  std::ofstream out(info_file, std::ios::trunc);
  out << root_.string() << "\n" << port_ << "\n";
  out.close();
  if (!out) return std::unexpected(fmt::format("cannot write {}", info_file.string()));
  return {};
}

std::expected<void, std::string> PostgresServer::Prepare() {
  owner_pid_ = getpid();
  auto bin_dir = FindBinDir();
  if (!bin_dir) return std::unexpected(bin_dir.error());
  bin_dir_ = *bin_dir;

  // PostgreSQL refuses to run as root, so root runs it as the unprivileged `postgres` user.
  if (geteuid() == 0) {
    if (getpwnam(std::string(kOsUser).c_str()) == nullptr) {
      return std::unexpected(
          "tests run as root, but PostgreSQL refuses to run as root and there is no OS user "
          "'postgres' to run it as; install the Debian package postgresql (it creates the user) "
          "or run the tests as an unprivileged user");
    }
    run_as_postgres_ = true;
  }
  return {};
}

std::expected<void, std::string> PostgresServer::Launch() {
  // A short path under /tmp: the server's Unix socket lives here too, and socket paths are
  // limited to about 100 bytes.
  std::string pattern = (std::filesystem::temp_directory_path() / "backout-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected(fmt::format("cannot create a temporary folder {}", pattern));
  }
  root_ = pattern;
  if (run_as_postgres_) {
    const passwd* user = getpwnam(std::string(kOsUser).c_str());
    if (user == nullptr || chown(root_.c_str(), user->pw_uid, user->pw_gid) != 0) {
      return std::unexpected(
          fmt::format("cannot hand the folder {} to the OS user {}", root_.string(), kOsUser));
    }
  }

  auto initialized =
      Run({(bin_dir_ / "initdb").string(), "-D", (root_ / "data").string(), "-U", "postgres",
           "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"});
  if (!initialized) return std::unexpected(initialized.error() + "\n" + LogTail());

  // Another process may take the port between the probe and the server's bind; try a few.
  std::string failure;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port) return std::unexpected(port.error());
    const std::string options = fmt::format(
        "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200",
        *port, root_.string());
    auto started = Run({(bin_dir_ / "pg_ctl").string(), "-D", (root_ / "data").string(), "-l",
                        ServerLog().string(), "-w", "-t", "30", "-o", options, "start"});
    if (started) {
      port_ = *port;
      running_ = true;
      return {};
    }
    failure = started.error();
  }
  return std::unexpected(failure + "\n" + LogTail());
}

std::expected<void, std::string> PostgresServer::Stop() {
  std::string failure;
  if (running_) {
    auto stopped = Run({(bin_dir_ / "pg_ctl").string(), "-D", (root_ / "data").string(), "-m",
                        "fast", "-w", "stop"});
    if (!stopped)
      failure =
          fmt::format("stopping the PostgreSQL test server: {}\n{}", stopped.error(), LogTail());
    running_ = false;
  }
  if (!root_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
    root_.clear();
  }
  if (!failure.empty()) return std::unexpected(failure);
  return {};
}

std::expected<void, std::string> PostgresServer::Run(std::vector<std::string> argv) {
  if (run_as_postgres_) {
    argv.insert(argv.begin(), {"runuser", "-u", std::string(kOsUser), "--"});
  }
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);

  const int log = open(CommandLog().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return std::unexpected(fmt::format("cannot open {}", CommandLog().string()));
  const pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec.
    // The server outlives this call, so it must not inherit the test's other descriptors (a
    // pipe held open by the server would never report end of file).
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    close_range(3, ~0U, 0);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(log);
  if (child < 0) return std::unexpected(fmt::format("cannot fork to run {}", argv[0]));

  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return std::unexpected(fmt::format("waitpid failed for {}", argv[0]));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string command;
    for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
    return std::unexpected(fmt::format("command failed (status {}): {}", status, command));
  }
  return {};
}

std::string PostgresServer::LogTail() const {
  return fmt::format("--- tail of {} ---\n{}--- tail of {} ---\n{}", CommandLog().string(),
                     Tail(CommandLog(), 20), ServerLog().string(), Tail(ServerLog(), 30));
}

std::expected<std::string, std::string> PostgresServer::CreateDatabase() {
  const std::string name = fmt::format("test_{}_{}", getpid(), databases_.fetch_add(1));
  PGconn* connection = PQconnectdb(Url("postgres").c_str());
  std::unique_ptr<PGconn, decltype(&PQfinish)> guard(connection, PQfinish);
  if (PQstatus(connection) != CONNECTION_OK) {
    return std::unexpected(fmt::format("cannot connect to the test server at {}: {}\n{}",
                                       Url("postgres"), PQerrorMessage(connection), LogTail()));
  }
  const std::string sql = fmt::format("CREATE DATABASE \"{}\"", name);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection, sql.c_str()), PQclear);
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return std::unexpected(
        fmt::format("{} failed: {}\n{}", sql, PQresultErrorMessage(result.get()), LogTail()));
  }
  return Url(name);
}

}  // namespace backout::testing
