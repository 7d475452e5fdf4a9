#include "server/log_throttle.h"

#include <gtest/gtest.h>

namespace backout::server {
namespace {

using std::chrono::seconds;

class LogThrottleTest : public ::testing::Test {
 protected:
  core::ManualClock clock_{core::Time{}};
};

TEST_F(LogThrottleTest, FirstEventIsLogged) {
  LogThrottle throttle(clock_, {.interval = seconds(60)});
  EXPECT_EQ(throttle.Admit("10.0.0.1"), 0u);
}

TEST_F(LogThrottleTest, RepeatsWithinIntervalAreCounted) {
  LogThrottle throttle(clock_, {.interval = seconds(60)});
  ASSERT_EQ(throttle.Admit("10.0.0.1"), 0u);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(10));
    EXPECT_EQ(throttle.Admit("10.0.0.1"), std::nullopt) << "repeat " << i;
  }
  clock_.Advance(seconds(10));  // 60 s after the logged event
  EXPECT_EQ(throttle.Admit("10.0.0.1"), 5u);
  EXPECT_EQ(throttle.Admit("10.0.0.1"), std::nullopt);
}

TEST_F(LogThrottleTest, KeysAreIndependent) {
  LogThrottle throttle(clock_, {.interval = seconds(60)});
  ASSERT_EQ(throttle.Admit("10.0.0.1"), 0u);
  EXPECT_EQ(throttle.Admit("10.0.0.2"), 0u);
  EXPECT_EQ(throttle.Admit("10.0.0.1"), std::nullopt);
}

TEST_F(LogThrottleTest, FullTableForgetsIdleKeys) {
  LogThrottle throttle(clock_, {.interval = seconds(60), .max_keys = 2});
  ASSERT_EQ(throttle.Admit("a"), 0u);
  ASSERT_EQ(throttle.Admit("b"), 0u);
  EXPECT_EQ(throttle.Admit("c"), std::nullopt);  // both keys active: c is held back

  clock_.Advance(seconds(60));
  EXPECT_EQ(throttle.Admit("c"), 0u);  // a and b were idle a whole interval
  EXPECT_EQ(throttle.Admit("a"), 0u);  // forgotten, so logged as new
}

}  // namespace
}  // namespace backout::server
