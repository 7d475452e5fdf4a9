#pragma once

#include <string>

#include "cli/json.h"

namespace backout::cli {

// Renders a whole incident for `incident show -o table`: its summary as key: value lines, then
// the assessment's target and digest, and one table each for decisions, rollbacks, validations,
// action items and the timeline (sections with no entries are left out). The review's text is
// not repeated; a line names who wrote it and how to print it.
std::string RenderIncidentView(const Json& incident);

}  // namespace backout::cli
