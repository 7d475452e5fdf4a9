#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/time.h"

namespace backout::server {

// Limits a repeated log line to one per `interval` for each key, such as a client address, and
// counts the events it holds back so the next line can report them. Thread-safe.
class LogThrottle {
 public:
  struct Options {
    core::Duration interval = std::chrono::seconds(60);
    // Keys tracked at once. Past this, keys idle for a whole interval are forgotten, together
    // with the count of their held-back events.
    size_t max_keys = 10000;
  };

  LogThrottle(const core::Clock& clock, Options options) : clock_(clock), options_(options) {}

  // Records one event of `key`. Returns the number of events of `key` held back since its last
  // logged one when this event should be logged, or std::nullopt when it should not. While all
  // `max_keys` keys were active within the interval, an event of a new key is held back and not
  // counted anywhere.
  std::optional<uint64_t> Admit(const std::string& key);

 private:
  struct Entry {
    core::Time logged_at;
    uint64_t held_back = 0;
  };

  const core::Clock& clock_;
  Options options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace backout::server
