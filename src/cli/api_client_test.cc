#include "cli/api_client.h"

#include <gtest/gtest.h>

namespace backout::cli {
namespace {

TEST(EncodeUrlComponentTest, KeepsUnreservedAndEscapesTheRest) {
  EXPECT_EQ(EncodeUrlComponent("INC-1_a.b~c"), "INC-1_a.b~c");
  EXPECT_EQ(EncodeUrlComponent("a b/c?d&e"), "a%20b%2Fc%3Fd%26e");
  EXPECT_EQ(EncodeUrlComponent("\xc3\xa9"), "%C3%A9");
}

TEST(WithQueryTest, SkipsEmptyValues) {
  EXPECT_EQ(WithQuery("/api/v1/incidents", {{"service", "checkout"}, {"state", ""}}),
            "/api/v1/incidents?service=checkout");
  EXPECT_EQ(WithQuery("/api/v1/incidents", {{"service", ""}}), "/api/v1/incidents");
}

TEST(WithQueryTest, AppendsToExistingQuery) {
  EXPECT_EQ(WithQuery("/api/v1/changes?service=a", {{"after", "c-3"}}),
            "/api/v1/changes?service=a&after=c-3");
}

TEST(ErrorFromResponseTest, UsesServerMessageAndCode) {
  const core::Error error = ErrorFromResponse(
      403, R"({"error":{"code":"permission_denied","message":"sre-2 has no grant for checkout"}})");
  EXPECT_EQ(error.code, core::ErrorCode::kPermissionDenied);
  EXPECT_EQ(error.message, "sre-2 has no grant for checkout (HTTP 403 permission_denied)");
}

TEST(ErrorFromResponseTest, MapsCodeNameOverStatus) {
  const core::Error error = ErrorFromResponse(
      409, R"({"error":{"code":"failed_precondition","message":"incident INC-1 is closed"}})");
  EXPECT_EQ(error.code, core::ErrorCode::kFailedPrecondition);
}

TEST(ErrorFromResponseTest, AddsTokenHintOn401) {
  const core::Error error =
      ErrorFromResponse(401, R"({"error":{"code":"unauthenticated","message":"invalid token"}})");
  EXPECT_EQ(error.code, core::ErrorCode::kUnauthenticated);
  EXPECT_NE(error.message.find("BACKOUT_TOKEN"), std::string::npos);
}

TEST(ErrorFromResponseTest, ShowsForeignBody) {
  const core::Error error = ErrorFromResponse(502, "<html>Bad Gateway</html>");
  EXPECT_EQ(error.code, core::ErrorCode::kUnavailable);
  EXPECT_NE(error.message.find("HTTP 502"), std::string::npos);
  EXPECT_NE(error.message.find("Bad Gateway"), std::string::npos);
}

TEST(ErrorFromResponseTest, SurvivesWrongTypes) {
  const core::Error error = ErrorFromResponse(400, R"({"error":{"code":7,"message":["x"]}})");
  EXPECT_EQ(error.code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(error.message.find("HTTP 400"), std::string::npos);
}

TEST(UnreachableErrorTest, SaysHowToStartServer) {
  const core::Error error = UnreachableError("http://127.0.0.1:1", "Connection refused");
  EXPECT_EQ(error.code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(error.message,
            "cannot reach Backout at http://127.0.0.1:1: Connection refused; start it with "
            "`backout serve --config FILE` or set BACKOUT_URL");
}

TEST(ApiClientTest, RejectsUrlWithoutScheme) {
  auto client = ApiClient::Create(ConnectionOptions{"127.0.0.1:8470", ""});
  ASSERT_FALSE(client.has_value());
  EXPECT_EQ(client.error().code, core::ErrorCode::kInvalidArgument);
}

TEST(ApiClientTest, StripsTrailingSlash) {
  auto client = ApiClient::Create(ConnectionOptions{"http://127.0.0.1:8470//", ""});
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->url(), "http://127.0.0.1:8470");
}

TEST(FindInvalidUtf8Test, AcceptsWellFormedText) {
  EXPECT_FALSE(FindInvalidUtf8("").has_value());
  EXPECT_FALSE(FindInvalidUtf8("plain ASCII\n").has_value());
  EXPECT_FALSE(FindInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80").has_value());
}

TEST(FindInvalidUtf8Test, ReportsFirstInvalidByte) {
  EXPECT_EQ(FindInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xc3"), 0u);              // truncated sequence
  EXPECT_EQ(FindInvalidUtf8("x\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("\xed\xa0\x80"), 0u);      // UTF-16 surrogate
  EXPECT_EQ(FindInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("ok\xe2\x82"), 2u);        // truncated at the end
}

TEST(ApiClientTest, InvalidUtf8BodyIsErrorNotThrow) {
  // Nothing listens on port 9 of the loopback; the body check fails before any connection.
  auto api = ApiClient::Create({.url = "http://127.0.0.1:9", .token = ""});
  ASSERT_TRUE(api.has_value()) << api.error().message;
  const Json body = {{"markdown", std::string("# Review\n\xff\xfe")}};
  core::Result<Json> answer = api->Put("/api/v1/incidents/INC-1/review", body);
  ASSERT_FALSE(answer.has_value());
  EXPECT_EQ(answer.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(answer.error().message.find("request field /markdown is not UTF-8 text"),
            std::string::npos)
      << answer.error().message;

  const Json nested = {{"factors", {"fine", std::string("bad \xc3")}}};
  answer = api->Post("/api/v1/incidents/INC-1/document", nested);
  ASSERT_FALSE(answer.has_value());
  EXPECT_NE(answer.error().message.find("/factors/1"), std::string::npos) << answer.error().message;
}

}  // namespace
}  // namespace backout::cli
