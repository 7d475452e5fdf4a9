#pragma once

#include <string>
#include <string_view>

namespace backout::core {

// Escapes `value` for a quoted logfmt value (key="..."): a backslash, a double quote and a line
// break get a backslash, so a message that quotes something cannot end the value early or start
// a new log line.
inline std::string LogfmtEscape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace backout::core
