#pragma once

#include <string>

#include "core/domain.h"

namespace backout::app {

// Fills the built-in post-incident review template from the incident: summary, impact,
// timeline, rollbacks, validations, root cause and action items, in Markdown.
std::string RenderReviewTemplate(const core::Incident& incident);

}  // namespace backout::app
