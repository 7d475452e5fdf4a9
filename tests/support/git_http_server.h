#pragma once

#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace backout::testing {

// What GitHttpBackend serves and whom it lets in.
struct GitHttpOptions {
  std::filesystem::path project_root;  // the folder holding the bare repositories
  std::string username;                // Basic authentication every request must carry
  std::string password;
};

// Serves the bare repositories under `project_root` over Git's smart HTTP protocol by running
// `git http-backend` as a CGI program for each request, as a web server in front of a Git
// hosting service does. Every request must carry Basic authentication with the configured user
// and password; others get 401 with a WWW-Authenticate challenge. Pushes are allowed: the
// backend sees the authenticated user as REMOTE_USER.
//
// Registers its handlers on `server` (plain or TLS), which must outlive it and not be started
// yet. Handlers run on the server's threads; the counters may be read from any thread.
class GitHttpBackend {
 public:
  GitHttpBackend(httplib::Server& server, GitHttpOptions options);

  int served() const { return served_.load(); }      // requests passed to git http-backend
  int rejected() const { return rejected_.load(); }  // requests rejected with 401

 private:
  void Handle(const httplib::Request& request, httplib::Response& response);

  GitHttpOptions options_;
  std::string expected_authorization_;
  std::atomic<int> served_{0};
  std::atomic<int> rejected_{0};
};

}  // namespace backout::testing
