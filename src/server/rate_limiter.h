#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/time.h"

namespace backout::server {

// Limits unauthenticated attempts per client address with a token bucket: each failed attempt
// takes one token, tokens come back at a steady rate up to `burst`. An address with an empty
// bucket is blocked until a token returns. Thread-safe.
class RateLimiter {
 public:
  struct Options {
    int burst = 20;                                         // failed attempts allowed in a row
    core::Duration refill_every = std::chrono::seconds(3);  // one token back per interval
  };

  RateLimiter(const core::Clock& clock, Options options) : clock_(clock), options_(options) {}

  // Time until `address` may try again; zero when it is not blocked.
  core::Duration BlockedFor(const std::string& address);

  void RecordFailure(const std::string& address);

 private:
  struct Bucket {
    double tokens = 0;
    core::Time updated;
  };

  Bucket& Refill(const std::string& address);

  const core::Clock& clock_;
  Options options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace backout::server
