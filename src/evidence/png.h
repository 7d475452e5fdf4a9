#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace backout::evidence {

// Renders an SVG document to PNG bytes with librsvg and cairo, at the document's own size in
// pixels (96 DPI for physical units). The same SVG gives the same bytes on one machine: cairo
// writes no time or text chunk into the PNG. Text is drawn with the fonts fontconfig finds, so
// two machines with different fonts may give different bytes.
// Fails with kInvalidArgument when the SVG cannot be parsed or has no size, and with kInternal
// when cairo cannot draw or encode the image. Safe to call from several threads.
core::Result<std::string> RenderPng(std::string_view svg);

}  // namespace backout::evidence
