#pragma once

#include <string_view>

namespace backout::core {

// The text of `id` before its trailing run of digits: "CHG-" for "CHG-12", "admin" for "admin".
constexpr std::string_view IdPrefix(std::string_view id) {
  size_t end = id.size();
  while (end > 0 && id[end - 1] >= '0' && id[end - 1] <= '9') --end;
  return id.substr(0, end);
}

// Orders record ids so that ids with the same prefix and a numeric suffix sort by number:
// CHG-2 before CHG-10. The key is (IdPrefix, length, bytes), which is numeric order for suffixes
// without leading zeros, as the control plane's counters produce. Ids without a numeric suffix,
// such as user names, keep byte order among themselves. The store's list query orders by the same
// key, so an id from a page can be passed back as the keyset cursor.
constexpr bool IdLess(std::string_view a, std::string_view b) {
  const std::string_view prefix_a = IdPrefix(a);
  const std::string_view prefix_b = IdPrefix(b);
  if (prefix_a != prefix_b) return prefix_a < prefix_b;
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace backout::core
