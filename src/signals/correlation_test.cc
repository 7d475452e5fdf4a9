#include "signals/correlation.h"

#include <gtest/gtest.h>

namespace backout::signals {
namespace {

using std::chrono::minutes;

core::Time At(int minute) {
  return core::Time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 4)) + minutes(minute);
}

core::Change MakeChange(std::string id, std::string service, int minute) {
  return core::Change{.id = std::move(id),
                      .service = std::move(service),
                      .version = "v2",
                      .previous_version = "v1",
                      .time = At(minute)};
}

TEST(Correlation, AttributesToRecentOwnChange) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 0),
                                         MakeChange("CHG-2", "web", 10)};
  const Correlation result = Correlate({.service = "web", .starts_at = At(12)}, own, {}, {});
  ASSERT_TRUE(result.suspected_change_id.has_value()) << result.reason;
  EXPECT_EQ(*result.suspected_change_id, "CHG-2");
  EXPECT_EQ(result.candidates.size(), 2u);
}

TEST(Correlation, NeverAttributesSignalThatStartedBeforeChange) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 10)};
  const Correlation result = Correlate({.service = "web", .starts_at = At(5)}, own, {}, {});
  EXPECT_FALSE(result.suspected_change_id.has_value());
  ASSERT_EQ(result.candidates.size(), 1u);
  EXPECT_EQ(result.candidates[0].score, 0);
  EXPECT_NE(result.candidates[0].reason.find("before change CHG-1"), std::string::npos);
}

TEST(Correlation, EvenANamedChangeIsRuledOutWhenLater) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 10)};
  const Correlation result =
      Correlate({.service = "web", .starts_at = At(5), .named_change_id = "CHG-1"}, own, {}, {});
  EXPECT_FALSE(result.suspected_change_id.has_value());
}

TEST(Correlation, IgnoresChangesOutsideWatchWindow) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 0)};
  const Correlation result =
      Correlate({.service = "web", .starts_at = At(45)}, own, {}, {.watch_window = minutes(30)});
  EXPECT_FALSE(result.suspected_change_id.has_value());
  EXPECT_NE(result.candidates[0].reason.find("outside"), std::string::npos);
}

TEST(Correlation, PrefersOwnChangeOverDependency) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 5)};
  const std::vector<core::Change> dependency = {MakeChange("CHG-2", "db", 9)};
  const Correlation result =
      Correlate({.service = "web", .starts_at = At(10)}, own, dependency, {});
  ASSERT_TRUE(result.suspected_change_id.has_value());
  EXPECT_EQ(*result.suspected_change_id, "CHG-1");
}

TEST(Correlation, SuspectsDependencyWhenOnlyItChanged) {
  const std::vector<core::Change> dependency = {MakeChange("CHG-2", "db", 9)};
  const Correlation result = Correlate({.service = "web", .starts_at = At(10)}, {}, dependency, {});
  ASSERT_TRUE(result.suspected_change_id.has_value()) << result.reason;
  EXPECT_EQ(*result.suspected_change_id, "CHG-2");
  EXPECT_NE(result.reason.find("depends on"), std::string::npos);
}

TEST(Correlation, NamedChangeWins) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 1),
                                         MakeChange("CHG-2", "web", 9)};
  const Correlation result =
      Correlate({.service = "web", .starts_at = At(10), .named_change_id = "CHG-1"}, own, {}, {});
  ASSERT_TRUE(result.suspected_change_id.has_value());
  EXPECT_EQ(*result.suspected_change_id, "CHG-1");
}

TEST(Correlation, SignalWithoutServiceStaysUnattributed) {
  const std::vector<core::Change> own = {MakeChange("CHG-1", "web", 1)};
  const Correlation result = Correlate({.service = "", .starts_at = At(10)}, own, {}, {});
  EXPECT_FALSE(result.suspected_change_id.has_value());
  EXPECT_NE(result.reason.find("names no service"), std::string::npos);
}

}  // namespace
}  // namespace backout::signals
