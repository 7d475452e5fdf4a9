#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace backout::http {

// Kinds of failure of an outbound HTTP call. `http` may not depend on `core`, so the modules that
// call it convert: each kind maps to the `core::ErrorCode` of the same name.
enum class ErrorKind {
  kInvalidArgument,  // a bad URL, header, option or certificate: fixing the input fixes the call
  kUnavailable,      // no response: refused or reset connection, DNS or TLS failure
  kTimeout,          // the connect or total timeout expired
  kInternal,         // libcurl or OpenSSL failed in a way the caller cannot fix
};

std::string_view ErrorKindName(ErrorKind kind);

// A transport failure. The message names the method and the URL with its secrets redacted, the
// library's own description of the failure, and what to check next.
struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

}  // namespace backout::http
