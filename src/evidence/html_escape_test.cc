#include "evidence/html_escape.h"

#include <gtest/gtest.h>

#include "evidence/review_document.h"

namespace backout::evidence::internal {
namespace {

TEST(EscapeHtml, ReplacesEachSpecialCharacter) {
  EXPECT_EQ(EscapeHtml("&"), "&amp;");
  EXPECT_EQ(EscapeHtml("<"), "&lt;");
  EXPECT_EQ(EscapeHtml(">"), "&gt;");
  EXPECT_EQ(EscapeHtml("\""), "&quot;");
  EXPECT_EQ(EscapeHtml("'"), "&#39;");
}

TEST(EscapeHtml, KeepsOtherText) {
  EXPECT_EQ(EscapeHtml(""), "");
  EXPECT_EQ(EscapeHtml("rate 5xx > 1% in checkout's \"eu\" pods"),
            "rate 5xx &gt; 1% in checkout&#39;s &quot;eu&quot; pods");
  EXPECT_EQ(EscapeHtml("Zürich: ünïcode stays"), "Zürich: ünïcode stays");
}

// HtmlPage escapes its title with the shared function, single quotes included.
TEST(EscapeHtml, ReviewPageTitleIsEscaped) {
  const std::string page = HtmlPage("INC-7 'checkout' <b>", "<p>text</p>");
  EXPECT_NE(page.find("INC-7 &#39;checkout&#39; &lt;b&gt;"), std::string::npos) << page;
  EXPECT_EQ(page.find("<b>"), std::string::npos) << page;
}

}  // namespace
}  // namespace backout::evidence::internal
