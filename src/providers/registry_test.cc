#include "providers/registry.h"

#include <gtest/gtest.h>

#include <string>

namespace backout::providers {
namespace {

using nlohmann::json;

class RegistryTest : public ::testing::Test {
 protected:
  core::ManualClock clock_{*core::ParseTime("2026-03-01T12:00:00Z")};
};

TEST_F(RegistryTest, CreatesCommandProvider) {
  auto provider = Registry::Create("command", "checkout", json{{"run", {"/opt/runbooks/rollback"}}},
                                   {}, clock_);
  ASSERT_TRUE(provider.has_value()) << provider.error().message;
  EXPECT_EQ((*provider)->Kind(), "command");
  EXPECT_EQ((*provider)->Service(), "checkout");
}

TEST_F(RegistryTest, CreatesReleasesProvider) {
  auto provider =
      Registry::Create("releases", "checkout", json{{"root", "/srv/checkout"}}, {}, clock_);
  ASSERT_TRUE(provider.has_value()) << provider.error().message;
  EXPECT_EQ((*provider)->Kind(), "releases");
}

TEST_F(RegistryTest, UnknownKindListsKnownKinds) {
  auto provider = Registry::Create("ftp", "checkout", json::object(), {}, clock_);
  ASSERT_FALSE(provider.has_value());
  EXPECT_EQ(provider.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(provider.error().message.starts_with(
      "service checkout: unknown provider kind 'ftp'; known kinds are "))
      << provider.error().message;
  EXPECT_NE(provider.error().message.find("command"), std::string::npos);
}

TEST_F(RegistryTest, InvalidSettingsNameField) {
  auto provider = Registry::Create("command", "checkout", json{{"run", "/bin/true"}}, {}, clock_);
  ASSERT_FALSE(provider.has_value());
  EXPECT_NE(provider.error().message.find("field 'run'"), std::string::npos)
      << provider.error().message;
}

TEST_F(RegistryTest, KindsListsCommand) {
  auto kinds = Registry::Kinds();
  ASSERT_FALSE(kinds.empty());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "command"), kinds.end());
}

}  // namespace
}  // namespace backout::providers
