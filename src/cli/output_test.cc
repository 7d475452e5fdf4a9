#include "cli/output.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace backout::cli {
namespace {

TEST(OutputFormatTest, ParsesKnownNames) {
  EXPECT_EQ(ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(ParseOutputFormat("yaml"), OutputFormat::kYaml);
}

TEST(OutputFormatTest, RejectsUnknownName) {
  auto parsed = ParseOutputFormat("xml");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message.find("'xml'"), std::string::npos);
}

TEST(FormatCellTest, FormatsEachKind) {
  EXPECT_EQ(FormatCell(Json("checkout")), "checkout");
  EXPECT_EQ(FormatCell(Json(nullptr)), "-");
  EXPECT_EQ(FormatCell(Json(true)), "true");
  EXPECT_EQ(FormatCell(Json(42)), "42");
  EXPECT_EQ(FormatCell(Json::array({"a", "b"})), "a,b");
  EXPECT_EQ(FormatCell(Json::array()), "-");
  EXPECT_EQ(FormatCell(Json{{"k", 1}}), R"({"k":1})");
}

TEST(FormatCellTest, KeepsCellOnOneLine) { EXPECT_EQ(FormatCell(Json("a\nb")), "a b"); }

TEST(FormatNewestTest, ShortListIsWhole) {
  EXPECT_EQ(FormatNewest(Json::array({"CHG-1", "CHG-2"}), 2), "CHG-2,CHG-1");
  EXPECT_EQ(FormatNewest(Json::array({"CHG-1"}), 2), "CHG-1");
  EXPECT_EQ(FormatNewest(Json::array(), 2), "-");
}

TEST(FormatNewestTest, LongListNamesRest) {
  Json ids = Json::array();
  for (int i = 1; i <= 40; ++i) ids.push_back("CHG-" + std::to_string(i));
  EXPECT_EQ(FormatNewest(ids, 2), "CHG-40,CHG-39 +38 more");
}

TEST(FormatNewestTest, NonArrayFormatsAsCell) {
  EXPECT_EQ(FormatNewest(Json(nullptr), 2), "-");
  EXPECT_EQ(FormatNewest(Json("CHG-1"), 2), "CHG-1");
}

TEST(RenderTableTest, AlignsColumns) {
  const Json items = Json::array({
      {{"id", "INC-1"}, {"state", "assessing"}, {"title", "errors"}},
      {{"id", "INC-10"}, {"state", "closed"}, {"title", "latency"}},
  });
  const std::string table =
      RenderTable(items, {{"ID", "id"}, {"STATE", "state"}, {"TITLE", "title"}});
  EXPECT_EQ(table,
            "ID      STATE      TITLE\n"
            "INC-1   assessing  errors\n"
            "INC-10  closed     latency\n");
}

TEST(RenderTableTest, ReadsJsonPointerAndMissingFields) {
  const Json items = Json::array({{{"name", "checkout"}, {"provider", {{"kind", "command"}}}}});
  EXPECT_EQ(RenderTable(items, {{"NAME", "name"}, {"KIND", "/provider/kind"}, {"X", "x"}}),
            "NAME      KIND     X\n"
            "checkout  command  -\n");
}

TEST(RenderTableTest, EmptyListSaysNone) {
  EXPECT_EQ(RenderTable(Json::array(), {{"ID", "id"}}), "(none)\n");
}

TEST(RenderObjectTest, AlignsKeyValueLines) {
  const Json object = {{"id", "INC-1"}, {"severity", "sev2"}, {"roles", {"a", "b"}}};
  EXPECT_EQ(RenderObject(object),
            "id:       INC-1\n"
            "severity: sev2\n"
            "roles:    a,b\n");
}

TEST(RenderObjectTest, NestsObjectsAndTables) {
  const Json object = {
      {"id", "INC-1"},
      {"assessment", {{"target", "v1"}, {"digest", "ab"}}},
      {"timeline", Json::array({{{"actor", "lead-1"}, {"kind", "opened"}},
                                {{"actor", "sre-1"}, {"kind", "assessed"}}})},
  };
  EXPECT_EQ(RenderObject(object),
            "id: INC-1\n"
            "assessment:\n"
            "  target: v1\n"
            "  digest: ab\n"
            "timeline:\n"
            "  actor   kind\n"
            "  lead-1  opened\n"
            "  sre-1   assessed\n");
}

TEST(RenderObjectTest, PrintsMultilineStringAsBlock) {
  const Json object = {{"markdown", "# Review\nbody"}};
  EXPECT_EQ(RenderObject(object), "markdown: |\n  # Review\n  body\n");
}

TEST(RenderYamlTest, RoundTripsThroughYamlParser) {
  const Json object = {{"id", "INC-1"},     {"count", 3},        {"emergency", false},
                       {"version", "1.10"}, {"flag", "yes"},     {"empty", ""},
                       {"none", nullptr},   {"lines", "a\nb\n"}, {"list", {"x", "y"}}};
  const YAML::Node node = YAML::Load(RenderYaml(object));
  EXPECT_EQ(node["id"].as<std::string>(), "INC-1");
  EXPECT_EQ(node["count"].as<int>(), 3);
  EXPECT_FALSE(node["emergency"].as<bool>());
  EXPECT_EQ(node["version"].Tag(), "!");  // quoted, so "1.10" stays a string
  EXPECT_EQ(node["version"].as<std::string>(), "1.10");
  EXPECT_EQ(node["flag"].Tag(), "!");
  EXPECT_EQ(node["empty"].as<std::string>(), "");
  EXPECT_TRUE(node["none"].IsNull());
  EXPECT_EQ(node["lines"].as<std::string>(), "a\nb\n");
  EXPECT_EQ(node["list"][1].as<std::string>(), "y");
}

TEST(RenderListTest, JsonFormatPrintsItems) {
  const Json items = Json::array({{{"id", "c-1"}}});
  EXPECT_EQ(Json::parse(RenderList(items, {{"ID", "id"}}, OutputFormat::kJson)), items);
}

TEST(RenderObjectTest, ListsIdAndNameFirst) {
  const Json object = Json::parse(R"({"active": true, "name": "sre-1", "id": "u-1"})");
  EXPECT_EQ(RenderObject(object), "id:     u-1\nname:   sre-1\nactive: true\n");
}

TEST(RenderYamlTest, EmitsEmptyListsInline) {
  EXPECT_EQ(RenderYaml(Json{{"services", Json::array()}, {"extra", Json::object()}}),
            "services: []\nextra: {}\n");
}

TEST(FormatCellTest, ShowsEmptyStringAsDash) { EXPECT_EQ(FormatCell(Json("")), "-"); }

TEST(RenderSingleTest, KeepsServerKeyOrder) {
  const Json object = Json::parse(R"({"zeta": 1, "alpha": 2})");
  EXPECT_EQ(RenderSingle(object, OutputFormat::kTable), "zeta:  1\nalpha: 2\n");
}

}  // namespace
}  // namespace backout::cli
