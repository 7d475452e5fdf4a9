#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace backout::integration {
namespace {

// Builds the child's environment: the test's own, with `overrides` replacing or adding entries.
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const size_t equals = text.find('=');
    if (equals != std::string::npos) {
      merged[text.substr(0, equals)] = text.substr(equals + 1);
    }
  }
  for (const auto& [name, value] : overrides) {
    merged[name] = value;
  }
  std::vector<std::string> out;
  for (const auto& [name, value] : merged) {
    out.push_back(name + "=" + value);
  }
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) {
    pointers.push_back(text.data());
  }
  pointers.push_back(nullptr);
  return pointers;
}

// Starts `args` with stdout and stderr sent to the given files (appended to when `append`).
pid_t Spawn(std::vector<std::string> args, const std::map<std::string, std::string>& environment,
            const std::filesystem::path& out, const std::filesystem::path& err, bool append) {
  std::vector<std::string> env = MergedEnvironment(environment);
  std::vector<char*> argv = Pointers(args);
  std::vector<char*> envp = Pointers(env);

  const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), flags, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), flags, 0600);

  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    throw std::runtime_error("posix_spawn " + args[0] + " failed: " + std::strerror(error));
  }
  return pid;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

const char* BackoutBinary() { return BACKOUT_BINARY; }

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    throw std::runtime_error(std::string("bind 127.0.0.1:0 failed: ") + std::strerror(errno));
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

int HttpGetStatus(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return 0;
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    close(fd);
    return 0;
  }
  char buffer[64] = {};
  const ssize_t received = recv(fd, buffer, sizeof(buffer) - 1, 0);
  close(fd);
  // The status line reads "HTTP/1.1 200 OK".
  int status = 0;
  if (received > 12 && std::sscanf(buffer, "HTTP/%*d.%*d %d", &status) == 1) {
    return status;
  }
  return 0;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& content,
               std::filesystem::perms perms) {
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << content;
    if (!file) {
      throw std::runtime_error("writing " + path.string() + " failed");
    }
  }
  std::filesystem::permissions(path, perms);
}

int CountLines(const std::filesystem::path& path) {
  const std::string content = ReadFile(path);
  int lines = 0;
  for (char c : content) {
    lines += c == '\n';
  }
  return lines;
}

ServerProcess::ServerProcess(std::filesystem::path config, std::filesystem::path log,
                             std::map<std::string, std::string> environment)
    : config_(std::move(config)), log_(std::move(log)), environment_(std::move(environment)) {}

ServerProcess::~ServerProcess() {
  if (running()) {
    Stop(SIGKILL);
  }
}

bool ServerProcess::Start(int port, std::chrono::seconds timeout) {
  pid_ = Spawn({BackoutBinary(), "serve", "--config", config_.string()}, environment_, log_, log_,
               /*append=*/true);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (HttpGetStatus(port, "/healthz") == 200) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int ServerProcess::Stop(int signal) {
  if (!running()) {
    return -1;
  }
  kill(pid_, signal);

  // A server that ignores SIGTERM for 30 s is killed, so a hung test still ends.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return status;
}

nlohmann::json CliResult::Json() const {
  return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
}

CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& environment,
                 const std::filesystem::path& work_dir) {
  std::vector<std::string> argv = {BackoutBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::filesystem::path out = work_dir / "cli.stdout";
  const std::filesystem::path err = work_dir / "cli.stderr";
  const pid_t pid = Spawn(argv, environment, out, err, /*append=*/false);
  int status = 0;
  waitpid(pid, &status, 0);
  return CliResult{ExitCode(status), ReadFile(out), ReadFile(err)};
}

}  // namespace backout::integration
