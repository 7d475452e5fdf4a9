#pragma once

// HTML escaping for the pages and charts the evidence module writes. Not part of the module's
// interface.

#include <string>
#include <string_view>

namespace backout::evidence::internal {

// Returns `text` with &, <, >, " and ' replaced by character references, so it is safe as HTML
// or XML text and inside a quoted attribute value of either quote style. Used for HTML pages and
// for SVG charts, whose XML accepts the same references.
std::string EscapeHtml(std::string_view text);

}  // namespace backout::evidence::internal
