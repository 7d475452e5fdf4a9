#include "signals/alertmanager.h"

#include <fmt/format.h>

namespace backout::signals {

std::string_view AlertStatusName(AlertStatus status) {
  return status == AlertStatus::kFiring ? "firing" : "resolved";
}

std::string Alert::Identity() const {
  return fmt::format("{}@{}", fingerprint, core::FormatTime(starts_at));
}

std::string Alert::Severity() const {
  auto it = labels.find("severity");
  return it == labels.end() ? "" : it->second;
}

std::string LabelFingerprint(const std::map<std::string, std::string>& labels) {
  uint64_t hash = 14695981039346656037ULL;
  auto mix = [&](std::string_view text) {
    for (const unsigned char byte : text) {
      hash ^= byte;
      hash *= 1099511628211ULL;
    }
    hash ^= 0xff;  // a separator no label byte equals in UTF-8
    hash *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {  // std::map iterates in sorted order
    mix(name);
    mix(value);
  }
  return fmt::format("{:016x}", hash);
}

}  // namespace backout::signals
