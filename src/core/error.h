#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace backout::core {

// Kinds of failure that cross module edges. The server maps each to one HTTP status and the CLI
// to one exit status, so pick the kind by what the caller can do about it.
enum class ErrorCode {
  kInvalidArgument,     // the caller's input is wrong; fixing the input fixes the call
  kNotFound,            // the named object does not exist
  kAlreadyExists,       // creating something that exists
  kFailedPrecondition,  // the system is not in a state that allows the action
  kPermissionDenied,    // an authenticated caller lacks the right
  kUnauthenticated,     // no valid credentials
  kConflict,            // lost a race: a concurrent writer or an expired lease
  kCorruption,          // stored data fails its own integrity checks
  kUnavailable,         // a dependency could not be reached; retrying may help
  kTimeout,             // an operation did not finish in its time limit
  kInternal,            // a bug or an unexpected state of a library
};

std::string_view ErrorCodeName(ErrorCode code);

// An error with a message written for the person who must act on it: what failed, on which value,
// and what to do next.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Returns a copy whose message starts with `context`, for adding the caller's point of view.
  Error WithContext(std::string_view context) const {
    return Error{code, fmt::format("{}: {}", context, message)};
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for `return MakeError(ErrorCode::kNotFound, "incident {} not found", id);`.
template <typename... Args>
std::unexpected<Error> MakeError(ErrorCode code, fmt::format_string<Args...> format,
                                 Args&&... args) {
  return std::unexpected(Error{code, fmt::format(format, std::forward<Args>(args)...)});
}

}  // namespace backout::core
