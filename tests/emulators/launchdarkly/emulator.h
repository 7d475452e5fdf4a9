#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "emulators/launchdarkly/model.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace backout::emulators::launchdarkly {

// An error the emulator sends instead of running the next calls that match.
struct InjectedFailure {
  std::string method;       // GET or PATCH
  std::string path_prefix;  // such as /api/v2/flags/default/new-checkout; empty matches all
  ApiError error;
  int remaining = 1;
};

// An HTTP server on 127.0.0.1 that serves the subset of LaunchDarkly's REST API v2 that flag
// rollbacks use, from a Model:
//   GET   /api/v2/flags/{project}/{flag}[?env=KEY]
//   PATCH /api/v2/flags/{project}/{flag}[?ignoreConflicts=true]   (semantic or JSON patch)
//   GET   /api/v2/flags/{project}/{env}/{flag}/dependent-flags
//   GET   /api/v2/auditlog[?before&after&q&limit&spec]
//   GET   /api/v2/auditlog/{id}
// Every call needs an access token in the Authorization header, as LaunchDarkly's does. Test
// hooks live under /_emulator/ and need none. Thread-safe.
class Emulator {
 public:
  static std::expected<std::unique_ptr<Emulator>, std::string> Create(const nlohmann::json& state);

  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // Binds 127.0.0.1:`port` (0 picks a free port) and serves on a thread of its own.
  std::expected<void, std::string> Start(int port);
  void Stop();

  int port() const { return port_; }
  std::string Url() const;  // http://127.0.0.1:PORT

  // The hooks, also reachable over HTTP as POST /_emulator/<name>.
  void FailNextCalls(InjectedFailure failure);  // fail-call
  std::expected<void, std::string> SetApprovalRequired(const std::string& project,
                                                       const std::string& environment,
                                                       bool required);  // approval-required
  std::expected<void, std::string> SetPendingChange(const std::string& project,
                                                    const std::string& key,
                                                    const std::string& environment,
                                                    bool pending);  // pending-change
  // Sends the next `times` PATCH responses only after `delay`, with the change already made,
  // so a client that gives up sooner never sees the result.
  void DelayNextPatches(std::chrono::milliseconds delay, int times);  // delay-patch

  nlohmann::json Dump();  // GET /_emulator/state
  // How many calls of `method` arrived with a path starting with `path_prefix`, whatever their
  // result (GET /_emulator/calls lists them all).
  int CallCount(const std::string& method, const std::string& path_prefix = "");

 private:
  Emulator() = default;

  void Handle(const httplib::Request& request, httplib::Response& response);
  ApiResult<nlohmann::json> Route(const httplib::Request& request, const Caller& caller);
  void HandleHook(const httplib::Request& request, httplib::Response& response,
                  const std::string& name);

  std::unique_ptr<Model> model_;

  std::mutex mutex_;  // guards model_, the injections and the call log
  std::vector<InjectedFailure> failures_;
  std::chrono::milliseconds patch_delay_{0};
  int delayed_patches_ = 0;
  std::vector<std::pair<std::string, std::string>> calls_;  // method, path

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace backout::emulators::launchdarkly
