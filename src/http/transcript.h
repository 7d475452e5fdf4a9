#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/headers.h"
#include "http/message.h"
#include "http/redactor.h"
#include "http/retry.h"

namespace backout::http {

// One attempt of one request, as stored: every secret already redacted.
struct TranscriptEntry {
  TimePoint time{};  // when the attempt started, from the transcript's time source
  std::string method{};
  std::string url{};
  int attempt = 1;  // 1 for the first attempt of a request, 2 for its first retry…
  Headers request_headers{};
  std::string request_body{};
  int status = 0;  // 0 when no response arrived
  Headers response_headers{};
  std::string response_body{};
  Timing timing{};
  std::string error{};  // why no response arrived; empty when one did
};

// The record of every request and response a provider made, kept as evidence. Entries are
// redacted with the configured rules and their bodies cut to max_body_bytes before they are
// stored, so nothing unredacted is ever held. Thread-safe.
class Transcript {
 public:
  using TimeSource = std::function<TimePoint()>;

  static constexpr size_t kDefaultMaxBodyBytes = 64 * 1024;

  // `now` stamps each attempt and must not be empty. Pass the composition root's clock, because
  // `core::Clock::Now` returns the same type.
  explicit Transcript(TimeSource now, const RedactionRules& rules = {},
                      size_t max_body_bytes = kDefaultMaxBodyBytes);

  TimePoint Now() const { return now_(); }

  // Redacts the entry, cuts its bodies, and appends it.
  void Record(TranscriptEntry entry);

  std::vector<TranscriptEntry> Entries() const;

  // An array with one object per entry: time (RFC 3339 UTC, microseconds), method, url, attempt,
  // status, timing_ms {total, connect}, request and response headers ([name, value] pairs) and
  // bodies, and error when set. A body that is not valid UTF-8 appears base64-encoded under
  // request_body_base64 or response_body_base64.
  nlohmann::json ToJson() const;

 private:
  std::string CutBody(std::string body) const;

  TimeSource now_;
  Redactor redactor_;
  size_t max_body_bytes_;
  mutable std::mutex mutex_;
  std::vector<TranscriptEntry> entries_;
};

}  // namespace backout::http
