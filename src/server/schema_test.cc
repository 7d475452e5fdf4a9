#include "server/schema.h"

#include <gtest/gtest.h>

namespace backout::server {
namespace {

using nlohmann::json;

Schema ChangeLike() {
  return ObjectSchema(
      "",
      {Required("service", StringSchema("")), Optional("time", StringSchema("", "date-time")),
       Optional("severity", EnumSchema("", {"sev1", "sev2"})),
       Optional("migrations",
                ArraySchema("", ObjectSchema("", {Required("id", StringSchema("")),
                                                  Required("reversible", BooleanSchema(""))})))});
}

std::string MessageFor(const json& body) {
  auto result = Validate(body, ChangeLike());
  return result ? "" : result.error().message;
}

TEST(SchemaTest, AcceptsValidObject) {
  auto result = Validate(json{{"service", "checkout"},
                              {"time", "2026-05-01T12:00:00Z"},
                              {"migrations", {{{"id", "m1"}, {"reversible", false}}}}},
                         ChangeLike());
  EXPECT_TRUE(result.has_value());
}

TEST(SchemaTest, RejectsUnknownField) {
  EXPECT_EQ(MessageFor({{"service", "a"}, {"colour", "red"}}),
            "unknown field `colour`; the fields allowed here are: service, time, severity, "
            "migrations");
}

TEST(SchemaTest, RejectsMissingRequiredField) {
  EXPECT_EQ(MessageFor(json::object()), "missing required field `service` (string)");
}

TEST(SchemaTest, RejectsWrongTypeNamingNestedPath) {
  EXPECT_EQ(MessageFor({{"service", "a"}, {"migrations", {{{"id", "m"}, {"reversible", "no"}}}}}),
            "field `migrations[0].reversible` must be a boolean, got a string");
}

TEST(SchemaTest, RejectsUnknownNestedField) {
  EXPECT_EQ(MessageFor({{"service", "a"},
                        {"migrations", {{{"id", "m"}, {"reversible", true}, {"x", 1}}}}}),
            "unknown field `migrations[0].x`; the fields allowed here are: id, reversible");
}

TEST(SchemaTest, RejectsBadTimeFormat) {
  EXPECT_EQ(
      MessageFor({{"service", "a"}, {"time", "yesterday"}}),
      "field `time` must be an RFC 3339 time such as 2026-05-01T12:00:00Z, got \"yesterday\"");
}

TEST(SchemaTest, RejectsValueOutsideEnum) {
  EXPECT_EQ(MessageFor({{"service", "a"}, {"severity", "sev9"}}),
            "field `severity` must be one of sev1, sev2, got \"sev9\"");
}

TEST(SchemaTest, RejectsNonObjectBody) {
  EXPECT_EQ(MessageFor(json::array()), "field `(body)` must be an object, got an array");
}

TEST(SchemaTest, IntegerRangeIsCheckedAndDocumented) {
  const Schema schema = ObjectSchema("", {Optional("count", IntegerSchema("", 1, 1000))});
  EXPECT_TRUE(Validate(json{{"count", 1}}, schema).has_value());
  EXPECT_TRUE(Validate(json{{"count", 1000}}, schema).has_value());

  const std::pair<json, std::string> rejected[] = {
      {json{{"count", 0}}, "field `count` must be an integer from 1 to 1000, got 0"},
      {json{{"count", -5}}, "field `count` must be an integer from 1 to 1000, got -5"},
      {json{{"count", 1001}}, "field `count` must be an integer from 1 to 1000, got 1001"},
  };
  for (const auto& [body, message] : rejected) {
    auto result = Validate(body, schema);
    ASSERT_FALSE(result.has_value()) << body.dump();
    EXPECT_EQ(result.error().message, message);
  }

  const json documented = ToJsonSchema(IntegerSchema("", 1, 1000));
  EXPECT_EQ(documented["minimum"], 1);
  EXPECT_EQ(documented["maximum"], 1000);
}

TEST(SchemaTest, JsonSchemaListsRequiredAndClosesObjects) {
  json schema = ToJsonSchema(ChangeLike());
  EXPECT_EQ(schema["required"], json::array({"service"}));
  EXPECT_EQ(schema["additionalProperties"], false);
  EXPECT_EQ(schema["properties"]["migrations"]["items"]["properties"]["reversible"]["type"],
            "boolean");
}

}  // namespace
}  // namespace backout::server
