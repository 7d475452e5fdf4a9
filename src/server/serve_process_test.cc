// `backout serve` as a separate process: SIGTERM lets a running rollback step finish, then the
// process exits with status 0, and the config's `http` limits reach the server.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <latch>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "server/serve_command.h"
#include "support/temp_dir.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A `backout serve` child process with its log in a file. Stops it with SIGKILL if the test
// ends first.
class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& config, const std::filesystem::path& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execl(BACKOUT_BINARY, BACKOUT_BINARY, "serve", "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Sends `signal` and waits up to `timeout` for the exit; returns the wait status or -1.
  int SignalAndWait(int signal, std::chrono::seconds timeout) {
    ::kill(pid_, signal);
    for (int waited_ms = 0; waited_ms < timeout.count() * 1000; waited_ms += 50) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = 0;
};

// Waits for the server's "listening" log line and returns its port, or 0.
int WaitForPort(const std::filesystem::path& log) {
  const std::regex listening("event=listening address=127\\.0\\.0\\.1:([0-9]+)");
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::smatch match;
    const std::string text = ReadFile(log);
    if (std::regex_search(text, match, listening)) return std::stoi(match[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

TEST(ServeProcessTest, SigtermLetsRunningStepFinish) {
  testing::TempDir temp;
  const auto& dir = temp.path();
  std::ofstream(dir / "live") << "v2\n";
  std::ofstream(dir / "rollback.sh") << fmt::format(
      "#!/bin/sh\necho started >> {0}/runbook.log\nsleep 2\necho \"$BACKOUT_TARGET_VERSION\" > "
      "{0}/live\n",
      dir.string());
  std::ofstream(dir / "status.sh") << fmt::format("#!/bin/sh\ncat {}/live\n", dir.string());
  ::chmod((dir / "rollback.sh").c_str(), 0755);
  ::chmod((dir / "status.sh").c_str(), 0755);
  std::ofstream(dir / "backout.yaml") << fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
  - {{name: sre-1, roles: [devops-engineer], services: [checkout]}}
services:
  - name: checkout
    provider: {{kind: command, run: [{0}/rollback.sh], status: [{0}/status.sh]}}
)",
                                                     dir.string());

  ServeProcess server(dir / "backout.yaml", dir / "server.log");
  const int port = WaitForPort(dir / "server.log");
  ASSERT_NE(port, 0) << ReadFile(dir / "server.log");

  httplib::Client client("127.0.0.1", port);
  const std::string admin = [&] {
    std::string token = ReadFile(dir / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }();
  auto post = [&](const std::string& token, const std::string& path, const json& body) {
    httplib::Headers headers = {{"Authorization", "Bearer " + token}};
    auto result = client.Post(path, headers, body.dump(), "application/json");
    EXPECT_TRUE(result);
    EXPECT_LT(result ? result->status : 500, 300) << path << ": " << (result ? result->body : "");
    return result ? json::parse(result->body, nullptr, false) : json();
  };
  const std::string lead =
      post(admin, "/api/v1/users", {{"name", "lead-1"}, {"roles", {"engineering-lead"}}})["token"];
  const std::string sre = post(
      admin, "/api/v1/users",
      {{"name", "sre-1"}, {"roles", {"devops-engineer"}}, {"services", {"checkout"}}})["token"];
  post(sre, "/api/v1/changes",
       {{"service", "checkout"}, {"version", "v1"}, {"time", "2026-01-01T00:00:00Z"}});
  post(sre, "/api/v1/changes/CHG-1/verify", {{"passed", true}});
  post(sre, "/api/v1/changes", {{"service", "checkout"}, {"version", "v2"}});
  post(lead, "/api/v1/incidents",
       {{"service", "checkout"},
        {"severity", "sev2"},
        {"title", "t"},
        {"suspected_change", "CHG-2"}});
  post(lead, "/api/v1/incidents/INC-1/assess", json::object());
  post(lead, "/api/v1/incidents/INC-1/decision", {{"decision", "go"}, {"reason", "v2 broke it"}});
  post(sre, "/api/v1/incidents/INC-1/rollback", json::object());

  for (int attempt = 0; attempt < 200 && ReadFile(dir / "runbook.log").empty(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ReadFile(dir / "runbook.log"), "started\n");

  const int status = server.SignalAndWait(SIGTERM, std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "the server did not exit after SIGTERM";
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string log = ReadFile(dir / "server.log");
  EXPECT_NE(log.find("event=rollback_finished outcome=rolled_back"), std::string::npos) << log;
  EXPECT_NE(log.find("event=stopped clean=true"), std::string::npos) << log;
  EXPECT_EQ(ReadFile(dir / "live"), "v1\n");
}

// The `http` block of the config reaches the server: a request that stalls after its request
// line gets 408 at the configured 300 ms deadline.
TEST(ServeProcessTest, AppliesHttpRequestTimeout) {
  testing::TempDir temp;
  const auto& dir = temp.path();
  std::ofstream(dir / "backout.yaml") << fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
http:
  request_timeout: 300ms
services: []
)",
                                                     dir.string());
  ServeProcess server(dir / "backout.yaml", dir / "server.log");
  const int port = WaitForPort(dir / "server.log");
  ASSERT_NE(port, 0) << ReadFile(dir / "server.log");

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string head = "GET /healthz HTTP/1.1\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));

  // The message names the deadline that ended the request, 300ms here and 10s by default.
  std::string response;
  char buffer[4096];
  pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
  while (::poll(&entry, 1, 30000) > 0) {
    const ssize_t count = ::recv(fd, buffer, sizeof(buffer), 0);
    if (count <= 0) break;
    response.append(buffer, static_cast<size_t>(count));
  }
  ::close(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 408 ")) << response;
  EXPECT_NE(response.find("within 300ms (http.request_timeout)"), std::string::npos) << response;
  EXPECT_EQ(server.SignalAndWait(SIGTERM, std::chrono::seconds(20)), 0)
      << ReadFile(dir / "server.log");
  EXPECT_NE(
      ReadFile(dir / "server.log").find("event=request_timeout remote=127.0.0.1 timeout=300ms"),
      std::string::npos)
      << ReadFile(dir / "server.log");
}

// Counts the malloc arenas of this process: malloc_info lists each as one <heap nr="N">.
int CountMallocArenas() {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* stream = open_memstream(&text, &size);
  malloc_info(0, stream);
  std::fclose(stream);
  const std::string info(text, size);
  std::free(text);
  int count = 0;
  for (size_t at = info.find("<heap nr="); at != std::string::npos;
       at = info.find("<heap nr=", at + 1)) {
    ++count;
  }
  return count;
}

// Starts `threads` threads that each allocate while all the others are alive, so that glibc
// gives each a new arena as long as its cap allows.
void AllocateFromLiveThreads(int threads) {
  std::latch all_allocated(threads);
  std::vector<std::thread> running;
  for (int i = 0; i < threads; ++i) {
    running.emplace_back([&all_allocated] {
      void* block = std::malloc(4096);
      all_allocated.arrive_and_wait();
      std::free(block);
    });
  }
  for (std::thread& thread : running) thread.join();
}

// The death tests run in a new process, where no earlier test has created arenas.
// libcurl is opened on the first HTTP request. A `releases` service with only a health command
// makes none, so the server starts even when the libcurl it would load is broken.
TEST(ServeProcessTest, StartsWithoutLibcurlWhenNoUrlIsUsed) {
  testing::TempDir temp;
  const auto& dir = temp.path();
  std::filesystem::create_directories(dir / "broken-libraries");
  std::ofstream(dir / "broken-libraries" / "libcurl.so.4") << "";  // not a shared object
  std::filesystem::create_directories(dir / "site" / "releases" / "1");
  std::ofstream(dir / "site" / "releases" / "1" / ".backout-release-complete") << "";
  std::filesystem::create_directory_symlink("releases/1", dir / "site" / "current");
  std::ofstream(dir / "backout.yaml") << fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
services:
  - name: storefront
    provider:
      kind: releases
      root: {0}/site
      marker: .backout-release-complete
      health: [/bin/true]
)",
                                                     dir.string());

  // The child inherits the environment at fork.
  ::setenv("LD_LIBRARY_PATH", (dir / "broken-libraries").c_str(), 1);
  ServeProcess server(dir / "backout.yaml", dir / "server.log");
  ::unsetenv("LD_LIBRARY_PATH");
  const int port = WaitForPort(dir / "server.log");
  ASSERT_NE(port, 0) << ReadFile(dir / "server.log");
  httplib::Client client("127.0.0.1", port);
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(server.SignalAndWait(SIGTERM, std::chrono::seconds(20)), 0)
      << ReadFile(dir / "server.log");
}

TEST(ServeMallocArenasTest, CapsArenasOfManyThreads) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::unsetenv("MALLOC_ARENA_MAX");
        const int cap = LimitMallocArenas();
        AllocateFromLiveThreads(8);
        const int arenas = CountMallocArenas();
        std::fprintf(stderr, "cap %d, arenas %d\n", cap, arenas);
        std::exit(cap == kMallocArenas && arenas <= kMallocArenas ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "cap 2, arenas [12]");
}

TEST(ServeMallocArenasTest, KeepsEnvironmentSetting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("MALLOC_ARENA_MAX", "8", 1);
        std::exit(LimitMallocArenas() == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace backout::server
