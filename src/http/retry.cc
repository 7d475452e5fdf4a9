#include "http/retry.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "http/curl_library.h"

namespace backout::http {

milliseconds BackoffCeiling(const RetryPolicy& policy, int retry) {
  // Doubling stops once the ceiling reaches max_delay, so it never exceeds twice max_delay.
  milliseconds ceiling = policy.base_delay;
  for (int i = 1; i < retry && ceiling < policy.max_delay; ++i) {
    ceiling *= 2;
  }
  return std::min(ceiling, policy.max_delay);
}

milliseconds FullJitter(milliseconds ceiling, double unit) {
  unit = std::clamp(unit, 0.0, 1.0);
  return milliseconds(static_cast<milliseconds::rep>(static_cast<double>(ceiling.count()) * unit));
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value, TimePoint now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (value.empty()) {
    return std::nullopt;
  }

  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Any delay beyond a day is capped at a day. The retry budget then rejects it, where a larger
    // value could overflow the arithmetic.
    long long seconds = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    constexpr long long kDaySeconds = 24 * 60 * 60;
    if (error != std::errc() || seconds > kDaySeconds) {
      seconds = kDaySeconds;
    }
    return std::chrono::seconds(seconds);
  }

  // curl_getdate reads the three date formats RFC 9110 allows: IMF-fixdate, RFC 850 and asctime.
  // Without libcurl the date counts as unreadable. Callers read Retry-After from a response that
  // a Client received, and Client::Create has loaded libcurl by then.
  const Result<internal::Libcurl>& libcurl = internal::LoadLibcurl();
  if (!libcurl) {
    return std::nullopt;
  }
  std::string text(value);
  time_t date = libcurl->curl_getdate(text.c_str(), nullptr);
  if (date == -1) {
    return std::nullopt;
  }
  auto at = std::chrono::sys_seconds(std::chrono::seconds(date));
  if (at <= now) {
    return milliseconds(0);
  }
  return std::chrono::ceil<milliseconds>(at - now);
}

bool IsRetryableStatus(int status) {
  if (status == 408 || status == 429) {
    return true;
  }
  return status >= 500 && status <= 599 && status != 501 && status != 505;
}

}  // namespace backout::http
