#include "ledger/canonical.h"

#include <gtest/gtest.h>

#include <string>

namespace backout::ledger {
namespace {

std::string Canonical(const nlohmann::json& value) {
  auto text = CanonicalJson(value);
  EXPECT_TRUE(text.has_value()) << text.error().message;
  return text.value_or("");
}

std::string CanonicalOfText(std::string_view json_text) {
  return Canonical(nlohmann::json::parse(json_text));
}

TEST(CanonicalJsonTest, SortsMembersByUtf16CodeUnits) {
  // The sorting example of RFC 8785 section 3.2.3. U+1F600 is the surrogate pair D83D DE00 in
  // UTF-16, so it sorts before U+FB33; by UTF-8 bytes or code points it would sort after.
  const std::string input = R"({
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(CanonicalOfText(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST(CanonicalJsonTest, NonBmpSortsBeforeHighBmp) {
  nlohmann::json object;
  object["\xef\xbf\xbd"] = 1;      // U+FFFD: one code unit, FFFD
  object["\xf0\x90\x80\x80"] = 2;  // U+10000: D800 DC00
  object["\xee\x80\x80"] = 3;      // U+E000: one code unit, E000
  object["\xed\x9f\xbf"] = 4;      // U+D7FF: one code unit, below the surrogates
  EXPECT_EQ(Canonical(object),
            "{\"\xed\x9f\xbf\":4,\"\xf0\x90\x80\x80\":2,\"\xee\x80\x80\":3,\"\xef\xbf\xbd\":1}");
}

TEST(CanonicalJsonTest, SortsNonAsciiNamesByCodeUnit) {
  // No name here has a character of U+E000-U+FFFF, so byte order is already UTF-16 order, and
  // bytes above 0x7F must compare as unsigned.
  nlohmann::json object;
  object["\xf0\x9f\x98\x80"] = 4;  // U+1F600
  object["\xe2\x82\xac"] = 3;      // U+20AC
  object["\xc3\xa9"] = 2;          // U+00E9
  object["z"] = 1;
  EXPECT_EQ(Canonical(object),
            "{\"z\":1,\"\xc3\xa9\":2,\"\xe2\x82\xac\":3,\"\xf0\x9f\x98\x80\":4}");
}

TEST(CanonicalJsonTest, EscapesStringsAsEcmaScript) {
  // The string example of RFC 8785 section 3.2.2.2, plus the remaining short escapes.
  EXPECT_EQ(CanonicalOfText(R"(["\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"])"),
            "[\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"]");
  EXPECT_EQ(Canonical(std::string("\b\f\r\t\x01\x1f\x7f")), "\"\\b\\f\\r\\t\\u0001\\u001f\x7f\"");
  // U+2028 and U+2029 stay literal, as JSON.stringify leaves them.
  EXPECT_EQ(Canonical("\xe2\x80\xa8\xe2\x80\xa9"), "\"\xe2\x80\xa8\xe2\x80\xa9\"");
}

TEST(CanonicalJsonTest, WritesLiteralsAndIntegers) {
  EXPECT_EQ(CanonicalOfText("[null, true, false, 0, -0, -17, 9007199254740991]"),
            "[null,true,false,0,0,-17,9007199254740991]");
  EXPECT_EQ(Canonical(nlohmann::json::object()), "{}");
  EXPECT_EQ(Canonical(nlohmann::json::array()), "[]");
  EXPECT_EQ(Canonical(""), "\"\"");
}

TEST(CanonicalJsonTest, SortsNestedObjectsAndKeepsArrayOrder) {
  EXPECT_EQ(CanonicalOfText(R"({ "b": [3, {"z": 1, "a": {"y": null, "x": []}}, 1],
                                 "a": {"c": "d", "B": true} })"),
            R"({"a":{"B":true,"c":"d"},"b":[3,{"a":{"x":[],"y":null},"z":1},1]})");
}

TEST(CanonicalJsonTest, RejectsFloatsNamingThePath) {
  auto result = CanonicalJson(nlohmann::json::parse(R"({"a": {"b/c": [1, 2.5]}})"));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message.find("'/a/b~1c/1'"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().message.find("2.5"), std::string::npos) << result.error().message;
}

TEST(CanonicalJsonTest, RejectsWholeNumberWrittenAsFloat) {
  auto result = CanonicalJson(nlohmann::json::parse(R"({"n": 1.0})"));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("'/n'"), std::string::npos) << result.error().message;
}

TEST(CanonicalJsonTest, RejectsFloatAtRoot) {
  auto result = CanonicalJson(nlohmann::json(0.5));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("document root"), std::string::npos)
      << result.error().message;
}

TEST(CanonicalJsonTest, RejectsIntegersBeyondDoublePrecision) {
  auto too_large = CanonicalJson(nlohmann::json{{"big", uint64_t{9007199254740992}}});
  ASSERT_FALSE(too_large.has_value());
  EXPECT_NE(too_large.error().message.find("'/big'"), std::string::npos);
  EXPECT_FALSE(CanonicalJson(nlohmann::json(int64_t{-9007199254740992})).has_value());
  EXPECT_TRUE(CanonicalJson(nlohmann::json(int64_t{-9007199254740991})).has_value());
}

TEST(CanonicalJsonTest, RejectsInvalidUtf8) {
  auto bad_string = CanonicalJson(nlohmann::json{{"s", std::string("\xc3\x28")}});
  ASSERT_FALSE(bad_string.has_value());
  EXPECT_NE(bad_string.error().message.find("'/s'"), std::string::npos);
  // An encoded surrogate (CESU-8) and an overlong '/' are ill-formed UTF-8 too.
  EXPECT_FALSE(CanonicalJson(nlohmann::json(std::string("\xed\xa0\x80"))).has_value());
  EXPECT_FALSE(CanonicalJson(nlohmann::json(std::string("\xc0\xaf"))).has_value());
  nlohmann::json bad_name;
  bad_name[std::string("\xff")] = 1;
  EXPECT_FALSE(CanonicalJson(bad_name).has_value());
}

TEST(CanonicalJsonTest, RejectsBinary) {
  EXPECT_FALSE(CanonicalJson(nlohmann::json::binary({1, 2, 3})).has_value());
}

}  // namespace
}  // namespace backout::ledger
