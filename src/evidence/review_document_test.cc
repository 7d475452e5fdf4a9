#include "evidence/review_document.h"

#include <gtest/gtest.h>

#include <string>

namespace backout::evidence {
namespace {

// The binary does not link cmark-gfm; MarkdownToHtml loads it and its extensions with dlopen.
TEST(ReviewDocument, CmarkGfmLoads) {
  auto loaded = LoadCmarkGfm();
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  auto again = LoadCmarkGfm();
  EXPECT_TRUE(again.has_value());
}

TEST(ReviewDocument, RendersMarkdown) {
  auto html = MarkdownToHtml("# Timeline\n\nThe *canary* failed.\n");
  ASSERT_TRUE(html.has_value()) << html.error().message;
  EXPECT_NE(html->find("<h1>Timeline</h1>"), std::string::npos) << *html;
  EXPECT_NE(html->find("<em>canary</em>"), std::string::npos) << *html;
}

// Tables, strikethrough, autolinks and task lists come from the extensions library, which the
// loader registers.
TEST(ReviewDocument, RendersGfmExtensions) {
  auto html = MarkdownToHtml(
      "| step | owner |\n| --- | --- |\n| rollback | ana |\n\n~~v42~~ v41\n\n"
      "See https://example.com/runbook\n\n- [x] page the owner\n");
  ASSERT_TRUE(html.has_value()) << html.error().message;
  EXPECT_NE(html->find("<table>"), std::string::npos) << *html;
  EXPECT_NE(html->find("<td>rollback</td>"), std::string::npos) << *html;
  EXPECT_NE(html->find("<del>v42</del>"), std::string::npos) << *html;
  EXPECT_NE(html->find("<a href=\"https://example.com/runbook\">"), std::string::npos) << *html;
  EXPECT_NE(html->find("type=\"checkbox\""), std::string::npos) << *html;
}

TEST(ReviewDocument, DropsRawHtml) {
  auto html = MarkdownToHtml("before\n\n<script>alert(1)</script>\n\nafter <b>bold</b>\n");
  ASSERT_TRUE(html.has_value()) << html.error().message;
  EXPECT_EQ(html->find("<script>"), std::string::npos) << *html;
  EXPECT_EQ(html->find("<b>"), std::string::npos) << *html;
  EXPECT_NE(html->find("after"), std::string::npos) << *html;
}

}  // namespace
}  // namespace backout::evidence
