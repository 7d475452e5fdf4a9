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
#include "providers/provider.h"

namespace backout::providers::unleash {

// The reason an Admin API call returned no result.
struct ApiFailure {
  bool transport = false;  // no response arrived; `message` gives the reason
  int status = 0;
  std::string name;  // Unleash's error name, such as NotFoundError or ArchivedFeatureError
  std::string message;
  http::ErrorKind transport_kind = http::ErrorKind::kUnavailable;

  // Unleash refuses the change because the environment requires a change request and the token
  // may not skip it: 403 naming the SKIP_CHANGE_REQUEST permission.
  bool NeedsChangeRequest() const;
  // 400 ArchivedFeatureError: the flag is archived.
  bool IsArchived() const;
  // A JSON patch `test` operation failed: the value changed since the plan was made. Unleash
  // 7.5.1 reports it as a 500 whose message contains TEST_OPERATION_FAILED.
  bool IsPatchTestFailure() const;
  // One line for people: the status, Unleash's error name and message.
  std::string Describe() const;
  core::Error ToError(std::string_view what) const;
};

template <typename T>
using ApiResult = std::expected<T, ApiFailure>;

// Calls Unleash's Admin API with one token. Thread-safe.
class AdminClient {
 public:
  // `base_url` is the server's base URL without /api. Fails with kInvalidArgument when the HTTP
  // client cannot be built.
  static core::Result<std::unique_ptr<AdminClient>> Create(std::string base_url, std::string token,
                                                           std::chrono::milliseconds timeout,
                                                           std::string log_name,
                                                           core::Clock& clock);

  // Sends `method` to `path` (starting with /api/) with `body` as JSON when it is not null.
  // Reads are retried by the HTTP client; a change is retried only when `idempotent`. Every
  // attempt is appended to `transcript` when it is not null, with the token redacted.
  ApiResult<nlohmann::json> Call(http::Method method, const std::string& path,
                                 const nlohmann::json& body, bool idempotent,
                                 Transcript* transcript) const;

  ApiResult<nlohmann::json> Get(const std::string& path, Transcript* transcript) const {
    return Call(http::Method::kGet, path, nullptr, true, transcript);
  }

  const std::string& base_url() const { return base_url_; }

 private:
  AdminClient(std::string base_url, std::string token, std::unique_ptr<http::Client> http,
              core::Clock& clock);

  std::string base_url_;
  std::string token_;
  std::unique_ptr<http::Client> http_;
  core::Clock& clock_;
};

// Percent-encodes `text` for one URL path segment or query value (RFC 3986 unreserved kept).
std::string EncodeComponent(std::string_view text);

}  // namespace backout::providers::unleash
