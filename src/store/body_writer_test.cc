// BodyWriter against nlohmann's dump() and SerializeBody, on fixed, random and invalid input.

#include "store/body_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace backout::store {
namespace {

using ::testing::HasSubstr;

// Writes `value` through `writer`, in the order nlohmann's object_t iterates its members.
void WriteValue(const nlohmann::json& value, BodyWriter& writer) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object:
      writer.BeginObject();
      for (const auto& [name, member] : value.get_ref<const nlohmann::json::object_t&>()) {
        writer.Key(name);
        WriteValue(member, writer);
      }
      writer.EndObject();
      return;
    case Type::array:
      writer.BeginArray();
      for (const nlohmann::json& item : value) WriteValue(item, writer);
      writer.EndArray();
      return;
    case Type::string:
      writer.String(value.get_ref<const std::string&>());
      return;
    case Type::number_integer:
      writer.Integer(value.get<int64_t>());
      return;
    case Type::number_float:
      writer.Number(value.get<double>());
      return;
    case Type::boolean:
      writer.Bool(value.get<bool>());
      return;
    case Type::null:
      writer.Null();
      return;
    default:
      FAIL() << "no BodyWriter call writes " << value.type_name();
  }
}

// Writes `value` and checks that the text or the error equals SerializeBody's.
void ExpectSameAsSerializeBody(const nlohmann::json& value) {
  BodyWriter writer("body of signal/x");
  WriteValue(value, writer);
  auto written = std::move(writer).Finish();
  auto serialized = SerializeBody(value, "body of signal/x");
  ASSERT_EQ(written.has_value(), serialized.has_value())
      << (written ? serialized.error().message : written.error().message);
  if (serialized) {
    EXPECT_EQ(written->text(), serialized->text());
    return;
  }
  EXPECT_EQ(written.error().code, serialized.error().code);
  EXPECT_EQ(written.error().message, serialized.error().message);
}

// Pieces that each take a different branch of dump()'s string escaping.
const std::vector<std::string>& StringPieces() {
  static const std::vector<std::string> pieces = {
      "a",      "Z",          "0",          " ",
      "/",      "~",          "alertname",  "https://grafana.example/d?x=1&y=2",
      "\"",     "\\",         "\b",         "\f",
      "\n",     "\r",         "\t",         std::string(1, '\0'),
      "\x01",   "\x1f",       "\x7f",       "\u00e9",
      "\u00ff", "\u0100",     "\u07ff",     "\u0800",
      "\u2028", "\u2029",     "\ue000",     "\ufeff",
      "\uffff", "\U00010000", "\U0001f600", "\U0010ffff"};
  return pieces;
}

// Bytes that are not valid UTF-8: a lone continuation or high byte, a truncated sequence, an
// overlong form and an encoded surrogate.
const std::vector<std::string>& InvalidUtf8Pieces() {
  static const std::vector<std::string> pieces = {
      "\x80",         "\xff",     "\xc3",         "\xe2\x82",
      "\xf0\x9f\x98", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
  return pieces;
}

std::string RandomString(std::mt19937_64& random, bool allow_invalid) {
  std::uniform_int_distribution<int> length(0, 8);
  std::uniform_int_distribution<size_t> piece(0, StringPieces().size() - 1);
  std::uniform_int_distribution<size_t> invalid(0, InvalidUtf8Pieces().size() - 1);
  std::uniform_int_distribution<int> percent(0, 99);
  std::string text;
  for (int i = length(random); i > 0; --i) {
    if (allow_invalid && percent(random) == 0) {
      text += InvalidUtf8Pieces()[invalid(random)];
    } else {
      text += StringPieces()[piece(random)];
    }
  }
  return text;
}

double RandomDouble(std::mt19937_64& random) {
  static const std::vector<double> special = {0.0,
                                              -0.0,
                                              1.0,
                                              -1.0,
                                              0.1,
                                              1e300,
                                              -1e-300,
                                              std::numeric_limits<double>::min(),
                                              std::numeric_limits<double>::denorm_min(),
                                              std::numeric_limits<double>::max(),
                                              std::numeric_limits<double>::infinity(),
                                              std::numeric_limits<double>::quiet_NaN(),
                                              9007199254740993.0};
  std::uniform_int_distribution<int> choice(0, 2);
  switch (choice(random)) {
    case 0:
      return special[std::uniform_int_distribution<size_t>(0, special.size() - 1)(random)];
    case 1:
      return std::uniform_real_distribution<double>(-1e6, 1e6)(random);
    default:
      return std::bit_cast<double>(random());
  }
}

nlohmann::json RandomValue(std::mt19937_64& random, int depth, bool allow_invalid) {
  std::uniform_int_distribution<int> kind(0, depth > 0 ? 7 : 5);
  switch (kind(random)) {
    case 0:
      return nullptr;
    case 1:
      return random() % 2 == 0;
    case 2:
      return static_cast<int64_t>(random());
    case 3:
      return RandomDouble(random);
    case 4:
    case 5:
      return RandomString(random, allow_invalid);
    case 6: {
      nlohmann::json array = nlohmann::json::array();
      for (int i = std::uniform_int_distribution<int>(0, 4)(random); i > 0; --i) {
        array.push_back(RandomValue(random, depth - 1, allow_invalid));
      }
      return array;
    }
    default: {
      nlohmann::json object = nlohmann::json::object();
      for (int i = std::uniform_int_distribution<int>(0, 5)(random); i > 0; --i) {
        object[RandomString(random, allow_invalid)] = RandomValue(random, depth - 1, allow_invalid);
      }
      return object;
    }
  }
}

TEST(BodyWriterTest, MatchesDumpOnFixedValues) {
  const std::vector<nlohmann::json> values = {
      nullptr,
      true,
      false,
      0,
      -9223372036854775807 - 1,
      9223372036854775807,
      0.0,
      -0.0,
      0.5,
      -1e300,
      std::nan(""),
      std::numeric_limits<double>::infinity(),
      "",
      "quote \" backslash \\ slash /",
      "controls \b\f\n\r\t \x01 \x1f and delete \x7f",
      std::string("nul \0 byte", 10),
      "utf-8 \u00e9 \u2028 \ue000 \U0001f600",
      nlohmann::json::array(),
      nlohmann::json::object(),
      {{"b", 1}, {"a", {1, "two", nullptr, {{"\n", false}}}}, {"\u00e9", 2.25}, {"", {}}},
      {{"labels", {{"z", "1"}, {"A", "\"2\""}, {"\u00e9", "\x7f"}}}, {"score", 0.0}},
  };
  for (const nlohmann::json& value : values) {
    SCOPED_TRACE(value.dump());
    ExpectSameAsSerializeBody(value);
  }
}

TEST(BodyWriterTest, MatchesDumpOnRandomValues) {
  std::mt19937_64 random(20261205);
  for (int round = 0; round < 20000; ++round) {
    const nlohmann::json value = RandomValue(random, 4, /*allow_invalid=*/false);
    SCOPED_TRACE(value.dump());
    ExpectSameAsSerializeBody(value);
    auto dumped = value.dump();
    BodyWriter writer("random value");
    WriteValue(value, writer);
    auto written = std::move(writer).Finish();
    ASSERT_TRUE(written.has_value()) << written.error().message;
    ASSERT_EQ(written->text(), dumped);
  }
}

TEST(BodyWriterTest, ReportsInvalidUtf8AsSerializeBody) {
  std::mt19937_64 random(7);
  int failures = 0;
  for (int round = 0; round < 5000; ++round) {
    const nlohmann::json value = RandomValue(random, 3, /*allow_invalid=*/true);
    ExpectSameAsSerializeBody(value);
    if (!SerializeBody(value, "x")) ++failures;
  }
  // The invalid pieces are rare, so some values must contain one for the test to mean anything.
  EXPECT_GT(failures, 100);
}

TEST(BodyWriterTest, StringMapMatchesObject) {
  const std::map<std::string, std::string> members = {{"alertname", "HighErrorRate"},
                                                      {"", "empty name"},
                                                      {"quote\"", "back\\slash"},
                                                      {"\u00e9t\u00e9", "\U0001f600\n"},
                                                      {"Z", ""}};
  BodyWriter writer("labels");
  writer.StringMap(members);
  auto written = std::move(writer).Finish();
  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(written->text(), nlohmann::json(members).dump());

  BodyWriter invalid("body of signal/am:1");
  invalid.StringMap({{"ok", "fine"}, {"team", "bad \xff byte"}});
  auto failed = std::move(invalid).Finish();
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed.error().message,
            SerializeBody({{"ok", "fine"}, {"team", "bad \xff byte"}}, "body of signal/am:1")
                .error()
                .message);
}

TEST(BodyWriterTest, RejectsMembersOutOfOrder) {
  BodyWriter writer("body of signal/am:1");
  writer.BeginObject();
  writer.Key("status");
  writer.String("firing");
  writer.Key("id");
  writer.String("am:1");
  writer.EndObject();
  auto written = std::move(writer).Finish();
  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kInternal);
  EXPECT_THAT(written.error().message, HasSubstr("body of signal/am:1"));
  EXPECT_THAT(written.error().message, HasSubstr("\"id\" follows \"status\""));
}

TEST(BodyWriterTest, RejectsRepeatedMember) {
  BodyWriter writer("body");
  writer.BeginObject();
  writer.Key("id");
  writer.Integer(1);
  writer.Key("id");
  writer.Integer(2);
  writer.EndObject();
  auto written = std::move(writer).Finish();
  ASSERT_FALSE(written.has_value());
  EXPECT_THAT(written.error().message, HasSubstr("each once"));
}

TEST(BodyWriterTest, OrderIsPerObject) {
  BodyWriter writer("body");
  writer.BeginObject();
  writer.Key("a");
  writer.BeginObject();
  writer.Key("z");
  writer.Null();
  writer.EndObject();
  writer.Key("b");
  writer.BeginArray();
  writer.BeginObject();
  writer.Key("y");
  writer.Bool(true);
  writer.EndObject();
  writer.BeginObject();
  writer.Key("x");
  writer.Bool(false);
  writer.EndObject();
  writer.EndArray();
  writer.EndObject();
  auto written = std::move(writer).Finish();
  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(written->text(), R"({"a":{"z":null},"b":[{"y":true},{"x":false}]})");
}

TEST(BodyWriterTest, PlainKeyWritesKeyBytes) {
  auto write = [](bool plain) {
    BodyWriter writer("body");
    writer.BeginObject();
    if (plain) {
      writer.PlainKey("a b");
    } else {
      writer.Key("a b");
    }
    writer.BeginObject();
    if (plain) {
      writer.PlainKey("~");
    } else {
      writer.Key("~");
    }
    writer.Integer(1);
    writer.EndObject();
    writer.Key("b\tc");
    writer.Null();
    if (plain) {
      writer.PlainKey("id");
    } else {
      writer.Key("id");
    }
    writer.String("am:1");
    writer.EndObject();
    return std::move(writer).Finish();
  };

  auto by_plain = write(true);
  auto by_key = write(false);

  ASSERT_TRUE(by_plain.has_value()) << by_plain.error().message;
  ASSERT_TRUE(by_key.has_value()) << by_key.error().message;
  EXPECT_EQ(by_plain->text(), by_key->text());
  EXPECT_EQ(by_plain->text(),
            nlohmann::json({{"a b", {{"~", 1}}}, {"b\tc", nullptr}, {"id", "am:1"}}).dump());
}

TEST(BodyWriterTest, PlainKeyOrderIsChecked) {
  struct Case {
    std::string name;
    void (*write)(BodyWriter&);
    std::string message;
  };
  const std::vector<Case> cases = {
      {"plain after plain",
       [](BodyWriter& w) { w.BeginObject(), w.PlainKey("b"), w.Null(), w.PlainKey("a"); },
       "\"a\" follows \"b\""},
      {"plain after key",
       [](BodyWriter& w) { w.BeginObject(), w.Key("b"), w.Null(), w.PlainKey("a"); },
       "\"a\" follows \"b\""},
      {"key after plain",
       [](BodyWriter& w) { w.BeginObject(), w.PlainKey("b"), w.Null(), w.Key("b"); },
       "\"b\" follows \"b\""},
      {"plain at top level", [](BodyWriter& w) { w.PlainKey("a"); }, "only valid in an object"},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.name);
    BodyWriter writer("body of test");
    test.write(writer);
    auto written = std::move(writer).Finish();
    ASSERT_FALSE(written.has_value());
    EXPECT_EQ(written.error().code, core::ErrorCode::kInternal);
    EXPECT_THAT(written.error().message, HasSubstr(test.message));
  }
}

TEST(BodyWriterTest, RejectsMisnestedCalls) {
  struct Case {
    std::string name;
    void (*write)(BodyWriter&);
  };
  const std::vector<Case> cases = {
      {"value without key", [](BodyWriter& w) { w.BeginObject(), w.Integer(1), w.EndObject(); }},
      {"key without value", [](BodyWriter& w) { w.BeginObject(), w.Key("a"), w.EndObject(); }},
      {"key in array", [](BodyWriter& w) { w.BeginArray(), w.Key("a"), w.EndArray(); }},
      {"key at top level", [](BodyWriter& w) { w.Key("a"); }},
      {"array closed as object", [](BodyWriter& w) { w.BeginArray(), w.EndObject(); }},
      {"object left open", [](BodyWriter& w) { w.BeginObject(); }},
      {"nothing written", [](BodyWriter&) {}},
      {"two values", [](BodyWriter& w) { w.Null(), w.Null(); }},
      {"close without open", [](BodyWriter& w) { w.EndArray(); }},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.name);
    BodyWriter writer("body of test");
    test.write(writer);
    auto written = std::move(writer).Finish();
    ASSERT_FALSE(written.has_value());
    EXPECT_EQ(written.error().code, core::ErrorCode::kInternal);
    EXPECT_THAT(written.error().message, HasSubstr("body of test"));
  }
}

}  // namespace
}  // namespace backout::store
