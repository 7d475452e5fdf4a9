#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace backout::http {

using std::chrono::milliseconds;

// A wall-clock time with the precision of `core::Time`, so `core::Clock::Now` converts directly.
using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;

// Retry settings for idempotent requests after a connection error, a timeout, a 408, a 429 or a
// retryable 5xx response. Each delay is drawn uniformly from [0, min(max_delay, base_delay *
// 2^(retry - 1))]
// ("full jitter"); a longer Retry-After from the server replaces it.
struct RetryPolicy {
  int max_attempts = 3;  // including the first; 1 disables retries
  milliseconds base_delay{200};
  milliseconds max_delay{10'000};
  // Retries start only while the time already spent (attempts as measured by libcurl plus earlier
  // delays) plus the next delay stays within this budget. An attempt already started still runs to
  // its own timeout, so the whole call can exceed the budget by at most one attempt.
  milliseconds max_total{30'000};
};

// The upper bound of the delay before retry number `retry` (1 is the first retry).
milliseconds BackoffCeiling(const RetryPolicy& policy, int retry);

// Scales `ceiling` by `unit`, a random number in [0, 1); values outside are clamped.
milliseconds FullJitter(milliseconds ceiling, double unit);

// Parses a Retry-After value (RFC 9110, section 10.2.3): delay-seconds or an HTTP date, which is
// measured from `now`. A date in the past gives zero. Returns nothing for text that is neither.
std::optional<milliseconds> ParseRetryAfter(std::string_view value, TimePoint now);

// Whether a response with this status may succeed when repeated: 408, 429 and 5xx except 501 (Not
// Implemented) and 505 (HTTP Version Not Supported), which fail the same way every time.
bool IsRetryableStatus(int status);

}  // namespace backout::http
