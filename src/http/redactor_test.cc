#include "http/redactor.h"

#include <gtest/gtest.h>

namespace backout::http {
namespace {

TEST(RedactorTest, HidesUserInformationInUrl) {
  Redactor redactor;
  EXPECT_EQ(redactor.RedactUrl("https://deploy:hunter2@example.test:8443/api?x=1"),
            "https://[REDACTED]@example.test:8443/api?x=1");
}

TEST(RedactorTest, KeepsUrlWithoutSecrets) {
  Redactor redactor;
  EXPECT_EQ(redactor.RedactUrl("http://127.0.0.1:8080/api/v1/items?page=2&limit=10#top"),
            "http://127.0.0.1:8080/api/v1/items?page=2&limit=10#top");
}

TEST(RedactorTest, HidesConfiguredQueryParams) {
  Redactor redactor(RedactionRules{.query_params = {"token", "sig"}});
  EXPECT_EQ(redactor.RedactUrl("http://h/p?token=abc&page=2&SIG=x%2Fy&token"),
            "http://h/p?token=[REDACTED]&page=2&SIG=[REDACTED]&token");
}

TEST(RedactorTest, MatchesPercentEncodedParamNames) {
  Redactor redactor(RedactionRules{.query_params = {"api key"}});
  EXPECT_EQ(redactor.RedactUrl("http://h/?api%20key=1&api+key=2"),
            "http://h/?api%20key=[REDACTED]&api+key=[REDACTED]");
}

TEST(RedactorTest, HidesBuiltInQueryParams) {
  Redactor redactor;
  EXPECT_EQ(redactor.RedactUrl("https://b.test/o?X-Amz-Signature=abc&access_token=t&X-Amz-Date=1"),
            "https://b.test/o?X-Amz-Signature=[REDACTED]&access_token=[REDACTED]&X-Amz-Date=1");
}

TEST(RedactorTest, HidesParamsInFragment) {
  Redactor redactor;
  EXPECT_EQ(redactor.RedactUrl("https://h/cb#access_token=abc&state=1"),
            "https://h/cb#access_token=[REDACTED]&state=1");
}

TEST(RedactorTest, HidesSensitiveHeaders) {
  Redactor redactor(RedactionRules{.headers = {"X-Api-Key"}});
  Headers redacted = redactor.RedactHeaders({{"authorization", "Bearer abc"},
                                             {"Proxy-Authorization", "Basic xyz"},
                                             {"Cookie", "session=1"},
                                             {"Set-Cookie", "session=2"},
                                             {"X-Amz-Security-Token", "tok"},
                                             {"x-api-key", "k"},
                                             {"Accept", "application/json"}});
  EXPECT_EQ(redacted, (Headers{{"authorization", "[REDACTED]"},
                               {"Proxy-Authorization", "[REDACTED]"},
                               {"Cookie", "[REDACTED]"},
                               {"Set-Cookie", "[REDACTED]"},
                               {"X-Amz-Security-Token", "[REDACTED]"},
                               {"x-api-key", "[REDACTED]"},
                               {"Accept", "application/json"}}));
}

TEST(RedactorTest, HidesJsonFieldsAtAnyDepth) {
  Redactor redactor(RedactionRules{.json_fields = {"password", "token"}});
  std::string body =
      R"({"user": "ann", "password": "p1", "nested": {"list": [{"Token": "t1"}, {"ok": 1}]}})";
  EXPECT_EQ(
      redactor.RedactBody(body, "application/json"),
      R"({"user": "ann", "password": "[REDACTED]", "nested": {"list": [{"Token": "[REDACTED]"}, {"ok": 1}]}})");
}

TEST(RedactorTest, HidesJsonValuesOfEveryType) {
  Redactor redactor(RedactionRules{.json_fields = {"secret"}});
  EXPECT_EQ(redactor.RedactBody(R"({"secret": {"a": "}", "b": [1, 2]}, "next": 1})", ""),
            R"({"secret": "[REDACTED]", "next": 1})");
  EXPECT_EQ(redactor.RedactBody(R"({"secret":[{"x":"y"}],"next":1})", ""),
            R"({"secret":"[REDACTED]","next":1})");
  EXPECT_EQ(redactor.RedactBody(R"({"secret": 12345, "next": true})", ""),
            R"({"secret": "[REDACTED]", "next": true})");
  EXPECT_EQ(redactor.RedactBody(R"({"secret": null})", ""), R"({"secret": "[REDACTED]"})");
}

TEST(RedactorTest, HandlesEscapedQuotesInJsonStrings) {
  Redactor redactor(RedactionRules{.json_fields = {"secret"}});
  EXPECT_EQ(redactor.RedactBody(R"({"note": "say \"secret\": here", "secret": "a\"b"})", ""),
            R"({"note": "say \"secret\": here", "secret": "[REDACTED]"})");
}

TEST(RedactorTest, KeepsJsonFormattingWhenNothingMatches) {
  Redactor redactor(RedactionRules{.json_fields = {"password"}});
  std::string body = "{\n  \"user\" :  \"ann\",\n  \"n\": 1.50\n}";
  EXPECT_EQ(redactor.RedactBody(body, "application/json"), body);
}

TEST(RedactorTest, HidesFieldsInTruncatedJson) {
  Redactor redactor(RedactionRules{.json_fields = {"token"}});
  EXPECT_EQ(redactor.RedactBody(R"({"items": [{"token": "abc"}, {"token": "de)", ""),
            R"({"items": [{"token": "[REDACTED]"}, {"token": "[REDACTED]")");
}

TEST(RedactorTest, HidesFormFields) {
  Redactor redactor(RedactionRules{.query_params = {"client_secret"}});
  EXPECT_EQ(redactor.RedactBody("grant_type=client_credentials&client_secret=s3",
                                "application/x-www-form-urlencoded; charset=utf-8"),
            "grant_type=client_credentials&client_secret=[REDACTED]");
}

TEST(RedactorTest, ReplacesLiteralSecretsEverywhere) {
  Redactor redactor(RedactionRules{.secret_values = {"hunter2"}});
  EXPECT_EQ(redactor.RedactText("password is hunter2, again hunter2"),
            "password is [REDACTED], again [REDACTED]");
  EXPECT_EQ(redactor.RedactUrl("http://h/users/hunter2/x"), "http://h/users/[REDACTED]/x");
  EXPECT_EQ(redactor.RedactHeaders({{"X-Note", "k=hunter2"}}),
            (Headers{{"X-Note", "k=[REDACTED]"}}));
  EXPECT_EQ(redactor.RedactBody("plain hunter2 text", "text/plain"), "plain [REDACTED] text");
}

TEST(RedactorTest, ReplacesEncodedFormsOfSecrets) {
  Redactor redactor(RedactionRules{.secret_values = {"a b/\"c"}});
  EXPECT_EQ(redactor.RedactText("url a%20b%2F%22c form a+b%2F%22c json a b/\\\"c raw a b/\"c"),
            "url [REDACTED] form [REDACTED] json [REDACTED] raw [REDACTED]");
}

TEST(RedactorTest, ReplacesLongestSecretFirst) {
  Redactor redactor(RedactionRules{.secret_values = {"abc", "abcdef"}});
  EXPECT_EQ(redactor.RedactText("xabcdefx abcx"), "x[REDACTED]x [REDACTED]x");
}

TEST(RedactorTest, IgnoresEmptySecret) {
  Redactor redactor(RedactionRules{.secret_values = {""}});
  EXPECT_EQ(redactor.RedactText("nothing to hide"), "nothing to hide");
}

}  // namespace
}  // namespace backout::http
