#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/client.h"
#include "http/sigv4.h"
#include "providers/provider.h"

namespace backout::providers::codedeploy {

// The reason a CodeDeploy call returned no result.
struct ApiFailure {
  enum class Kind {
    kApi,        // CodeDeploy responded with an error: `status`, `type` and `message` are set
    kTransport,  // no response arrived: `transport` and `message` are set
  };
  Kind kind = Kind::kApi;
  int status = 0;
  std::string type;  // the `__type` without any namespace prefix, such as ThrottlingException
  std::string message;
  http::ErrorKind transport = http::ErrorKind::kUnavailable;

  bool Is(std::string_view error_type) const { return kind == Kind::kApi && type == error_type; }
  // Whether CodeDeploy may have run the request although no result came back: no response, a
  // server error (5xx) or an unreadable success. A 4xx response means the request was rejected.
  bool MayHaveRun() const {
    return kind == Kind::kTransport || status >= 500 || type == "MalformedResponse";
  }
  // Whether repeating the same request may succeed: throttling, no response, or a server error.
  bool IsRetryable() const;
  // One line for people: the error type, CodeDeploy's message and what to do about it.
  std::string Describe() const;
  // The core error for a failure of `what` (such as "GetDeployment d-X").
  core::Error ToError(std::string_view what) const;
};

template <typename T>
using ApiResult = std::expected<T, ApiFailure>;

struct ApiClientOptions {
  std::string endpoint;  // such as https://codedeploy.us-east-1.amazonaws.com
  std::string region;
  http::AwsCredentials credentials;
  std::chrono::milliseconds request_timeout{30'000};
  std::string log_name = "provider.codedeploy";
};

// Calls the CodeDeploy API (JSON 1.1, SigV4 service `codedeploy`). Every call is signed anew with
// the clock's time. Thread-safe.
class ApiClient {
 public:
  // Fails with kInvalidArgument when the endpoint or the HTTP options are invalid.
  static core::Result<std::unique_ptr<ApiClient>> Create(ApiClientOptions options,
                                                         core::Clock& clock);

  // Calls `action` with `input`. A read (`idempotent`) is retried on no response, server errors and
  // throttling; anything else is sent exactly once. Each attempt is appended to `transcript`
  // when it is not null, with the signature and session token redacted.
  ApiResult<nlohmann::json> Call(std::string_view action, const nlohmann::json& input,
                                 bool idempotent, Transcript* transcript) const;

 private:
  ApiClient(ApiClientOptions options, std::unique_ptr<http::Client> http, core::Clock& clock);

  ApiResult<nlohmann::json> CallOnce(std::string_view action, const std::string& body,
                                     bool idempotent, Transcript* transcript) const;

  ApiClientOptions options_;
  std::unique_ptr<http::Client> http_;
  core::Clock& clock_;
};

}  // namespace backout::providers::codedeploy
