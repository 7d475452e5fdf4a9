#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/json.h"
#include "core/error.h"

namespace backout::http {
class Client;
enum class Method;
}  // namespace backout::http

namespace backout::cli {

inline constexpr std::string_view kDefaultUrl = "http://127.0.0.1:8470";

// Connection settings: the server's base URL and the caller's bearer token.
struct ConnectionOptions {
  std::string url{kDefaultUrl};  // base URL, e.g. http://127.0.0.1:8470; a trailing / is ignored
  std::string token;             // bearer token; empty sends no Authorization header
};

// A client of Backout's JSON API under /api/v1/. Every failure comes back as a core::Error whose
// message is the one to show the user: the server's own message for an HTTP error, or how to
// reach the server when it cannot be reached. Not thread-safe.
class ApiClient {
 public:
  // Fails with kInvalidArgument when the URL is not http:// or https://.
  static core::Result<ApiClient> Create(ConnectionOptions options);

  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;
  ~ApiClient();

  // `path` is relative to the base URL and starts with /, e.g. "/api/v1/incidents/INC-1". Each call
  // returns the parsed body of a 2xx response (null when the body is empty). A body with a string
  // that is not UTF-8 fails with kInvalidArgument naming its field, and nothing is sent.
  core::Result<Json> Get(std::string_view path);
  core::Result<Json> Post(std::string_view path, const Json& body);
  core::Result<Json> Put(std::string_view path, const Json& body);
  core::Result<Json> Delete(std::string_view path);

  // Fetches every page of a list endpoint (`{"items": [...], "next_after": "..."}`), following
  // `next_after`, and stops once `limit` items are in hand (0: no limit).
  core::Result<Json> GetAll(std::string_view path, size_t limit = 0);

  // Returns the raw body of a 2xx response to GET `path`, for routes that answer with a file
  // (such as an evidence bundle) instead of JSON.
  core::Result<std::string> GetBytes(std::string_view path);

  const std::string& url() const { return options_.url; }

 private:
  ApiClient(ConnectionOptions options, std::unique_ptr<http::Client> client);

  core::Result<Json> Send(http::Method method, std::string_view path, const Json* body);

  ConnectionOptions options_;
  std::unique_ptr<http::Client> client_;
};

// Returns the offset of the first byte in `text` that is not part of well-formed UTF-8 (RFC 3629:
// no overlong forms, surrogates or code points above U+10FFFF), or nullopt when all of it is.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
std::string EncodeUrlComponent(std::string_view text);

// Builds "path?k1=v1&k2=v2" from the pairs whose value is not empty, encoding each value.
std::string WithQuery(std::string_view path,
                      const std::vector<std::pair<std::string, std::string>>& query);

// Turns a non-2xx response into the error shown to the user: the message of the server's
// `{"error": {"code", "message"}}` body, or the status and body when the body is not that shape.
core::Error ErrorFromResponse(int status, std::string_view body);

// The error shown when no server responds at `url`; `cause` is the transport's own message.
core::Error UnreachableError(std::string_view url, std::string_view cause);

}  // namespace backout::cli
