#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "emulators/codedeploy/model.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace backout::emulators::codedeploy {

// AWS credentials the emulator accepts. A session token, when set, must come with the request.
struct AcceptedCredential {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
};

// The access key pair the AWS documentation uses as its example, accepted when the state names
// no credentials.
inline constexpr std::string_view kExampleAccessKeyId = "AKIAIOSFODNN7EXAMPLE";
inline constexpr std::string_view kExampleSecretAccessKey =
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// An HTTP server on 127.0.0.1 that answers the CodeDeploy JSON 1.1 API (POST / with
// X-Amz-Target: CodeDeploy_20141006.<Action>) from a Model, after checking the request's
// Signature Version 4 against the accepted credentials as AWS does. Test hooks live under
// /_emulator/, outside the AWS API, and need no signature. Thread-safe.
class Emulator {
 public:
  // Builds the model from `state` (README.md describes the document) and the accepted
  // credentials from its `credentials` list.
  static std::expected<std::unique_ptr<Emulator>, std::string> Create(const nlohmann::json& state);

  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // Binds 127.0.0.1:`port` (0 picks a free port) and serves on a thread of its own.
  std::expected<void, std::string> Start(int port);
  void Stop();

  int port() const { return port_; }
  std::string Url() const;  // http://127.0.0.1:PORT
  const std::string& region() const { return region_; }

  // The hooks, also reachable over HTTP as POST /_emulator/<name>.
  std::expected<void, std::string> InjectInstanceFailure(const nlohmann::json& request);
  std::expected<void, std::string> SetRevisionBehavior(const nlohmann::json& request);
  std::expected<void, std::string> Stall(const nlohmann::json& request);
  std::expected<void, std::string> Unstall(const nlohmann::json& request);
  // Answers the next `times` calls of `action` with `error` without running them.
  void FailNextCalls(const std::string& action, ApiError error, int times);
  // Runs the next `times` calls of `action`, then waits `delay` before answering, so that a
  // client that gives up sooner never sees the result.
  void DelayNextResponses(const std::string& action, std::chrono::milliseconds delay, int times);

  // The model's whole state (GET /_emulator/state).
  nlohmann::json Dump();
  // How many signed calls of `action` arrived, whether they succeeded or not.
  int CallCount(const std::string& action);

 private:
  Emulator() = default;

  void HandleApi(const httplib::Request& request, httplib::Response& response);
  std::optional<ApiError> Authenticate(const httplib::Request& request, Time now) const;
  void HandleHook(const httplib::Request& request, httplib::Response& response,
                  const std::string& name);

  std::unique_ptr<Model> model_;
  std::vector<AcceptedCredential> credentials_;
  std::string region_ = "us-east-1";

  std::mutex mutex_;  // guards model_, the injections and the call counts
  struct FailedCall {
    ApiError error;
    int remaining = 0;
  };
  struct DelayedResponse {
    std::chrono::milliseconds delay{0};
    int remaining = 0;
  };
  std::map<std::string, FailedCall> failed_calls_;
  std::map<std::string, DelayedResponse> delayed_responses_;
  std::map<std::string, int> call_counts_;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace backout::emulators::codedeploy
