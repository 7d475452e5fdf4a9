#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/client.h"
#include "providers/provider.h"

namespace backout::providers::launchdarkly {

// The reason a LaunchDarkly call returned no result.
struct ApiFailure {
  enum class Kind {
    kApi,        // LaunchDarkly responded with an error: `status`, `code` and `message` are set
    kTransport,  // no response arrived: `message` and `transport` are set
  };
  Kind kind = Kind::kApi;
  int status = 0;
  std::string code;  // LaunchDarkly's error code, such as method_not_allowed
  std::string message;
  // The wait LaunchDarkly asked for with Retry-After or X-Ratelimit-Reset, when it did.
  std::optional<std::chrono::milliseconds> retry_after;
  http::ErrorKind transport = http::ErrorKind::kUnavailable;

  // Whether LaunchDarkly may have applied the request although no result came back: no response
  // or a server error. A 4xx response means it was rejected.
  bool MayHaveApplied() const { return kind == Kind::kTransport || status >= 500; }
  // One line for people: the status, LaunchDarkly's code and message, and what to do about it.
  std::string Describe() const;
  // The core error for a failure of `what` (such as "read flag default/new-checkout").
  core::Error ToError(std::string_view what) const;
};

template <typename T>
using ApiResult = std::expected<T, ApiFailure>;

struct ApiClientOptions {
  std::string base_url;  // such as https://app.launchdarkly.com
  std::string api_token;
  std::string api_version;  // LD-API-Version
  std::chrono::milliseconds request_timeout{30'000};
  std::string log_name = "provider.launchdarkly";
};

// Calls LaunchDarkly's REST API v2 with an access token in the Authorization header. The HTTP
// client retries GETs on no response, 429 (after Retry-After) and 5xx. A PATCH is sent exactly
// once, so the provider decides whether to send it again. Thread-safe.
class ApiClient {
 public:
  // Fails with kInvalidArgument when the base URL or the HTTP options are invalid.
  static core::Result<std::unique_ptr<ApiClient>> Create(ApiClientOptions options,
                                                         core::Clock& clock);

  // GET `path` (below /api/v2, such as /flags/default/new-checkout) with `query`.
  ApiResult<nlohmann::json> Get(const std::string& path,
                                const std::map<std::string, std::string>& query,
                                Transcript* transcript) const;
  // PATCH `path` with `body`. A semantic patch goes with LaunchDarkly's domain-model
  // Content-Type, a JSON patch with plain application/json.
  ApiResult<nlohmann::json> Patch(const std::string& path,
                                  const std::map<std::string, std::string>& query,
                                  const nlohmann::json& body, bool semantic,
                                  Transcript* transcript) const;

 private:
  ApiClient(ApiClientOptions options, std::unique_ptr<http::Client> http, core::Clock& clock);

  ApiResult<nlohmann::json> Send(http::Request request, std::string_view what,
                                 Transcript* transcript) const;
  std::string Url(const std::string& path, const std::map<std::string, std::string>& query) const;

  ApiClientOptions options_;
  std::unique_ptr<http::Client> http_;
  core::Clock& clock_;
};

}  // namespace backout::providers::launchdarkly
