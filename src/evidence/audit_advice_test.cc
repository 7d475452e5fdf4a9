#include "evidence/audit_advice.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace backout::evidence::internal {
namespace {

using core::Action;
using core::IncidentState;

// The commands quoted in backticks in `text`, in order.
std::vector<std::string> QuotedCommands(std::string_view text) {
  std::vector<std::string> commands;
  size_t start = text.find('`');
  while (start != std::string_view::npos) {
    const size_t end = text.find('`', start + 1);
    if (end == std::string_view::npos) break;
    commands.emplace_back(text.substr(start + 1, end - start - 1));
    start = text.find('`', end + 1);
  }
  return commands;
}

// The lifecycle action a quoted command takes. Reads and review status changes take none and are
// accepted in every state. An unknown command fails the test, so new advice gets mapped here.
std::optional<Action> ActionOf(const std::string& command) {
  auto starts = [&](std::string_view prefix) { return command.starts_with(prefix); };
  if (starts("backout incident show") || starts("backout review status")) return std::nullopt;
  if (starts("backout incident assess")) return Action::kAssess;
  if (starts("backout incident decide")) {
    return command.find("--no-go") != std::string::npos ? Action::kDecideNoGo : Action::kDecideGo;
  }
  if (starts("backout incident rollback")) return Action::kRollback;
  if (starts("backout incident confirm")) return Action::kConfirm;
  if (starts("backout incident validate")) return Action::kValidate;
  if (starts("backout incident document")) return Action::kDocument;
  if (starts("backout review write")) return Action::kWriteReview;
  if (starts("backout action done")) return Action::kCompleteActionItem;
  ADD_FAILURE() << "no action is mapped for the advised command: " << command;
  return std::nullopt;
}

bool Accepts(IncidentState state, Action action) {
  const std::vector<Action> allowed = core::AllowedActions(state);
  return std::find(allowed.begin(), allowed.end(), action) != allowed.end();
}

// Every command that the advice names for now must be accepted by the incident's current state. A
// command after "once it is STATE" must be accepted by that STATE.
TEST(AuditAdviceTest, NamesOnlyCommandsTheStateAccepts) {
  const std::vector<std::pair<Action, std::string>> fixes = {
      {Action::kValidate, "`backout incident validate INC-1`"},
      {Action::kDocument, "`backout incident document INC-1`"},
      {Action::kWriteReview, "`backout review write INC-1`"},
      {Action::kCompleteActionItem, "`backout action done AI-1`"},
  };
  for (const IncidentState state : core::AllIncidentStates()) {
    core::Incident incident;
    incident.id = "INC-1";
    incident.state = state;
    for (const auto& [fix, command] : fixes) {
      const std::string advice = AdviceFor(incident, fix, command);
      const std::string context = fmt::format(
          "state {}, fix {}: {}", core::IncidentStateName(state), core::ActionName(fix), advice);
      const size_t later = advice.find("once it is ");
      const std::string now_part = advice.substr(0, later);
      for (const std::string& quoted : QuotedCommands(now_part)) {
        const std::optional<Action> action = ActionOf(quoted);
        if (action) {
          EXPECT_TRUE(Accepts(state, *action)) << quoted << " in " << context;
        }
      }
      if (later == std::string::npos) continue;

      const std::string rest = advice.substr(later + std::string_view("once it is ").size());
      auto named = core::ParseIncidentState(rest.substr(0, rest.find(',')));
      ASSERT_TRUE(named.has_value()) << context;
      EXPECT_TRUE(Accepts(*named, fix)) << context;
    }
  }
}

TEST(AuditAdviceTest, AcceptedFixIsRunDirectly) {
  core::Incident incident;
  incident.id = "INC-1";
  incident.state = IncidentState::kValidating;
  EXPECT_EQ(AdviceFor(incident, Action::kValidate, "`backout incident validate INC-1`"),
            "run `backout incident validate INC-1`");
}

// After a validation found the service not recovered, the incident is assessing: the advice is to
// roll back again or decide no-go, never to validate now.
TEST(AuditAdviceTest, AssessingIncidentIsNotToldToValidate) {
  core::Incident incident;
  incident.id = "INC-1";
  incident.state = IncidentState::kAssessing;
  const std::string advice =
      AdviceFor(incident, Action::kValidate, "`backout incident validate INC-1`");
  EXPECT_TRUE(advice.starts_with("incident INC-1 is assessing, which does not accept validate"))
      << advice;
  EXPECT_NE(advice.find("`backout incident decide INC-1 --no-go --reason TEXT`"), std::string::npos)
      << advice;
}

TEST(AuditAdviceTest, DocumentingIncidentCannotBeValidated) {
  core::Incident incident;
  incident.id = "INC-1";
  incident.state = IncidentState::kDocumenting;
  const std::string advice =
      AdviceFor(incident, Action::kValidate, "`backout incident validate INC-1`");
  EXPECT_EQ(advice.find("`backout incident validate"), std::string::npos) << advice;
  EXPECT_NE(advice.find("no longer accepts validate"), std::string::npos) << advice;
}

}  // namespace
}  // namespace backout::evidence::internal
