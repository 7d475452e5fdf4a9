#include "ledger/entry.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "ledger/merkle.h"

namespace backout::ledger {
namespace {

core::Time At(std::string_view text) { return core::ParseTime(text).value(); }

Entry SampleEntry() {
  Entry entry;
  entry.sequence = 7;
  entry.time = At("2026-12-04T17:05:41.000123Z");
  entry.actor = "alice";
  entry.action = "incident.opened";
  entry.subject = "incident/INC-7";
  entry.change = {{"severity", 2}, {"service", "checkout"}};
  return entry;
}

std::string Encode(const Entry& entry) {
  auto encoded = EncodeEntry(entry);
  EXPECT_TRUE(encoded.has_value()) << encoded.error().message;
  return encoded.value_or("");
}

std::string ReplaceOnce(std::string text, std::string_view from, std::string_view to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(EntryTest, EncodesCanonicalJsonWithChangeDigest) {
  const std::string change_digest = ToHex(Sha256(R"({"service":"checkout","severity":2})"));
  EXPECT_EQ(
      Encode(SampleEntry()),
      R"({"action":"incident.opened","actor":"alice",)"
      R"("change":{"service":"checkout","severity":2},)"
      R"("change_digest":")" +
          change_digest +
          R"(","sequence":7,"subject":"incident/INC-7","time":"2026-12-04T17:05:41.000123Z"})");
}

TEST(EntryTest, DecodeRoundTrips) {
  const Entry original = SampleEntry();
  auto decoded = DecodeEntry(Encode(original));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->sequence, original.sequence);
  EXPECT_EQ(decoded->time, original.time);
  EXPECT_EQ(decoded->actor, original.actor);
  EXPECT_EQ(decoded->action, original.action);
  EXPECT_EQ(decoded->subject, original.subject);
  EXPECT_EQ(decoded->change, original.change);
}

TEST(EntryTest, EncodeRejectsFloatInChange) {
  Entry entry = SampleEntry();
  entry.change["ratio"] = 0.5;
  auto encoded = EncodeEntry(entry);
  ASSERT_FALSE(encoded.has_value());
  EXPECT_NE(encoded.error().message.find("'/ratio'"), std::string::npos) << encoded.error().message;
}

TEST(EntryTest, EncodeRejectsEmptyActionAndNonObjectChange) {
  Entry no_action = SampleEntry();
  no_action.action.clear();
  EXPECT_FALSE(EncodeEntry(no_action).has_value());
  Entry array_change = SampleEntry();
  array_change.change = nlohmann::json::array({1, 2});
  EXPECT_FALSE(EncodeEntry(array_change).has_value());
}

TEST(EntryTest, EncodeEscapesEnvelopeStrings) {
  Entry entry = SampleEntry();
  entry.actor = "al\"ice\\\n";
  entry.subject = "incident/\u00e9\ue000\U0001f600";
  entry.sequence = (uint64_t{1} << 53) - 1;
  const std::string encoded = Encode(entry);
  EXPECT_NE(encoded.find(R"("actor":"al\"ice\\\n")"), std::string::npos) << encoded;
  // DecodeEntry accepts only the canonical bytes of the entry it decodes.
  auto decoded = DecodeEntry(encoded);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->actor, entry.actor);
  EXPECT_EQ(decoded->subject, entry.subject);
  EXPECT_EQ(decoded->sequence, entry.sequence);
}

TEST(EntryTest, EncodeNamesInvalidEnvelopeField) {
  Entry bad_actor = SampleEntry();
  bad_actor.actor = "al\xffice";
  auto encoded = EncodeEntry(bad_actor);
  ASSERT_FALSE(encoded.has_value());
  EXPECT_NE(encoded.error().message.find("actor"), std::string::npos) << encoded.error().message;
  EXPECT_NE(encoded.error().message.find("UTF-8"), std::string::npos) << encoded.error().message;

  Entry bad_sequence = SampleEntry();
  bad_sequence.sequence = uint64_t{1} << 53;
  encoded = EncodeEntry(bad_sequence);
  ASSERT_FALSE(encoded.has_value());
  EXPECT_NE(encoded.error().message.find("sequence"), std::string::npos) << encoded.error().message;
}

// Prepares `entry` without its sequence and time, then encodes it at those.
EncodedEntry EncodePrepared(const Entry& entry) {
  auto prepared = PrepareEntry(entry.actor, entry.action, entry.subject, entry.change);
  EXPECT_TRUE(prepared.has_value()) << prepared.error().message;
  if (!prepared) return {};
  auto encoded = prepared->Encode(entry.sequence, entry.time);
  EXPECT_TRUE(encoded.has_value()) << encoded.error().message;
  return encoded.value_or(EncodedEntry{});
}

TEST(EntryTest, PreparedEncodesEncodeEntryBytes) {
  std::vector<Entry> entries = {SampleEntry()};
  Entry escaped = SampleEntry();
  escaped.actor = "al\"ice\\\n\x01";
  escaped.subject = "incident/\u00e9\ue000\U0001f600";
  escaped.change = {{"signals", {{{"signal", "am:1"}, {"status", "firing"}}}},
                    {"\ue000", "private use"},
                    {"\U0001f600", -7}};
  escaped.sequence = (uint64_t{1} << 53) - 1;
  entries.push_back(escaped);
  Entry empty_change = SampleEntry();
  empty_change.change = nlohmann::json::object();
  empty_change.sequence = 0;
  entries.push_back(empty_change);

  for (const Entry& entry : entries) {
    const std::string expected = Encode(entry);
    const EncodedEntry encoded = EncodePrepared(entry);
    EXPECT_EQ(encoded.bytes, expected);
    EXPECT_EQ(encoded.leaf_hash, LeafHash(expected));
    auto decoded = DecodeEntry(encoded.bytes);
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    EXPECT_EQ(decoded->sequence, entry.sequence);
    EXPECT_EQ(decoded->change, entry.change);
  }
}

TEST(EntryTest, PreparedEncodesManySequences) {
  const Entry sample = SampleEntry();
  auto prepared = PrepareEntry(sample.actor, sample.action, sample.subject, sample.change);
  ASSERT_TRUE(prepared.has_value()) << prepared.error().message;

  for (uint64_t sequence : {uint64_t{0}, uint64_t{9}, uint64_t{10}, uint64_t{123456789}}) {
    Entry entry = sample;
    entry.sequence = sequence;
    entry.time += std::chrono::microseconds(sequence);
    auto encoded = prepared->Encode(entry.sequence, entry.time);
    ASSERT_TRUE(encoded.has_value()) << encoded.error().message;
    EXPECT_EQ(encoded->bytes, Encode(entry));
    EXPECT_EQ(encoded->leaf_hash, LeafHash(encoded->bytes));
  }
}

TEST(EntryTest, PrepareRejectsWhatEncodeRejects) {
  auto no_action = PrepareEntry("alice", "", "incident/INC-7", nlohmann::json::object());
  ASSERT_FALSE(no_action.has_value());
  EXPECT_NE(no_action.error().message.find("empty action"), std::string::npos)
      << no_action.error().message;

  auto array_change =
      PrepareEntry("alice", "incident.opened", "incident/INC-7", nlohmann::json::array({1, 2}));
  ASSERT_FALSE(array_change.has_value());
  EXPECT_NE(array_change.error().message.find("must be a JSON object"), std::string::npos)
      << array_change.error().message;

  auto float_change = PrepareEntry("alice", "incident.opened", "incident/INC-7", {{"ratio", 0.5}});
  ASSERT_FALSE(float_change.has_value());
  EXPECT_NE(float_change.error().message.find("'/ratio'"), std::string::npos)
      << float_change.error().message;

  auto bad_subject =
      PrepareEntry("alice", "incident.opened", "incident/\xff", nlohmann::json::object());
  ASSERT_FALSE(bad_subject.has_value());
  EXPECT_NE(bad_subject.error().message.find("subject"), std::string::npos)
      << bad_subject.error().message;
  EXPECT_NE(bad_subject.error().message.find("UTF-8"), std::string::npos)
      << bad_subject.error().message;
}

TEST(EntryTest, PreparedRejectsUnsafeSequence) {
  auto prepared =
      PrepareEntry("alice", "incident.opened", "incident/INC-7", nlohmann::json::object());
  ASSERT_TRUE(prepared.has_value()) << prepared.error().message;

  auto encoded = prepared->Encode(uint64_t{1} << 53, At("2026-12-04T17:05:41.000123Z"));

  ASSERT_FALSE(encoded.has_value());
  EXPECT_EQ(encoded.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(encoded.error().message.find("sequence"), std::string::npos) << encoded.error().message;
}

TEST(EntryTest, DecodeRejectsChangeDigestMismatch) {
  const std::string encoded = Encode(SampleEntry());
  const std::string edited = ReplaceOnce(encoded, "\"severity\":2", "\"severity\":1");
  auto decoded = DecodeEntry(edited);
  ASSERT_FALSE(decoded.has_value());
  const std::string recorded = ToHex(Sha256(R"({"service":"checkout","severity":2})"));
  const std::string actual = ToHex(Sha256(R"({"service":"checkout","severity":1})"));
  EXPECT_NE(decoded.error().message.find("change_digest"), std::string::npos);
  EXPECT_NE(decoded.error().message.find(recorded), std::string::npos) << decoded.error().message;
  EXPECT_NE(decoded.error().message.find(actual), std::string::npos) << decoded.error().message;
}

TEST(EntryTest, DecodeRejectsNonCanonicalBytes) {
  const std::string encoded = Encode(SampleEntry());
  auto spaced = DecodeEntry(ReplaceOnce(encoded, "\"actor\":", "\"actor\": "));
  ASSERT_FALSE(spaced.has_value());
  EXPECT_NE(spaced.error().message.find("canonical"), std::string::npos);
  // Upper-case hex names the same digest but is a different encoding.
  const std::string digest = ToHex(Sha256(R"({"service":"checkout","severity":2})"));
  std::string upper = digest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(DecodeEntry(ReplaceOnce(encoded, digest, upper)).has_value());
}

TEST(EntryTest, DecodeNamesTheFieldAtFault) {
  const std::string encoded = Encode(SampleEntry());
  struct Case {
    std::string text;
    std::string field;
  };
  const std::vector<Case> cases = {
      {ReplaceOnce(encoded, "\"sequence\":7", "\"sequence\":-7"), "sequence"},
      {ReplaceOnce(encoded, "\"sequence\":7", "\"sequence\":\"7\""), "sequence"},
      {ReplaceOnce(encoded, "\"actor\":\"alice\",", ""), "actor"},
      {ReplaceOnce(encoded, "\"alice\"", "7"), "actor"},
      {ReplaceOnce(encoded, "41.000123Z", "41Z"), "time"},
      {ReplaceOnce(encoded, "41.000123Z", "41.000123+00:00"), "time"},
      {ReplaceOnce(encoded, "\"subject\"", "\"subject\":\"x\",\"extra\""), "extra"},
      {ReplaceOnce(encoded, "\"change_digest\":\"", "\"change_digest\":\"zz"), "change_digest"},
  };
  for (const Case& test_case : cases) {
    auto decoded = DecodeEntry(test_case.text);
    ASSERT_FALSE(decoded.has_value()) << test_case.text;
    EXPECT_NE(decoded.error().message.find("'" + test_case.field + "'"), std::string::npos)
        << decoded.error().message;
  }
}

TEST(EntryTest, DecodeRejectsNonJsonAndNonObjects) {
  EXPECT_FALSE(DecodeEntry("not json").has_value());
  EXPECT_FALSE(DecodeEntry("[]").has_value());
  EXPECT_FALSE(DecodeEntry("").has_value());
}

}  // namespace
}  // namespace backout::ledger
