#include "signals/alertmanager_json_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace backout::signals::json_reader {
namespace {

// Records SAX events as text, so that two parsers' events can be compared.
struct EventLog {
  std::string events;

  bool null() { return Add("null"); }
  bool boolean(bool value) { return Add(value ? "true" : "false"); }
  bool number_integer(int64_t value) { return Add("integer " + std::to_string(value)); }
  bool number_unsigned(uint64_t value) { return Add("unsigned " + std::to_string(value)); }
  bool number_float(double value, const std::string& text) { return Add("float " + text); }
  bool string(std::string& value) { return Add("string " + value); }
  bool binary(nlohmann::json::binary_t& /*value*/) { return Add("binary"); }
  bool key(std::string& name) { return Add("key " + name); }
  bool start_object(size_t elements) { return Add("{ " + std::to_string(elements)); }
  bool end_object() { return Add("}"); }
  bool start_array(size_t elements) { return Add("[ " + std::to_string(elements)); }
  bool end_array() { return Add("]"); }
  bool parse_error(size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*error*/) {
    return false;
  }

  bool Add(std::string_view event) {
    events += event;
    events += '\n';
    return true;
  }
};

struct Outcome {
  bool accepted = false;
  std::string events;
};

Outcome ReadFast(std::string_view text) {
  EventLog log;
  const bool accepted = ReadJson(text, log);
  return Outcome{accepted, log.events};
}

Outcome ReadWithNlohmann(std::string_view text) {
  EventLog log;
  const bool accepted = nlohmann::json::sax_parse(text.begin(), text.end(), &log);
  return Outcome{accepted, log.events};
}

TEST(AlertmanagerJsonReader, MatchesNlohmannOnValidJson) {
  const std::vector<std::string> texts = {
      R"({"version":"4","alerts":[{"labels":{"a":"b"}},[],{},null,true,false]})",
      " \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , 123456789012345678 ] }\n ",
      R"(["\"\\\/\b\f\n\r\t", "\u00e9\u0026\u0000\uFFFF", "\ud83d\ude80\uD83D\uDE80"])",
      "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 \xef\xbf\xbf \x7f\"]",
      R"({"":{"":""},"a":{"a":{"a":[[[{}]]]}}})",
      R"("top-level string")",
      "-12",
      "null",
  };
  for (const std::string& text : texts) {
    const Outcome fast = ReadFast(text);
    const Outcome reference = ReadWithNlohmann(text);
    ASSERT_TRUE(reference.accepted) << text;
    EXPECT_TRUE(fast.accepted) << text;
    EXPECT_EQ(fast.events, reference.events) << text;
  }
}

TEST(AlertmanagerJsonReader, GivesUpOnFormsItDoesNotRead) {
  // nlohmann accepts each of these, and the caller parses them again with it.
  const std::vector<std::string> texts = {
      "[1.5]",          "[1e3]", "[-2E-1]", "[1234567890123456789]", "[18446744073709551616]",
      "\xef\xbb\xbf{}",
  };
  for (const std::string& text : texts) {
    ASSERT_TRUE(ReadWithNlohmann(text).accepted) << text;
    EXPECT_FALSE(ReadFast(text).accepted) << text;
  }
}

TEST(AlertmanagerJsonReader, RejectsInvalidJson) {
  const std::vector<std::string> texts = {
      "",
      " ",
      "{",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "[1,]",
      "[1 2]",
      "{\"a\":1]",
      "[1}",
      "{} {}",
      "{}x",
      "{'a':1}",
      "[01]",
      "[-]",
      "[-a]",
      "[nul]",
      "[truex]",
      "[True]",
      "[\"a\nb\"]",
      "[\"\\x\"]",
      "[\"\\u12\"]",
      "[\"\\uZZZZ\"]",
      "[\"\\ud83d\"]",
      "[\"\\ud83dx\"]",
      "[\"\\ud83d\\u0041\"]",
      "[\"\\udc00\"]",
      "[\"\xc3\"]",
      "[\"\xc0\xaf\"]",
      "[\"\xe0\x80\x80\"]",
      "[\"\xed\xa0\x80\"]",
      "[\"\xf4\x90\x80\x80\"]",
      "[\"\xff\"]",
      "[\"unterminated",
      "\xef\xbb{}",
  };
  for (const std::string& text : texts) {
    ASSERT_FALSE(ReadWithNlohmann(text).accepted) << text;
    EXPECT_FALSE(ReadFast(text).accepted) << text;
  }
}

TEST(AlertmanagerJsonReader, StopsWhenHandlerReturnsFalse) {
  struct StopAtKey : EventLog {
    bool key(std::string& /*name*/) { return false; }
  } handler;
  EXPECT_FALSE(ReadJson(R"({"a":1})", handler));
}

// Random JSON texts for the comparison below, valid and invalid: strings with every kind of
// escape and UTF-8 sequence (some malformed), numbers of every form, literals and nested
// containers, with whitespace between tokens and random edits.
class RandomJson {
 public:
  explicit RandomJson(uint64_t seed) : random_(seed) {}

  std::string Text() {
    std::string text = Whitespace() + Value(0) + Whitespace();
    if (Below(4) == 0) Edit(text);
    return text;
  }

 private:
  size_t Below(size_t bound) {
    return std::uniform_int_distribution<size_t>(0, bound - 1)(random_);
  }

  template <size_t N>
  const char* Pick(const char* const (&choices)[N]) {
    return choices[Below(N)];
  }

  std::string Whitespace() {
    static const char* const kChoices[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    return Pick(kChoices);
  }

  std::string String() {
    static const char* const kPieces[] = {"a",
                                          "web",
                                          "\\\"",
                                          "\\\\",
                                          "\\/",
                                          "\\b\\f\\n\\r\\t",
                                          "\\u00e9",
                                          "\\u0026",
                                          "\\u0000",
                                          "\\uD83D\\uDE80",
                                          "\\uABCD",
                                          "\xc3\xa9",
                                          "\xe2\x82\xac",
                                          "\xf0\x9f\x9a\x80",
                                          "\xef\xbf\xbf",
                                          "\x7f",
                                          "\\ud83d",
                                          "\\udc00",
                                          "\\uD83Dx",
                                          "\\uZZZZ",
                                          "\\u12",
                                          "\\x",
                                          "\xc0\xaf",
                                          "\xed\xa0\x80",
                                          "\xf4\x90\x80\x80",
                                          "\xe0\x80\x80",
                                          "\xff",
                                          "\xc3",
                                          "\x01"};
    std::string text = "\"";
    const size_t pieces = Below(5);
    for (size_t i = 0; i < pieces; ++i) text += kPieces[Below(Below(5) == 0 ? 29 : 16)];
    return text + "\"";
  }

  std::string Number() {
    static const char* const kNumbers[] = {"0",
                                           "-0",
                                           "7",
                                           "-12",
                                           "123456789012345678",
                                           "1234567890123456789",
                                           "1.5",
                                           "1e3",
                                           "1E+3",
                                           "-1e-3",
                                           "18446744073709551616",
                                           "-9223372036854775809",
                                           "01",
                                           "-",
                                           "1.",
                                           ".5",
                                           "1e999",
                                           "-01"};
    return Pick(kNumbers);
  }

  std::string Value(int depth) {
    switch (Below(depth > 4 ? 5 : 7)) {
      case 0: {
        static const char* const kLiterals[] = {"null", "true", "false", "null", "nul", "truex"};
        return Pick(kLiterals);
      }
      case 1:
      case 2:
        return String();
      case 3:
        return Number();
      case 4:
        return std::to_string(Below(1000));
      case 5: {
        std::string text = "[" + Whitespace();
        const size_t items = Below(4);
        for (size_t i = 0; i < items; ++i) {
          if (i > 0) text += "," + Whitespace();
          text += Value(depth + 1) + Whitespace();
        }
        return text + "]";
      }
      default: {
        std::string text = "{" + Whitespace();
        const size_t members = Below(4);
        for (size_t i = 0; i < members; ++i) {
          if (i > 0) text += "," + Whitespace();
          text += String() + Whitespace() + ":" + Whitespace() + Value(depth + 1) + Whitespace();
        }
        return text + "}";
      }
    }
  }

  void Edit(std::string& text) {
    static constexpr std::string_view kBytes = " {}[],:\"x1\\-.e\x80";
    switch (Below(5)) {
      case 0:
        text.resize(Below(text.size() + 1));
        break;
      case 1:
        if (!text.empty()) text[Below(text.size())] = kBytes[Below(kBytes.size())];
        break;
      case 2:
        if (!text.empty()) text.erase(Below(text.size()), 1);
        break;
      case 3:
        text.insert(Below(text.size() + 1), 1, kBytes[Below(kBytes.size())]);
        break;
      default:
        text.insert(0, "\xef\xbb\xbf");
        break;
    }
  }

  std::mt19937_64 random_;
};

TEST(AlertmanagerJsonReader, MatchesNlohmannOnRandomText) {
  RandomJson generator(20261205);
  int accepted = 0;
  int rejected_by_nlohmann = 0;
  for (int i = 0; i < 50000; ++i) {
    const std::string text = generator.Text();
    const Outcome fast = ReadFast(text);
    const Outcome reference = ReadWithNlohmann(text);
    if (!reference.accepted) ++rejected_by_nlohmann;
    if (!fast.accepted) continue;
    ++accepted;
    ASSERT_TRUE(reference.accepted) << "accepted invalid JSON: " << text;
    ASSERT_EQ(fast.events, reference.events) << text;
  }
  // Both outcomes must be common, or the comparison proves little.
  EXPECT_GT(accepted, 10000);
  EXPECT_GT(rejected_by_nlohmann, 10000);
}

}  // namespace
}  // namespace backout::signals::json_reader
