#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/domain.h"
#include "core/error.h"

namespace backout::app {

// Inputs of a review template: the incident, the change it suspects (for the versions) and the
// review's owner and status.
struct ReviewInputs {
  const core::Incident& incident;
  std::optional<core::Change> suspected_change;
  std::string owner;
  std::string status;
};

// The built-in post-incident review template, in Mustache syntax. Its variables are the ones a
// template file named by the config's `review.template` may use (docs/reviews.md): id, title,
// service, environment, severity, owner, status, and the Markdown bodies summary, timeline,
// impact, decision, rollback, validation, root_cause, contributing_factors and action_items.
std::string_view BuiltInReviewTemplate();

// Checks that `text` parses as a Mustache template, naming the problem when it does not.
core::Result<void> CheckReviewTemplate(std::string_view text);

// Fills `template_text` (the built-in template when empty) from `inputs`. Values are inserted
// as they are, without HTML escaping, because the output is Markdown.
core::Result<std::string> RenderReviewTemplate(const ReviewInputs& inputs,
                                               std::string_view template_text = {});

}  // namespace backout::app
