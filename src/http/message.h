#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace backout::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions };

std::string_view MethodName(Method method);

// Whether RFC 9110 (section 9.2.2) defines the method as idempotent: GET, HEAD, PUT, DELETE and
// OPTIONS are; POST and PATCH are not.
bool IsIdempotentMethod(Method method);

struct Request {
  Method method = Method::kGet;
  std::string url{};  // http:// or https://
  Headers headers{};
  std::string body{};
  // Whether repeating the request is safe, which allows the client to retry it. Unset means
  // IsIdempotentMethod(method). Set it to true for a POST that the server deduplicates (for
  // example by an idempotency key), or to false for a PUT or DELETE that must not run twice.
  std::optional<bool> idempotent{};
  // Per-attempt limits that replace ClientOptions' for this request.
  std::optional<std::chrono::milliseconds> connect_timeout{};
  std::optional<std::chrono::milliseconds> total_timeout{};

  bool IsIdempotent() const { return idempotent.value_or(IsIdempotentMethod(method)); }
};

// Durations libcurl measured for one attempt.
struct Timing {
  std::chrono::microseconds total{0};    // from the start until the last byte arrived
  std::chrono::microseconds connect{0};  // until the TCP connection was made (0 when reused)
};

struct Response {
  int status = 0;
  Headers headers{};  // of the final response; interim (1xx) responses are dropped
  std::string body{};
  Timing timing{};   // of the attempt that produced this response
  int attempts = 1;  // attempts made, including this one
};

}  // namespace backout::http
