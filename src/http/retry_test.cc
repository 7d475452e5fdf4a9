#include "http/retry.h"

#include <gtest/gtest.h>

namespace backout::http {
namespace {

using std::chrono::milliseconds;

// Fri, 04 Dec 2026 17:00:00 UTC.
TimePoint DecemberFourth() {
  return TimePoint(std::chrono::sys_days(std::chrono::year(2026) / 12 / 4) +
                   std::chrono::hours(17));
}

TEST(BackoffCeilingTest, DoublesFromBaseDelay) {
  RetryPolicy policy{.base_delay = milliseconds(100), .max_delay = milliseconds(10'000)};
  EXPECT_EQ(BackoffCeiling(policy, 1), milliseconds(100));
  EXPECT_EQ(BackoffCeiling(policy, 2), milliseconds(200));
  EXPECT_EQ(BackoffCeiling(policy, 3), milliseconds(400));
  EXPECT_EQ(BackoffCeiling(policy, 4), milliseconds(800));
}

TEST(BackoffCeilingTest, StopsAtMaxDelay) {
  RetryPolicy policy{.base_delay = milliseconds(100), .max_delay = milliseconds(250)};
  EXPECT_EQ(BackoffCeiling(policy, 3), milliseconds(250));
  EXPECT_EQ(BackoffCeiling(policy, 1000), milliseconds(250));
}

TEST(FullJitterTest, ScalesCeilingByUnit) {
  EXPECT_EQ(FullJitter(milliseconds(1000), 0.0), milliseconds(0));
  EXPECT_EQ(FullJitter(milliseconds(1000), 0.25), milliseconds(250));
  EXPECT_EQ(FullJitter(milliseconds(1000), 0.999), milliseconds(999));
}

TEST(FullJitterTest, ClampsUnitOutsideRange) {
  EXPECT_EQ(FullJitter(milliseconds(1000), -1.0), milliseconds(0));
  EXPECT_EQ(FullJitter(milliseconds(1000), 7.0), milliseconds(1000));
}

TEST(ParseRetryAfterTest, ReadsDelaySeconds) {
  EXPECT_EQ(ParseRetryAfter("2", DecemberFourth()), milliseconds(2000));
  EXPECT_EQ(ParseRetryAfter(" 120 ", DecemberFourth()), milliseconds(120'000));
  EXPECT_EQ(ParseRetryAfter("0", DecemberFourth()), milliseconds(0));
}

TEST(ParseRetryAfterTest, CapsHugeDelayAtOneDay) {
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", DecemberFourth()),
            milliseconds(24 * 3600 * 1000));
}

TEST(ParseRetryAfterTest, ReadsImfFixdate) {
  EXPECT_EQ(ParseRetryAfter("Fri, 04 Dec 2026 17:00:05 GMT", DecemberFourth()), milliseconds(5000));
}

TEST(ParseRetryAfterTest, ReadsObsoleteDateFormats) {
  EXPECT_EQ(ParseRetryAfter("Friday, 04-Dec-26 17:00:30 GMT", DecemberFourth()),
            milliseconds(30'000));
  EXPECT_EQ(ParseRetryAfter("Fri Dec  4 17:01:00 2026", DecemberFourth()), milliseconds(60'000));
}

TEST(ParseRetryAfterTest, PastDateMeansNoDelay) {
  EXPECT_EQ(ParseRetryAfter("Fri, 04 Dec 2026 16:00:00 GMT", DecemberFourth()), milliseconds(0));
}

TEST(ParseRetryAfterTest, RejectsOtherText) {
  EXPECT_FALSE(ParseRetryAfter("", DecemberFourth()).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", DecemberFourth()).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", DecemberFourth()).has_value());
}

TEST(IsRetryableStatusTest, RetriesTransientStatuses) {
  for (int status : {408, 429, 500, 502, 503, 504, 599}) {
    EXPECT_TRUE(IsRetryableStatus(status)) << status;
  }
}

TEST(IsRetryableStatusTest, KeepsFinalStatuses) {
  for (int status : {200, 204, 301, 400, 401, 403, 404, 409, 501, 505}) {
    EXPECT_FALSE(IsRetryableStatus(status)) << status;
  }
}

}  // namespace
}  // namespace backout::http
