// Opening stores, URLs and helpers that do not depend on the backend.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "store/store.h"
#include "store/store_internal.h"
#include "store/system_clock.h"
#include "support/temp_dir.h"

namespace backout::store {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class OpenStoreTest : public ::testing::Test {
 protected:
  StoreOptions Options() {
    StoreOptions options;
    options.clock = &clock_;
    return options;
  }

  std::string SqliteUrl() const { return "sqlite:" + (temp_.path() / "backout.db").string(); }

  testing::TempDir temp_;
  core::ManualClock clock_{core::Time()};
};

TEST_F(OpenStoreTest, RejectsUnknownScheme) {
  auto store = OpenStore("mysql://root:hunter2@127.0.0.1/backout", Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_THAT(store.error().message, HasSubstr("sqlite:PATH"));
  EXPECT_THAT(store.error().message, Not(HasSubstr("hunter2")));
}

TEST_F(OpenStoreTest, RequiresClock) {
  auto store = OpenStore(SqliteUrl(), StoreOptions{});
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(OpenStoreTest, RejectsInvalidSynchronousMode) {
  StoreOptions options = Options();
  options.sqlite_synchronous = "SOMETIMES";
  auto store = OpenStore(SqliteUrl(), options);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_THAT(store.error().message, HasSubstr("SOMETIMES"));
}

TEST_F(OpenStoreTest, AcceptsLowerCaseSynchronousMode) {
  StoreOptions options = Options();
  options.sqlite_synchronous = "normal";
  auto store = OpenStore(SqliteUrl(), options);
  EXPECT_TRUE(store.has_value()) << store.error().message;
}

TEST_F(OpenStoreTest, RejectsInMemorySqlite) {
  auto store = OpenStore("sqlite::memory:", Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(OpenStoreTest, MissingSqliteFolderIsReported) {
  auto store = OpenStore("sqlite:" + (temp_.path() / "missing" / "backout.db").string(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_THAT(store.error().message, HasSubstr("missing"));
}

TEST_F(OpenStoreTest, UnreachableServerIsUnavailable) {
  // Port 1 on the loopback address: nothing listens there, so the connection is refused at once.
  auto store = OpenStore("postgresql://backout:hunter2@127.0.0.1:1/backout", Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kUnavailable);
  EXPECT_THAT(store.error().message, HasSubstr("127.0.0.1"));
  EXPECT_THAT(store.error().message, Not(HasSubstr("hunter2")));
}

TEST_F(OpenStoreTest, NestedWriteIsRejected) {
  auto store = OpenStore(SqliteUrl(), Options());
  ASSERT_TRUE(store.has_value()) << store.error().message;

  auto outer = (*store)->Write([&](Transaction&) -> core::Result<void> {
    return (*store)->Write([](Transaction&) -> core::Result<void> { return {}; });
  });

  ASSERT_FALSE(outer.has_value());
  EXPECT_EQ(outer.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST(RedactUrlTest, HidesPasswordInAuthority) {
  EXPECT_EQ(RedactUrl("postgresql://backout:s3cret@db.internal:5432/backout"),
            "postgresql://backout:***@db.internal:5432/backout");
}

TEST(RedactUrlTest, HidesPasswordParameter) {
  EXPECT_EQ(RedactUrl("postgresql://db.internal/backout?user=backout&password=s3cret&x=1"),
            "postgresql://db.internal/backout?user=backout&password=***&x=1");
}

TEST(RedactUrlTest, KeepsUrlWithoutPassword) {
  EXPECT_EQ(RedactUrl("postgresql://backout@127.0.0.1:5432/backout"),
            "postgresql://backout@127.0.0.1:5432/backout");
}

TEST(HexTest, RoundTrips) {
  const std::string bytes("\x00\x7f\x80\xff", 4);
  EXPECT_EQ(HexEncode(bytes), "007f80ff");
  auto decoded = HexDecode("007F80ff");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, bytes);
}

TEST(HexTest, RejectsInvalidDigit) {
  auto decoded = HexDecode("0g");
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, core::ErrorCode::kCorruption);
}

TEST(SystemClockTest, ReadsWallClock) {
  SystemClock clock;
  const auto now = std::chrono::system_clock::now();
  const core::Time read = clock.Now();
  EXPECT_LT(std::chrono::abs(read - std::chrono::time_point_cast<core::Duration>(now)),
            std::chrono::seconds(5));
}

TEST(JobStateTest, NamesRoundTrip) {
  for (JobState state :
       {JobState::kQueued, JobState::kLeased, JobState::kSucceeded, JobState::kFailed}) {
    auto parsed = ParseJobState(JobStateName(state));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, state);
  }
}

TEST(DumpJsonTest, MatchesNlohmannDump) {
  const std::vector<nlohmann::json> values = {
      nullptr,
      true,
      false,
      0,
      -9223372036854775807 - 1,
      18446744073709551615u,
      0.5,
      -1e300,
      std::nan(""),
      "",
      "plain ascii",
      "quote \" backslash \\ slash /",
      "controls \b\f\n\r\t \x01 \x1f and delete \x7f",
      "utf-8 \u00e9 \ue000 \U0001f600",
      nlohmann::json::array(),
      nlohmann::json::object(),
      nlohmann::json::binary({1, 2, 3}),
      {{"b", 1}, {"a", {1, "two", nullptr, {{"\n", false}}}}, {"\u00e9", 2.25}},
  };
  for (const nlohmann::json& value : values) {
    auto dumped = DumpJson(value, "test value");
    ASSERT_TRUE(dumped.has_value()) << value.dump() << ": " << dumped.error().message;
    EXPECT_EQ(*dumped, value.dump());
  }
}

TEST(DumpJsonTest, RejectsInvalidUtf8) {
  for (const nlohmann::json& value :
       {nlohmann::json("bad \xff byte"), nlohmann::json{{"key", {"ok", "bad \xc3"}}},
        nlohmann::json{{"bad \xe2\x82 key", 1}}}) {
    auto dumped = DumpJson(value, "body of signal/x");
    ASSERT_FALSE(dumped.has_value());
    EXPECT_EQ(dumped.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_THAT(dumped.error().message, HasSubstr("body of signal/x"));
  }
}

TEST(SerializeBodyTest, MatchesDumpJson) {
  const nlohmann::json body = {{"name", "Zoë"}, {"score", 0.25}, {"tags", {"a", "b"}}};
  auto serialized = SerializeBody(body, "body of signal/x");
  ASSERT_TRUE(serialized.has_value()) << serialized.error().message;
  auto dumped = DumpJson(body, "body of signal/x");
  ASSERT_TRUE(dumped.has_value());
  EXPECT_EQ(serialized->text(), *dumped);
}

TEST(SerializeBodyTest, RejectsInvalidUtf8) {
  auto serialized = SerializeBody({{"label", "bad \xff byte"}}, "body of signal/am:1");
  ASSERT_FALSE(serialized.has_value());
  EXPECT_EQ(serialized.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_THAT(serialized.error().message, HasSubstr("body of signal/am:1"));
}

}  // namespace
}  // namespace backout::store
