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

TEST(SchemaTest, JsonSchemaListsRequiredAndClosesObjects) {
  json schema = ToJsonSchema(ChangeLike());
  EXPECT_EQ(schema["required"], json::array({"service"}));
  EXPECT_EQ(schema["additionalProperties"], false);
  EXPECT_EQ(schema["properties"]["migrations"]["items"]["properties"]["reversible"]["type"],
            "boolean");
}

}  // namespace
}  // namespace backout::server
