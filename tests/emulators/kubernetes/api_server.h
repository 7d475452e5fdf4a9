#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "tls.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace backout::emulators::kubernetes {

// One request as the API server received it. The Authorization header itself is never kept.
struct RecordedRequest {
  SystemClock::time_point time;
  std::string method;
  std::string target;  // path and query
  std::string content_type;
  std::string accept;
  std::string user_agent;
  std::string impersonate_user;
  std::string user;  // the authenticated user, empty when the request was rejected
  std::string body;
  int status = 0;
};

struct ApiServerOptions {
  std::string token;                          // the bearer token the server accepts
  std::string token_user = "emulator-admin";  // the user that token stands for
  // The version /version reports. kubectl's dispatcher runs the kubectl of this minor version.
  std::string minor_version = "32";
  // Sets whether the controllers run; served at /_emulator/controllers.
  std::function<void(bool)> set_controllers_running;
};

// The HTTPS endpoint of the emulator: the Kubernetes API paths kubectl and Backout use, and test
// hooks under /_emulator/. Authentication takes a bearer token or a client certificate issued by
// the emulator's CA. Serves on 127.0.0.1 only.
class ApiServer {
 public:
  ApiServer(Cluster& cluster, const TlsMaterial& tls, ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds 127.0.0.1:`port` (0 lets the kernel choose) and serves on a thread. Returns false when
  // the port cannot be bound or the TLS set-up fails.
  bool Start(int port);
  void Stop();
  int port() const { return port_; }

  std::vector<RecordedRequest> Requests() const;
  void ClearRequests();

 private:
  void Register();
  // The user a request authenticates as, or "" when it does not.
  std::string Authenticate(const httplib::Request& req) const;
  // Appends the request to the log.
  void Record(const httplib::Request& req, int status);

  Cluster& cluster_;
  TlsMaterial tls_;
  ApiServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex requests_mutex_;
  std::vector<RecordedRequest> requests_;
};

}  // namespace backout::emulators::kubernetes
