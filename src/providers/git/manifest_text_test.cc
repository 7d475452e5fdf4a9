#include "providers/git/manifest_text.h"

#include <gtest/gtest.h>

#include <string>

#include "providers/git/test_git.h"

namespace backout::providers::git {
namespace {

using testing::kAutomationManifest;
using testing::ValuesYaml;

TEST(VersionReaderTest, PatternReturnsGroup) {
  VersionReader reader(R"(tag: (\S+))", "");
  auto version = reader.Read(ValuesYaml("v41"));
  ASSERT_TRUE(version.has_value()) << version.error().message;
  EXPECT_EQ(*version, "v41");
}

TEST(VersionReaderTest, YamlKeyIgnoresSetterComment) {
  VersionReader reader("", "image.tag");
  auto version = reader.Read(ValuesYaml("v41"));
  ASSERT_TRUE(version.has_value()) << version.error().message;
  EXPECT_EQ(*version, "v41");
}

TEST(VersionReaderTest, YamlKeySearchesEveryDocument) {
  VersionReader reader("", "spec.template.image");
  auto version = reader.Read("kind: A\n---\nspec:\n  template:\n    image: app:1.2\n");
  ASSERT_TRUE(version.has_value()) << version.error().message;
  EXPECT_EQ(*version, "app:1.2");
}

TEST(VersionReaderTest, MissingKeyIsNotFound) {
  VersionReader reader("", "image.digest");
  auto version = reader.Read(ValuesYaml("v41"));
  ASSERT_FALSE(version.has_value());
  EXPECT_EQ(version.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(version.error().message.find("image.digest"), std::string::npos);
}

TEST(VersionReaderTest, InvalidYamlIsReported) {
  VersionReader reader("", "image.tag");
  auto version = reader.Read("image: [unclosed\n");
  ASSERT_FALSE(version.has_value());
  EXPECT_EQ(version.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST(SuspendAutomationTest, InsertsSuspendBelowSpec) {
  auto suspended = SuspendAutomation(kAutomationManifest);
  ASSERT_TRUE(suspended.has_value()) << suspended.error().message;
  std::string expected(kAutomationManifest);
  expected.replace(expected.find("spec:\n") + 6, 0, "  suspend: true\n");
  EXPECT_EQ(*suspended, expected);
  EXPECT_TRUE(IsSuspended(*suspended));
  EXPECT_FALSE(IsSuspended(kAutomationManifest));
}

TEST(SuspendAutomationTest, RewritesSuspendFalse) {
  std::string manifest =
      "kind: Kustomization\nspec:\n    suspend: false # managed\n    "
      "interval: 5m\n";
  auto suspended = SuspendAutomation(manifest);
  ASSERT_TRUE(suspended.has_value()) << suspended.error().message;
  EXPECT_EQ(*suspended, "kind: Kustomization\nspec:\n    suspend: true\n    interval: 5m\n");
}

TEST(SuspendAutomationTest, LeavesNestedSuspendAlone) {
  std::string manifest = "spec:\n  template:\n    suspend: false\n  interval: 1m\n";
  auto suspended = SuspendAutomation(manifest);
  ASSERT_TRUE(suspended.has_value()) << suspended.error().message;
  EXPECT_EQ(*suspended,
            "spec:\n  suspend: true\n  template:\n    suspend: false\n  interval: 1m\n");
}

TEST(SuspendAutomationTest, SuspendsEveryDocument) {
  std::string manifest = "kind: A\nspec:\n  interval: 1m\n---\nkind: B\nspec:\n  interval: 2m\n";
  auto suspended = SuspendAutomation(manifest);
  ASSERT_TRUE(suspended.has_value()) << suspended.error().message;
  EXPECT_TRUE(IsSuspended(*suspended));
  EXPECT_EQ(*suspended,
            "kind: A\nspec:\n  suspend: true\n  interval: 1m\n---\nkind: B\nspec:\n  suspend: "
            "true\n  interval: 2m\n");
}

TEST(SuspendAutomationTest, WithoutSpecFails) {
  auto suspended = SuspendAutomation("kind: ConfigMap\ndata:\n  a: b\n");
  ASSERT_FALSE(suspended.has_value());
  EXPECT_EQ(suspended.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST(SuspendAutomationTest, FlowStyleSpecFails) {
  auto suspended = SuspendAutomation("kind: A\nspec: {interval: 1m}\n");
  ASSERT_FALSE(suspended.has_value());
}

}  // namespace
}  // namespace backout::providers::git
