#pragma once

#include <span>
#include <string_view>

#include "core/domain.h"
#include "core/error.h"

// The check that a rollback target does not keep the suspected change's code live. The
// assessment runs it on the target it plans, and the rollback job on a target the provider chose
// itself when the job runs, as a break-glass rollback without an assessed target does.
namespace backout::app {

// Rejects a rollback target that the suspected change deployed, because rolling back to it keeps
// the suspected code live. A target chosen by a rule (not `named` by a person) is also rejected
// when a later change brought it in, but a person may name such a version to roll forward.
// `chosen_by` is the rule's text. Fails with kInvalidArgument for a named target and
// kFailedPrecondition otherwise, naming the version, the suspected change and the fix.
core::Result<void> CheckTargetBeforeSuspect(const core::Incident& incident,
                                            std::span<const core::Change> changes,
                                            std::string_view version, std::string_view chosen_by,
                                            bool named);

}  // namespace backout::app
