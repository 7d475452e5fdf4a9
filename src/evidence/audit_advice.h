#pragma once

// Remediation advice for audit findings that depends on an incident's current state. Not part of
// the module's interface.

#include <string>
#include <string_view>

#include "core/domain.h"
#include "core/state_machine.h"

namespace backout::evidence::internal {

// Returns the advice for a finding that `fix` on the incident would remedy, with `command` the
// command that takes `fix`. When the incident's current state accepts `fix`, the advice is to run
// `command`. When a state the incident can still reach accepts it, the advice names what the
// current state accepts on the way there, and `command` only for that later state. When no such
// state exists, the advice states that and names what the current state accepts instead. The state
// is the incident's stored one, which the caller must not have rewound.
std::string AdviceFor(const core::Incident& incident, core::Action fix, std::string_view command);

// Returns what the incident's current state accepts on the way to documenting, as commands.
std::string NextStepsFor(const core::Incident& incident);

}  // namespace backout::evidence::internal
