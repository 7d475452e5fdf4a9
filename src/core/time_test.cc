#include "core/time.h"

#include <gtest/gtest.h>

namespace backout::core {
namespace {

TEST(TimeTest, FormatsMicrosecondsAndZ) {
  auto time = ParseTime("2026-12-04T17:05:41.000123Z");
  ASSERT_TRUE(time.has_value()) << time.error().message;
  EXPECT_EQ(FormatTime(*time), "2026-12-04T17:05:41.000123Z");
}

TEST(TimeTest, NormalizesOffsetToUtc) {
  auto time = ParseTime("2026-12-04T19:05:41+02:00");
  ASSERT_TRUE(time.has_value());
  EXPECT_EQ(FormatTime(*time), "2026-12-04T17:05:41.000000Z");
}

TEST(TimeTest, TruncatesNanoseconds) {
  auto time = ParseTime("2026-01-01T00:00:00.123456789Z");
  ASSERT_TRUE(time.has_value());
  EXPECT_EQ(FormatTime(*time), "2026-01-01T00:00:00.123456Z");
}

TEST(TimeTest, FormatsEdgeYearsAndPreEpoch) {
  for (const char* text : {"0001-01-01T00:00:00.000000Z", "0000-03-01T12:34:56.000001Z",
                           "1969-12-31T23:59:59.500000Z", "9999-12-31T23:59:59.999999Z"}) {
    auto time = ParseTime(text);
    ASSERT_TRUE(time.has_value()) << text;
    EXPECT_EQ(FormatTime(*time), text);
  }
}

TEST(TimeTest, FormatsYearsOutsideFourDigits) {
  using namespace std::chrono;
  EXPECT_EQ(FormatTime(Time(sys_days(year(10000) / 1 / 2))), "10000-01-02T00:00:00.000000Z");
  EXPECT_EQ(FormatTime(Time(sys_days(year(-1) / 12 / 31))), "-001-12-31T00:00:00.000000Z");
}

TEST(TimeTest, RejectsMalformedText) {
  for (const char* text :
       {"", "2026-12-04", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-12-04T17:05:41",
        "2026-12-04T17:05:41.Z", "2026-12-04T17:05:41Zx"}) {
    auto time = ParseTime(text);
    EXPECT_FALSE(time.has_value()) << text;
    if (!time) {
      EXPECT_NE(time.error().message.find("invalid time"), std::string::npos);
    }
  }
}

TEST(DurationTest, ParsesUnits) {
  EXPECT_EQ(ParseDuration("300s").value(), std::chrono::seconds(300));
  EXPECT_EQ(ParseDuration("5m").value(), std::chrono::minutes(5));
  EXPECT_EQ(ParseDuration("24h").value(), std::chrono::hours(24));
  EXPECT_EQ(ParseDuration("250ms").value(), std::chrono::milliseconds(250));
}

TEST(DurationTest, RejectsMissingOrUnknownUnit) {
  EXPECT_FALSE(ParseDuration("300").has_value());
  EXPECT_FALSE(ParseDuration("5d").has_value());
  EXPECT_FALSE(ParseDuration("-5s").has_value());
  EXPECT_FALSE(ParseDuration("s").has_value());
}

}  // namespace
}  // namespace backout::core
