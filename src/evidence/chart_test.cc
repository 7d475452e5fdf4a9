#include "evidence/chart.h"

#include <gtest/gtest.h>

namespace backout::evidence::internal {
namespace {

using nlohmann::json;

json Response() {
  return {
      {"status", "success"},
      {"data",
       {{"resultType", "matrix"},
        {"result", json::array({{{"metric", {{"job", "checkout"}}},
                                 {"values", json::array({json::array({1796378400, "0.5"}),
                                                         json::array({1796378460, "0.02"}),
                                                         json::array({1796378520, "NaN"})})}}})}}}};
}

ChartMarks Marks() {
  return {.change = core::ParseTime("2026-12-04T10:00:30Z").value(),
          .rollback = core::ParseTime("2026-12-04T10:01:00Z").value(),
          .recovery = core::ParseTime("2026-12-04T10:02:00Z").value()};
}

TEST(SeriesChart, DrawsMarksThresholdAndUtcAxis) {
  auto svg = RenderSeriesSvg(Response(), "error rate", 0.1, Marks());
  ASSERT_TRUE(svg.has_value());
  EXPECT_TRUE(svg->starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_NE(svg->find("threshold 0.1"), std::string::npos);
  EXPECT_NE(svg->find(">change 10:00:30<"), std::string::npos) << *svg;
  EXPECT_NE(svg->find(">rollback 10:01:00<"), std::string::npos);
  EXPECT_NE(svg->find(">recovery 10:02:00<"), std::string::npos);
  EXPECT_NE(svg->find("time (UTC), 2026-12-04"), std::string::npos);
  EXPECT_NE(svg->find("<polyline"), std::string::npos);
}

// The recovery mark lies at the right edge of the range: its label must end at the line, not
// start there and run out of the frame. Each label has its own line.
TEST(SeriesChart, RightMarkLabelEndsAtLine) {
  auto svg = RenderSeriesSvg(Response(), "error rate", std::nullopt, Marks());
  ASSERT_TRUE(svg.has_value());
  EXPECT_NE(svg->find("text-anchor=\"end\">recovery 10:02:00<"), std::string::npos) << *svg;
  EXPECT_EQ(svg->find("text-anchor=\"end\">change 10:00:30<"), std::string::npos) << *svg;
  const auto y_of = [&](std::string_view label) {
    const size_t at = svg->rfind(" y=\"", svg->find(label));
    return svg->substr(at, svg->find('"', at + 4) - at);
  };
  EXPECT_NE(y_of(">change"), y_of(">rollback"));
  EXPECT_NE(y_of(">rollback"), y_of(">recovery"));
}

TEST(SeriesChart, ReadsResponseText) {
  auto from_text = RenderSeriesSvg(Response().dump(), "error rate", std::nullopt, {});
  auto from_object = RenderSeriesSvg(Response(), "error rate", std::nullopt, {});
  ASSERT_TRUE(from_text.has_value());
  ASSERT_TRUE(from_object.has_value());
  EXPECT_EQ(*from_text, *from_object);
}

TEST(SeriesChart, NoSamplesGivesNoChart) {
  json empty = {{"status", "success"},
                {"data", {{"resultType", "matrix"}, {"result", json::array()}}}};
  EXPECT_FALSE(RenderSeriesSvg(empty, "x", std::nullopt, {}).has_value());
  EXPECT_FALSE(RenderSeriesSvg("not json", "x", std::nullopt, {}).has_value());
}

TEST(SeriesChart, EscapesTitle) {
  auto svg = RenderSeriesSvg(Response(), "rate{code=~\"5..\"} > 0.01 & <x>", std::nullopt, {});
  ASSERT_TRUE(svg.has_value());
  EXPECT_EQ(svg->find("<x>"), std::string::npos);
  EXPECT_NE(svg->find("&amp; &lt;x&gt;"), std::string::npos);
}

}  // namespace
}  // namespace backout::evidence::internal
