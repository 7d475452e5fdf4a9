#include "evidence/audit_advice.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace backout::evidence::internal {
namespace {

using core::IncidentState;

bool Accepts(IncidentState state, core::Action action) {
  const std::vector<core::Action> allowed = core::AllowedActions(state);
  return std::ranges::find(allowed, action) != allowed.end();
}

// Whether an incident in `from` can still reach `to`. Until it is documented, an incident can
// return to assessing from any state (a failed rollback or validation sends it back), so every
// state after open is within reach. Documenting leads only to closed, and closed is final.
bool CanReach(IncidentState from, IncidentState to) {
  switch (from) {
    case IncidentState::kDocumenting:
      return to == IncidentState::kDocumenting || to == IncidentState::kClosed;
    case IncidentState::kClosed:
      return to == IncidentState::kClosed;
    default:
      return to != IncidentState::kOpen || from == IncidentState::kOpen;
  }
}

}  // namespace

std::string NextStepsFor(const core::Incident& incident) {
  const std::string& id = incident.id;
  switch (incident.state) {
    case IncidentState::kOpen:
      return fmt::format("assess it with `backout incident assess {}`", id);
    case IncidentState::kAssessing:
      return fmt::format(
          "assess it again with `backout incident assess {0}` and roll back after "
          "`backout incident decide {0} --go --reason TEXT`, or fix forward after "
          "`backout incident decide {0} --no-go --reason TEXT`",
          id);
    case IncidentState::kDecided:
      return fmt::format(
          "run the approved rollback with `backout incident rollback {0}`, or fix forward after "
          "`backout incident decide {0} --no-go --reason TEXT`",
          id);
    case IncidentState::kRollingBack:
      return fmt::format(
          "wait for the running rollback to end (`backout incident show {0}`), or, when it was "
          "interrupted, state whether it happened with `backout incident confirm {0} "
          "--happened|--did-not-happen --reason TEXT`",
          id);
    case IncidentState::kValidating:
      return fmt::format("validate the latest rollback with `backout incident validate {}`", id);
    case IncidentState::kDocumenting:
      return fmt::format(
          "record what happened with `backout incident document {0}` and `backout review write "
          "{0}`",
          id);
    case IncidentState::kClosed:
      return "its record can no longer change";
  }
  return "";
}

std::string AdviceFor(const core::Incident& incident, core::Action fix, std::string_view command) {
  if (Accepts(incident.state, fix)) return fmt::format("run {}", command);

  const std::string_view state = core::IncidentStateName(incident.state);
  auto states = core::AllIncidentStates();
  auto later = std::ranges::find_if(states, [&](IncidentState other) {
    return CanReach(incident.state, other) && Accepts(other, fix);
  });
  if (later != states.end()) {
    return fmt::format("incident {} is {}, which does not accept {} yet: {}; once it is {}, run {}",
                       incident.id, state, core::ActionName(fix), NextStepsFor(incident),
                       core::IncidentStateName(*later), command);
  }
  if (incident.state == IncidentState::kClosed) {
    return fmt::format(
        "incident {} is closed, which no longer accepts {}, so the record cannot be completed; "
        "explain the gap to the auditor",
        incident.id, core::ActionName(fix));
  }
  return fmt::format(
      "incident {} is {}, which no longer accepts {}; record why in its review with `backout "
      "review write {}`",
      incident.id, state, core::ActionName(fix), incident.id);
}

}  // namespace backout::evidence::internal
