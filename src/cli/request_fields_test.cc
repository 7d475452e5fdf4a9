#include "cli/request_fields.h"

#include <gtest/gtest.h>

namespace backout::cli {
namespace {

TEST(MigrationSpecTest, DefaultsToReversible) {
  auto spec = ParseMigrationSpec("0042_add_index");
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->id, "0042_add_index");
  EXPECT_TRUE(spec->reversible);
}

TEST(MigrationSpecTest, ReadsIrreversibleSuffix) {
  auto spec = ParseMigrationSpec("0043_drop_column:irreversible");
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->id, "0043_drop_column");
  EXPECT_FALSE(spec->reversible);
}

TEST(MigrationSpecTest, ReadsReversibleSuffix) {
  auto spec = ParseMigrationSpec("m1:reversible");
  ASSERT_TRUE(spec.has_value());
  EXPECT_TRUE(spec->reversible);
}

TEST(MigrationSpecTest, RejectsUnknownSuffix) {
  auto spec = ParseMigrationSpec("m1:maybe");
  ASSERT_FALSE(spec.has_value());
  EXPECT_NE(spec.error().message.find("'m1:maybe'"), std::string::npos);
}

TEST(MigrationSpecTest, RejectsEmptyId) {
  EXPECT_FALSE(ParseMigrationSpec(":irreversible").has_value());
  EXPECT_FALSE(ParseMigrationSpec("").has_value());
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(EncodeBase64(""), "");
  EXPECT_EQ(EncodeBase64("f"), "Zg==");
  EXPECT_EQ(EncodeBase64("fo"), "Zm8=");
  EXPECT_EQ(EncodeBase64("foo"), "Zm9v");
  EXPECT_EQ(EncodeBase64("foob"), "Zm9vYg==");
  EXPECT_EQ(EncodeBase64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(EncodeBase64("foobar"), "Zm9vYmFy");
}

TEST(Base64Test, EncodesHighBytes) {
  EXPECT_EQ(EncodeBase64(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(SetIfNotEmptyTest, LeavesEmptyValueOut) {
  Json body = Json::object();
  SetIfNotEmpty(body, "ticket", "");
  SetIfNotEmpty(body, "approver", "lead-1");
  EXPECT_FALSE(body.contains("ticket"));
  EXPECT_EQ(body["approver"], "lead-1");
}

}  // namespace
}  // namespace backout::cli
