#include "signals/alertmanager_json_reader.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace backout::signals::json_reader
