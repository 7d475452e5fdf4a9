#include "providers/codedeploy/codedeploy_settings.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "support/temp_dir.h"

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;

json Minimal() {
  return json{{"application", "shop"}, {"deployment_group", "prod"}, {"region", "eu-west-1"}};
}

EnvironmentLookup Environment(std::map<std::string, std::string> values) {
  return [values](std::string_view name) {
    auto it = values.find(std::string(name));
    return it == values.end() ? std::string() : it->second;
  };
}

EnvironmentLookup AwsEnvironment() {
  return Environment({{"AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00001"},
                      {"AWS_SECRET_ACCESS_KEY", "environment-secret"}});
}

TEST(CodeDeploySettingsTest, DefaultsFromMinimalSettings) {
  auto settings = ParseCodeDeploySettings("shop", Minimal(), {}, AwsEnvironment());
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_EQ(settings->endpoint, "https://codedeploy.eu-west-1.amazonaws.com");
  EXPECT_EQ(settings->file_exists_behavior, "OVERWRITE");
  EXPECT_EQ(settings->timeout, std::chrono::minutes(60));
}

TEST(CodeDeploySettingsTest, CredentialsFromEnvironment) {
  auto settings = ParseCodeDeploySettings("shop", Minimal(), {}, AwsEnvironment());
  ASSERT_TRUE(settings.has_value());
  EXPECT_EQ(settings->credentials.access_key_id, "AKIAENVIRONMENT00001");
  EXPECT_EQ(settings->credentials.secret_access_key, "environment-secret");
  EXPECT_NE(settings->credentials_source.find("environment"), std::string::npos);
}

TEST(CodeDeploySettingsTest, CredentialsFromSecretReferences) {
  json config = Minimal();
  config["credentials"] = {{"access_key_id", "env:SHOP_KEY"},
                           {"secret_access_key", "file:/run/secret"},
                           {"session_token", "env:SHOP_TOKEN"}};
  SecretValues secrets{{"access_key_id", "AKIASECRETREFERENCE1"},
                       {"secret_access_key", "referenced-secret\n"},
                       {"session_token", "token-value"}};
  auto settings = ParseCodeDeploySettings("shop", config, secrets, Environment({}));
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_EQ(settings->credentials.secret_access_key, "referenced-secret");
  EXPECT_EQ(settings->credentials.session_token, "token-value");
}

TEST(CodeDeploySettingsTest, UnresolvedSecretIsNamed) {
  json config = Minimal();
  config["credentials"] = {{"access_key_id", "env:SHOP_KEY"},
                           {"secret_access_key", "env:SHOP_SECRET"}};
  auto settings =
      ParseCodeDeploySettings("shop", config, {{"access_key_id", "AKIA"}}, Environment({}));
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("secret_access_key"), std::string::npos);
}

TEST(CodeDeploySettingsTest, CredentialsFromProfile) {
  testing::TempDir temp;
  std::ofstream(temp.path() / "credentials")
      << "[default]\naws_access_key_id = AKIADEFAULT000000001\naws_secret_access_key = d\n\n"
      << "# deploy role\n[deploy]\naws_access_key_id=AKIADEPLOY0000000001\n"
      << "aws_secret_access_key = deploy-secret\naws_session_token = deploy-token\n";
  json config = Minimal();
  config["profile"] = "deploy";
  config["credentials_file"] = (temp.path() / "credentials").string();
  auto settings = ParseCodeDeploySettings("shop", config, {}, Environment({}));
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_EQ(settings->credentials.access_key_id, "AKIADEPLOY0000000001");
  EXPECT_EQ(settings->credentials.secret_access_key, "deploy-secret");
  EXPECT_EQ(settings->credentials.session_token, "deploy-token");
}

TEST(CodeDeploySettingsTest, ProfileFileFromEnvironment) {
  testing::TempDir temp;
  std::ofstream(temp.path() / "credentials")
      << "[default]\naws_access_key_id = AKIADEFAULT000000001\naws_secret_access_key = d\n";
  json config = Minimal();
  config["profile"] = "default";
  auto settings = ParseCodeDeploySettings(
      "shop", config, {},
      Environment({{"AWS_SHARED_CREDENTIALS_FILE", (temp.path() / "credentials").string()}}));
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_EQ(settings->credentials.access_key_id, "AKIADEFAULT000000001");
}

TEST(CodeDeploySettingsTest, MissingProfileIsNamed) {
  testing::TempDir temp;
  std::ofstream(temp.path() / "credentials") << "[default]\naws_access_key_id = A\n";
  json config = Minimal();
  config["profile"] = "deploy";
  config["credentials_file"] = (temp.path() / "credentials").string();
  auto settings = ParseCodeDeploySettings("shop", config, {}, Environment({}));
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("[deploy]"), std::string::npos);
}

TEST(CodeDeploySettingsTest, NoCredentialsAnywhere) {
  auto settings = ParseCodeDeploySettings("shop", Minimal(), {}, Environment({}));
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
}

TEST(CodeDeploySettingsTest, CredentialsAndProfileConflict) {
  json config = Minimal();
  config["credentials"] = {{"access_key_id", "env:A"}, {"secret_access_key", "env:B"}};
  config["profile"] = "deploy";
  EXPECT_FALSE(ParseCodeDeploySettings("shop", config, {}, AwsEnvironment()).has_value());
}

TEST(CodeDeploySettingsTest, RejectsUnknownField) {
  json config = Minimal();
  config["bucket"] = "x";
  auto settings = ParseCodeDeploySettings("shop", config, {}, AwsEnvironment());
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("field 'bucket'"), std::string::npos);
}

TEST(CodeDeploySettingsTest, RejectsMissingApplication) {
  json config = Minimal();
  config.erase("application");
  auto settings = ParseCodeDeploySettings("shop", config, {}, AwsEnvironment());
  ASSERT_FALSE(settings.has_value());
  EXPECT_NE(settings.error().message.find("'application'"), std::string::npos);
}

TEST(CodeDeploySettingsTest, RejectsBadFileExistsBehavior) {
  json config = Minimal();
  config["file_exists_behavior"] = "REPLACE";
  EXPECT_FALSE(ParseCodeDeploySettings("shop", config, {}, AwsEnvironment()).has_value());
}

TEST(CodeDeploySettingsTest, RejectsNonHttpEndpoint) {
  json config = Minimal();
  config["endpoint"] = "ftp://127.0.0.1";
  EXPECT_FALSE(ParseCodeDeploySettings("shop", config, {}, AwsEnvironment()).has_value());
}

TEST(CodeDeploySettingsTest, ErrorsNeverQuoteTheSecret) {
  json config = Minimal();
  config["credentials"] = {
      {"access_key_id", "env:A"}, {"secret_access_key", "env:B"}, {"extra", "env:C"}};
  auto settings = ParseCodeDeploySettings(
      "shop", config, {{"access_key_id", "AKIA"}, {"secret_access_key", "very-secret-value"}},
      Environment({}));
  ASSERT_FALSE(settings.has_value());
  EXPECT_EQ(settings.error().message.find("very-secret-value"), std::string::npos);
}

}  // namespace
}  // namespace backout::providers::codedeploy
