// How one environment of a flag is read: what "off" serves and where the new variation is
// still served while targeting is on.

#include "providers/launchdarkly/flag_state.h"

#include <gtest/gtest.h>

namespace backout::providers::launchdarkly {
namespace {

using nlohmann::json;

json Flag() {
  return json{{"key", "checkout"},
              {"variations",
               {{{"_id", "a"}, {"value", "new"}, {"name", "redesign"}},
                {{"_id", "b"}, {"value", "old"}},
                {{"_id", "c"}, {"value", "beta"}}}}};
}

TEST(ResolveVariationTest, ByIndexNameOrValue) {
  EXPECT_EQ(ResolveVariation(Flag(), "1").value(), 1u);
  EXPECT_EQ(ResolveVariation(Flag(), "redesign").value(), 0u);
  EXPECT_EQ(ResolveVariation(Flag(), "beta").value(), 2u);
  EXPECT_EQ(ResolveVariation(Flag(), "\"old\"").value(), 1u);
}

TEST(ResolveVariationTest, UnknownNamesChoices) {
  auto missing = ResolveVariation(Flag(), "purple");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("redesign"), std::string::npos);
}

TEST(DescribeOffTest, OffVariationValue) {
  OffServes off = DescribeOff(Flag(), json{{"offVariation", 1}}, 0, std::nullopt);
  EXPECT_TRUE(off.value_known);
  EXPECT_EQ(off.value, "old");
  EXPECT_FALSE(off.serves_new);
}

TEST(DescribeOffTest, OffVariationIsNewOne) {
  OffServes off = DescribeOff(Flag(), json{{"offVariation", 0}}, 0, std::nullopt);
  EXPECT_TRUE(off.serves_new);
  EXPECT_NE(off.description.find("new behaviour"), std::string::npos);
}

TEST(DescribeOffTest, NoOffVariationFallbackUnknown) {
  OffServes off = DescribeOff(Flag(), json::object(), 0, std::nullopt);
  EXPECT_FALSE(off.off_variation.has_value());
  EXPECT_FALSE(off.value_known);
  EXPECT_NE(off.description.find("fallback"), std::string::npos);
}

TEST(DescribeOffTest, NoOffVariationFallbackIsNew) {
  OffServes off = DescribeOff(Flag(), json{{"offVariation", nullptr}}, 0, json("new"));
  EXPECT_TRUE(off.value_known);
  EXPECT_TRUE(off.serves_new);
}

TEST(NewVariationUseTest, TargetsRulesAndDefaultRule) {
  json config{
      {"fallthrough",
       {{"rollout",
         {{"variations",
           {{{"variation", 0}, {"weight", 25000}}, {{"variation", 1}, {"weight", 75000}}}}}}}},
      {"targets", {{{"variation", 0}, {"values", {"u1", "u2", "u3", "u4"}}}}},
      {"contextTargets", {{{"variation", 1}, {"values", {"x"}}, {"contextKind", "org"}}}},
      {"rules",
       {{{"_id", "r1"}, {"variation", 1}},
        {{"_id", "r2"}, {"description", "beta"}, {"variation", 0}}}}};
  NewVariationUse use = FindNewVariationUse(config, 0);
  EXPECT_EQ(use.fallthrough_weight, 25000);
  ASSERT_EQ(use.targets.size(), 1u);
  EXPECT_EQ(use.targets[0], "4 user targets (u1, u2, u3, …)");
  ASSERT_EQ(use.rules.size(), 1u);
  EXPECT_EQ(use.rules[0], "rule 2 (beta, 100 %)");
}

TEST(NewVariationUseTest, NothingServesIt) {
  json config{{"fallthrough", {{"variation", 1}}}};
  NewVariationUse use = FindNewVariationUse(config, 0);
  EXPECT_FALSE(use.ServedAnywhere());
  EXPECT_EQ(use.Describe(), "nothing");
}

}  // namespace
}  // namespace backout::providers::launchdarkly
