#include "server/log_throttle.h"

namespace backout::server {

std::optional<uint64_t> LogThrottle::Admit(const std::string& key) {
  std::lock_guard lock(mutex_);
  const core::Time now = clock_.Now();

  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_keys) {
      std::erase_if(entries_, [&](const auto& entry) {
        return now - entry.second.logged_at >= options_.interval;
      });
      if (entries_.size() >= options_.max_keys) return std::nullopt;
    }
    entries_.emplace(key, Entry{.logged_at = now});
    return 0;
  }

  Entry& entry = it->second;
  if (now - entry.logged_at < options_.interval) {
    ++entry.held_back;
    return std::nullopt;
  }
  const uint64_t held_back = entry.held_back;
  entry = Entry{.logged_at = now};
  return held_back;
}

}  // namespace backout::server
