#include "providers/unleash/flag_state.h"

#include <gtest/gtest.h>

#include "providers/unleash/unleash_provider.h"

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

json Feature(bool enabled, json strategies) {
  return json{
      {"name", "f"},
      {"project", "default"},
      {"children", json::array({"z", "a"})},
      {"environments",
       json::array({{{"name", "production"}, {"enabled", enabled}, {"strategies", strategies}}})}};
}

json Flexible(std::string rollout) {
  return json{{"id", "s1"}, {"name", "flexibleRollout"}, {"parameters", {{"rollout", rollout}}}};
}

TEST(UnleashFlagStateTest, DisabledEnvironmentIsOff) {
  auto state = ParseFlagState(Feature(false, json::array({Flexible("100")})), "production");
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->Version(), "off");
}

TEST(UnleashFlagStateTest, ZeroRolloutsAreRolloutZero) {
  auto state = ParseFlagState(Feature(true, json::array({Flexible("0")})), "production");
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->Version(), "rollout-0");
  EXPECT_TRUE(state->ServingAtRolloutZero().empty());
}

TEST(UnleashFlagStateTest, StrategyWithoutRolloutKeepsServing) {
  json strategies = json::array(
      {Flexible("0"),
       {{"id", "s2"}, {"name", "remoteAddress"}, {"parameters", {{"IPs", "10.0.0.1"}}}}});
  auto state = ParseFlagState(Feature(true, strategies), "production");
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->Version(), "on");
  ASSERT_EQ(state->ServingAtRolloutZero().size(), 1u);
  EXPECT_EQ(state->ServingAtRolloutZero()[0].name, "remoteAddress");
}

TEST(UnleashFlagStateTest, DisabledStrategyDoesNotServe) {
  json strategies =
      json::array({Flexible("0"), {{"id", "s2"}, {"name", "default"}, {"disabled", true}}});
  auto state = ParseFlagState(Feature(true, strategies), "production");
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->Version(), "rollout-0");
}

TEST(UnleashFlagStateTest, ChildrenAreSorted) {
  auto state = ParseFlagState(Feature(true, json::array()), "production");
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->children, (std::vector<std::string>{"a", "z"}));
}

TEST(UnleashFlagStateTest, MissingEnvironmentNamesTheOthers) {
  auto state = ParseFlagState(Feature(true, json::array()), "staging");
  ASSERT_FALSE(state.has_value());
  EXPECT_EQ(state.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(state.error().message.find("production"), std::string::npos) << state.error().message;
}

TEST(UnleashFlagStateTest, StrategyUpdateToZeroIsRolloutZero) {
  json response{
      {"events",
       json::array({{{"id", 3},
                     {"type", "feature-strategy-update"},
                     {"createdBy", "admin"},
                     {"createdAt", "2026-12-04T20:41:03.795Z"},
                     {"environment", "production"},
                     {"data", Flexible("0")},
                     {"tags", json::array({{{"type", "simple"}, {"value", "backout X"}}})}}})}};
  std::vector<FlagEvent> events = ParseEvents(response);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ResultingVersion(), "rollout-0");
  EXPECT_TRUE(events[0].HasTag("simple", "backout X"));
  EXPECT_TRUE(events[0].created_at.has_value());
}

TEST(UnleashAuditTagTest, FitsUnleashLimit) {
  std::string value = UnleashProvider::AuditTagValue(
      "INC-2026-000123", "a.very.long.executor.name@departments.example.com");
  EXPECT_LE(value.size(), 50u);
  EXPECT_TRUE(value.starts_with("backout INC-2026-000123 by a.very"));
}

TEST(UnleashAuditTagTest, CutKeepsUtf8Whole) {
  std::string executor(32, 'x');  // "backout INC-1 by " is 17 bytes
  executor += "\xC3\xA9";         // é at bytes 49 and 50, across the 50-byte limit
  std::string value = UnleashProvider::AuditTagValue("INC-1", executor);
  EXPECT_EQ(value.size(), 49u);
  EXPECT_EQ(value.find("\xC3"), std::string::npos);
}

}  // namespace
}  // namespace backout::providers::unleash
