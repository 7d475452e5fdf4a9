#include "app/tokens.h"

#include <gtest/gtest.h>

namespace backout::app {
namespace {

TEST(TokensTest, IssuedTokenCarriesItsId) {
  auto token = IssueToken(7);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->token_id, "tok-7");
  EXPECT_EQ(TokenIdOf(token->text), "tok-7");
}

TEST(TokensTest, SecretHas256Bits) {
  auto token = IssueToken(1);
  ASSERT_TRUE(token.has_value());
  // "bkt_1_" and 43 base64url characters: 43 * 6 = 258 bits, of which 256 are random.
  EXPECT_EQ(token->text.size(), 6u + 43u);
}

TEST(TokensTest, TwoTokensDiffer) {
  auto first = IssueToken(1);
  auto second = IssueToken(1);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(first->text, second->text);
}

TEST(TokensTest, HashMatchesOnlyTheToken) {
  auto token = IssueToken(3);
  ASSERT_TRUE(token.has_value());
  EXPECT_TRUE(TokenMatches(token->text, token->sha256));
  std::string altered = token->text;
  altered.back() = altered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(TokenMatches(altered, token->sha256));
}

TEST(TokensTest, MalformedTextHasNoId) {
  EXPECT_FALSE(TokenIdOf("").has_value());
  EXPECT_FALSE(TokenIdOf("bkt_").has_value());
  EXPECT_FALSE(TokenIdOf("bkt_x_abc").has_value());
  EXPECT_FALSE(TokenIdOf("bkt_0_abc").has_value());
  EXPECT_FALSE(TokenIdOf("Bearer bkt_1_abc").has_value());
}

}  // namespace
}  // namespace backout::app
