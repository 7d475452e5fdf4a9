#include "evidence/png.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "evidence/chart.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

std::string ChartSvg() {
  const json response = {
      {"status", "success"},
      {"data",
       {{"resultType", "matrix"},
        {"result",
         json::array({{{"metric", {{"job", "checkout"}}},
                       {"values", json::array({json::array({1796378400, "0.5"}),
                                               json::array({1796378460, "0.02"})})}}})}}}};
  internal::ChartMarks marks{.rollback = core::ParseTime("2026-12-04T10:00:30Z").value()};
  return internal::RenderSeriesSvg(response, "error rate", 0.1, marks).value_or("");
}

uint32_t BigEndian32(const std::string& bytes, size_t at) {
  return (uint32_t{static_cast<uint8_t>(bytes[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(bytes[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(bytes[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(bytes[at + 3])};
}

// The chunk types of a PNG file, in order.
std::vector<std::string> ChunkTypes(const std::string& png) {
  std::vector<std::string> types;
  size_t at = 8;
  while (at + 8 <= png.size()) {
    const uint32_t length = BigEndian32(png, at);
    types.push_back(png.substr(at + 4, 4));
    at += 12 + length;
  }
  return types;
}

TEST(RenderPng, ChartBecomesPngOfItsSize) {
  const std::string svg = ChartSvg();
  ASSERT_FALSE(svg.empty());
  auto png = RenderPng(svg);
  ASSERT_TRUE(png.has_value()) << png.error().message;
  ASSERT_GT(png->size(), 33u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png->substr(12, 4), "IHDR");
  EXPECT_EQ(BigEndian32(*png, 16), 800u);  // width
  EXPECT_EQ(BigEndian32(*png, 20), 320u);  // height
}

TEST(RenderPng, SameSvgGivesSameBytes) {
  const std::string svg = ChartSvg();
  auto first = RenderPng(svg);
  auto second = RenderPng(svg);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*first, *second);
}

TEST(RenderPng, CarriesNoTimeOrTextChunk) {
  auto png = RenderPng(ChartSvg());
  ASSERT_TRUE(png.has_value()) << png.error().message;
  const std::vector<std::string> types = ChunkTypes(*png);
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "IEND");
  for (const std::string& type : types) {
    EXPECT_NE(type, "tIME");
    EXPECT_NE(type, "tEXt");
    EXPECT_NE(type, "iTXt");
    EXPECT_NE(type, "zTXt");
  }
}

TEST(RenderPng, DifferentSvgGivesDifferentBytes) {
  const std::string svg = ChartSvg();
  std::string other = svg;
  other.replace(other.find("error rate"), 10, "error RATE");
  auto first = RenderPng(svg);
  auto second = RenderPng(other);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*first, *second);
}

TEST(RenderPng, MalformedSvgIsInvalid) {
  auto png = RenderPng("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\"");
  ASSERT_FALSE(png.has_value());
  EXPECT_EQ(png.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(png.error().message.find("cannot be parsed"), std::string::npos) << png.error().message;
}

TEST(RenderPng, SvgWithoutSizeIsInvalid) {
  auto png = RenderPng("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>");
  ASSERT_FALSE(png.has_value());
  EXPECT_EQ(png.error().code, core::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace backout::evidence
