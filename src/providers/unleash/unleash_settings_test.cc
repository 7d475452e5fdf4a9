#include "providers/unleash/unleash_settings.h"

#include <gtest/gtest.h>

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

constexpr std::string_view kToken = "*:*.secret-admin-token-value";

json Minimal() {
  return json{{"url", "http://127.0.0.1:4242/"},
              {"flag", "checkout.new-flow"},
              {"environment", "production"}};
}

SecretValues Secrets() { return SecretValues{{"api_token", std::string(kToken)}}; }

TEST(UnleashSettingsTest, DefaultsApply) {
  auto settings = ParseUnleashSettings("checkout", Minimal(), Secrets());
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_EQ(settings->url, "http://127.0.0.1:4242");
  EXPECT_EQ(settings->project, "default");
  EXPECT_EQ(settings->rollback, RollbackState::kOff);
  EXPECT_TRUE(settings->audit_tag);
  EXPECT_EQ(settings->audit_tag_type, "simple");
  EXPECT_TRUE(settings->sdk_evaluation.empty());
}

TEST(UnleashSettingsTest, RequiresApiToken) {
  auto settings = ParseUnleashSettings("checkout", Minimal(), {});
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("api_token is required"), std::string::npos)
      << settings.error().message;
}

TEST(UnleashSettingsTest, RejectsApiSuffix) {
  json raw = Minimal();
  raw["url"] = "http://127.0.0.1:4242/api";
  auto settings = ParseUnleashSettings("checkout", raw, Secrets());
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("without the /api suffix"), std::string::npos)
      << settings.error().message;
}

TEST(UnleashSettingsTest, RejectsUnknownRollback) {
  json raw = Minimal();
  raw["rollback"] = "rollout-10";
  auto settings = ParseUnleashSettings("checkout", raw, Secrets());
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("off, on or rollout-0"), std::string::npos)
      << settings.error().message;
}

TEST(UnleashSettingsTest, SdkEvaluationNeedsSdkToken) {
  json raw = Minimal();
  raw["sdk_evaluation"] = json::array({"/usr/bin/node", "/opt/evaluate-flag.mjs"});
  auto settings = ParseUnleashSettings("checkout", raw, Secrets());
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("needs credentials.sdk_token"), std::string::npos)
      << settings.error().message;
}

TEST(UnleashSettingsTest, RejectsSdkTokenOfOtherEnvironment) {
  SecretValues secrets = Secrets();
  secrets["sdk_token"] = "*:development.secret-backend-token-value";
  auto settings = ParseUnleashSettings("checkout", Minimal(), secrets);
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("environment 'development'"), std::string::npos)
      << settings.error().message;
  EXPECT_EQ(settings.error().message.find("secret-backend-token-value"), std::string::npos);
}

}  // namespace
}  // namespace backout::providers::unleash
