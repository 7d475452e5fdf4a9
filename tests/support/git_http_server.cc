#include "support/git_http_server.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace backout::testing {
namespace {

constexpr char kGitBinary[] = "/usr/bin/git";

std::string EncodeBase64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<int>(bytes.size()));
  out.resize(length);
  return out;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) return false;
    data.remove_prefix(static_cast<size_t>(written));
  }
  return true;
}

// What the CGI program printed: its status, headers and body.
struct CgiOutput {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/octet-stream";
  std::string body;
};

CgiOutput ParseCgiOutput(const std::string& output) {
  CgiOutput parsed;
  size_t end = output.find("\r\n\r\n");
  size_t separator = 4;
  if (end == std::string::npos) {
    end = output.find("\n\n");
    separator = 2;
  }
  if (end == std::string::npos) {
    parsed.status = 502;
    parsed.content_type = "text/plain";
    parsed.body = "git http-backend printed no header block";
    return parsed;
  }
  size_t start = 0;
  while (start < end) {
    size_t line_end = output.find('\n', start);
    if (line_end == std::string::npos || line_end > end) line_end = end;
    std::string line = output.substr(start, line_end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    start = line_end + 1;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "Status") {
      parsed.status = std::atoi(value.c_str());
    } else if (name == "Content-Type") {
      parsed.content_type = value;
    } else if (name != "Content-Length") {
      parsed.headers.emplace_back(name, value);
    }
  }
  parsed.body = output.substr(end + separator);
  return parsed;
}

}  // namespace

GitHttpBackend::GitHttpBackend(httplib::Server& server, GitHttpOptions options)
    : options_(std::move(options)),
      expected_authorization_("Basic " +
                              EncodeBase64(options_.username + ":" + options_.password)) {
  auto handler = [this](const httplib::Request& request, httplib::Response& response) {
    Handle(request, response);
  };
  server.Get(".*", handler);
  server.Post(".*", handler);
}

void GitHttpBackend::Handle(const httplib::Request& request, httplib::Response& response) {
  if (request.get_header_value("Authorization") != expected_authorization_) {
    ++rejected_;
    response.status = 401;
    response.set_header("WWW-Authenticate", "Basic realm=\"git\"");
    response.set_content("authentication required\n", "text/plain");
    return;
  }
  ++served_;

  // The CGI environment git http-backend reads. httplib has already removed any gzip
  // Content-Encoding of the body, so the backend gets it plain.
  std::string query;
  if (size_t mark = request.target.find('?'); mark != std::string::npos) {
    query = request.target.substr(mark + 1);
  }
  std::vector<std::string> environment = {
      "PATH=/usr/bin:/bin",
      "HOME=" + options_.project_root.string(),
      "GIT_CONFIG_NOSYSTEM=1",
      "GIT_PROJECT_ROOT=" + options_.project_root.string(),
      "GIT_HTTP_EXPORT_ALL=1",
      "REQUEST_METHOD=" + request.method,
      "PATH_INFO=" + request.path,
      "QUERY_STRING=" + query,
      "CONTENT_TYPE=" + request.get_header_value("Content-Type"),
      "CONTENT_LENGTH=" + std::to_string(request.body.size()),
      "REMOTE_USER=" + options_.username,
      "REMOTE_ADDR=127.0.0.1",
      "GATEWAY_INTERFACE=CGI/1.1",
      "SERVER_PROTOCOL=HTTP/1.1",
  };
  if (request.has_header("Git-Protocol")) {
    environment.push_back("HTTP_GIT_PROTOCOL=" + request.get_header_value("Git-Protocol"));
  }

  // The request body goes through an unlinked temporary file, so a large body and a large
  // response cannot block each other on pipes.
  std::string body_path = (options_.project_root / ".cgi-body-XXXXXX").string();
  int body_fd = ::mkstemp(body_path.data());
  if (body_fd < 0 || !WriteAll(body_fd, request.body) || ::lseek(body_fd, 0, SEEK_SET) != 0) {
    if (body_fd >= 0) ::close(body_fd);
    response.status = 500;
    response.set_content("cannot buffer the request body\n", "text/plain");
    return;
  }
  ::unlink(body_path.c_str());
  std::string log_path = (options_.project_root / "http-backend.log").string();
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

  std::array<int, 2> out{};
  if (::pipe2(out.data(), O_CLOEXEC) != 0) {
    ::close(body_fd);
    if (log_fd >= 0) ::close(log_fd);
    response.status = 500;
    return;
  }
  std::vector<char*> envp;
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char arg0[] = "git";
  char arg1[] = "http-backend";
  char* argv[] = {arg0, arg1, nullptr};

  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(body_fd, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    ::execve(kGitBinary, argv, envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(body_fd);
  if (log_fd >= 0) ::close(log_fd);

  std::string output;
  std::array<char, 65536> buffer{};
  while (true) {
    ssize_t n = ::read(out[0], buffer.data(), buffer.size());
    if (n <= 0) break;
    output.append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  if (pid > 0) ::waitpid(pid, &status, 0);

  CgiOutput parsed = ParseCgiOutput(output);
  response.status = parsed.status;
  for (const auto& [name, value] : parsed.headers) response.set_header(name, value);
  response.set_content(std::move(parsed.body), parsed.content_type);
}

}  // namespace backout::testing
