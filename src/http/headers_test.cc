#include "http/headers.h"

#include <gtest/gtest.h>

namespace backout::http {
namespace {

TEST(HeadersTest, GetIgnoresCase) {
  Headers headers{{"Content-Type", "application/json"}};
  EXPECT_EQ(headers.Get("content-type"), "application/json");
  EXPECT_EQ(headers.Get("CONTENT-TYPE"), "application/json");
}

TEST(HeadersTest, GetMissingReturnsNothing) {
  Headers headers{{"Accept", "*/*"}};
  EXPECT_FALSE(headers.Get("Content-Type").has_value());
  EXPECT_FALSE(headers.Contains("Content-Type"));
}

TEST(HeadersTest, AddKeepsRepeatedFields) {
  Headers headers;
  headers.Add("Set-Cookie", "a=1");
  headers.Add("set-cookie", "b=2");
  EXPECT_EQ(headers.Get("Set-Cookie"), "a=1");
  EXPECT_EQ(headers.GetAll("SET-COOKIE"), (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(HeadersTest, SetReplacesEveryField) {
  Headers headers{{"X-Id", "1"}, {"x-id", "2"}, {"Accept", "*/*"}};
  headers.Set("X-ID", "3");
  EXPECT_EQ(headers.GetAll("x-id"), std::vector<std::string>{"3"});
  EXPECT_EQ(headers.size(), 2u);
}

TEST(HeadersTest, RemoveIgnoresCase) {
  Headers headers{{"Authorization", "Bearer x"}, {"Accept", "*/*"}};
  headers.Remove("authorization");
  EXPECT_FALSE(headers.Contains("Authorization"));
  EXPECT_TRUE(headers.Contains("Accept"));
}

}  // namespace
}  // namespace backout::http
