#include "cli/client_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "cli/cli.h"
#include "support/temp_dir.h"

namespace backout::cli {
namespace {

std::string WriteTemp(const testing::TempDir& dir, const std::string& name,
                      const std::string& content) {
  const std::filesystem::path path = dir.path() / name;
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

TEST(ReadTextFileTest, ReturnsUtf8Text) {
  testing::TempDir dir;
  const std::string path = WriteTemp(dir, "review.md", "# Review\ncaf\xc3\xa9\n");
  auto text = ReadTextFile(path);
  ASSERT_TRUE(text.has_value()) << text.error().message;
  EXPECT_EQ(*text, "# Review\ncaf\xc3\xa9\n");
}

TEST(ReadTextFileTest, NamesFileThatIsNotUtf8) {
  testing::TempDir dir;
  const std::string path = WriteTemp(dir, "binary.md", std::string("ok\x89PNG\0\xff", 8));
  auto text = ReadTextFile(path);
  ASSERT_FALSE(text.has_value());
  EXPECT_EQ(text.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(text.error().message,
            path + " is not UTF-8 text (invalid byte 0x89 at offset 2); pass a UTF-8 text file");
}

TEST(ReadTextFileTest, RefusesFileOverLimitWithoutReadingItAll) {
  auto endless = ReadTextFile("/dev/zero");
  ASSERT_FALSE(endless.has_value());
  EXPECT_NE(endless.error().message.find("/dev/zero is larger than the limit of 1048576 bytes"),
            std::string::npos)
      << endless.error().message;

  testing::TempDir dir;
  auto at_limit = ReadTextFile(WriteTemp(dir, "long.md", std::string(size_t{1} << 20, 'x')));
  ASSERT_TRUE(at_limit.has_value()) << at_limit.error().message;
  EXPECT_EQ(at_limit->size(), size_t{1} << 20);
}

TEST(ReadTextFileTest, NamesMissingFile) {
  testing::TempDir dir;
  auto text = ReadTextFile((dir.path() / "absent.md").string());
  ASSERT_FALSE(text.has_value());
  EXPECT_NE(text.error().message.find("absent.md"), std::string::npos) << text.error().message;
}

TEST(CheckOptionTextTest, NamesOptionWithInvalidValue) {
  CLI::App app;
  std::string title;
  CLI::Option* option = app.add_option("--title", title);
  std::vector<std::string> args = {"--title", "fix \xff"};
  std::reverse(args.begin(), args.end());
  app.parse(args);
  auto checked = CheckOptionText(*option);
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(checked.error().message.starts_with("--title: the value is not UTF-8 text"))
      << checked.error().message;
}

TEST(CheckErrorStatusTest, SeparatesUsageFromCouldNotCheck) {
  EXPECT_EQ(CheckErrorStatus({core::ErrorCode::kInvalidArgument, ""}), kExitUsage);
  EXPECT_EQ(CheckErrorStatus({core::ErrorCode::kNotFound, ""}), kExitUsage);
  for (core::ErrorCode code :
       {core::ErrorCode::kUnavailable, core::ErrorCode::kTimeout, core::ErrorCode::kUnauthenticated,
        core::ErrorCode::kPermissionDenied, core::ErrorCode::kInternal}) {
    EXPECT_EQ(CheckErrorStatus({code, ""}), kExitCouldNotCheck) << core::ErrorCodeName(code);
  }
}

TEST(UsageErrorStatusTest, OnlyInvalidArgumentIsUsage) {
  EXPECT_EQ(UsageErrorStatus({core::ErrorCode::kInvalidArgument, ""}), kExitUsage);
  for (core::ErrorCode code : {core::ErrorCode::kNotFound, core::ErrorCode::kFailedPrecondition,
                               core::ErrorCode::kUnavailable, core::ErrorCode::kPermissionDenied,
                               core::ErrorCode::kInternal}) {
    EXPECT_EQ(UsageErrorStatus({code, ""}), kExitFailed) << core::ErrorCodeName(code);
  }
}

// Parses `args` (without the program name) with `app`.
void Parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());
  app.parse(args);
}

TEST(SetClientCallbackTest, FlagNotUtf8IsUsageError) {
  CLI::App app;
  CLI::App* command = app.add_subcommand("add");
  std::string title;
  command->add_option("--title", title);
  ClientFlags flags;
  int exit_status = -1;
  bool body_ran = false;
  SetClientCallback(*command, flags, exit_status, [&body_ran](ClientContext&) -> core::Result<int> {
    body_ran = true;
    return kExitOk;
  });
  Parse(app, {"add", "--title", "fix \xff", "--url", "http://127.0.0.1:9"});
  EXPECT_EQ(exit_status, kExitUsage);
  EXPECT_FALSE(body_ran);
}

TEST(NonEmptyValidatorTest, NamesOptionWithEmptyValue) {
  CLI::App app;
  std::string service;
  app.add_option("--service", service)->check(NonEmptyValidator());
  try {
    Parse(app, {"--service", ""});
    FAIL() << "an empty --service was accepted";
  } catch (const CLI::ValidationError& error) {
    EXPECT_TRUE(std::string(error.what()).starts_with("--service: the value is empty"))
        << error.what();
    EXPECT_EQ(app.exit(error), static_cast<int>(CLI::ExitCodes::ValidationError));
  }

  CLI::App accepting;
  accepting.add_option("--service", service)->check(NonEmptyValidator());
  Parse(accepting, {"--service", "checkout"});
  EXPECT_EQ(service, "checkout");
}

TEST(LimitValidatorTest, RejectsNegativeLimit) {
  for (const std::string text : {"-1", " -5", "-0"}) {
    CLI::App app;
    size_t limit = 0;
    app.add_option("--limit", limit)->check(LimitValidator());
    try {
      Parse(app, {"--limit", text});
      FAIL() << "--limit " << text << " was accepted";
    } catch (const CLI::ValidationError& error) {
      EXPECT_EQ(
          std::string(error.what()),
          fmt::format("--limit: {} is negative; give 0 to show all or a positive count", text));
      EXPECT_EQ(app.exit(error), static_cast<int>(CLI::ExitCodes::ValidationError));
    }
  }

  CLI::App too_large;
  size_t large_limit = 0;
  too_large.add_option("--limit", large_limit)->check(LimitValidator());
  try {
    Parse(too_large, {"--limit", "99999999999999999999999"});
    FAIL() << "--limit 99999999999999999999999 was accepted";
  } catch (const CLI::ValidationError& error) {
    EXPECT_EQ(std::string(error.what()),
              "--limit: 99999999999999999999999 is too large; give 0 to show all or a count up "
              "to 18446744073709551615");
  }

  CLI::App accepting;
  size_t limit = 0;
  accepting.add_option("--limit", limit)->check(LimitValidator());
  Parse(accepting, {"--limit", "25"});
  EXPECT_EQ(limit, 25u);
}

TEST(WholeNumberValidatorTest, NamesValueNotWhole) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "--entry: abc is not a whole number; give a number from 0, such as 12"},
      {"-1", "--entry: -1 is not a whole number; give a number from 0, such as 12"},
      {"1.5", "--entry: 1.5 is not a whole number; give a number from 0, such as 12"},
      {"18446744073709551616",
       "--entry: 18446744073709551616 is too large; give a whole number from 0 to "
       "18446744073709551615"},
  };
  for (const auto& [text, message] : cases) {
    CLI::App app;
    uint64_t entry = 0;
    app.add_option("--entry", entry)->check(WholeNumberValidator());
    try {
      Parse(app, {"--entry", text});
      FAIL() << "--entry " << text << " was accepted";
    } catch (const CLI::ValidationError& error) {
      EXPECT_EQ(std::string(error.what()), message);
    }
  }

  CLI::App accepting;
  uint64_t entry = 7;
  accepting.add_option("--entry", entry)->check(WholeNumberValidator());
  Parse(accepting, {"--entry", "0"});
  EXPECT_EQ(entry, 0u);
}

TEST(NonEmptyValidatorTest, EndsWithGivenFix) {
  CLI::App app;
  std::string owner;
  app.add_option("--owner", owner)->check(NonEmptyValidator("give a user name"));
  try {
    Parse(app, {"--owner", ""});
    FAIL() << "an empty --owner was accepted";
  } catch (const CLI::ValidationError& error) {
    EXPECT_EQ(std::string(error.what()), "--owner: the value is empty; give a user name");
  }
}

TEST(CheckPeriodOrderTest, RejectsEmptyPeriodNamingBothValues) {
  try {
    CheckPeriodOrder("2026-12-05T00:00:00Z", "2026-12-01T00:00:00Z");
    FAIL() << "a reversed period was accepted";
  } catch (const CLI::ValidationError& error) {
    EXPECT_TRUE(std::string(error.what())
                    .starts_with("--from 2026-12-05T00:00:00Z is not before --to "
                                 "2026-12-01T00:00:00Z"))
        << error.what();
  }
  EXPECT_THROW(CheckPeriodOrder("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"),
               CLI::ValidationError);
  EXPECT_NO_THROW(CheckPeriodOrder("2026-12-01T00:00:00Z", "2026-12-05T00:00:00Z"));
  EXPECT_NO_THROW(CheckPeriodOrder("2026-12-05T00:00:00Z", ""));
  EXPECT_NO_THROW(CheckPeriodOrder("", "2026-12-01T00:00:00Z"));
}

TEST(ReadFileUpToTest, RejectsFileOverLimitNamingSizes) {
  testing::TempDir dir;
  const std::string path = WriteTemp(dir, "shot.png", std::string(101, 'x'));
  auto over = ReadFileUpTo(path, 100);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(over.error().message,
            path + " has 101 bytes, over the limit of 100 bytes; use a smaller file");

  auto at_limit = ReadFileUpTo(WriteTemp(dir, "fits.png", std::string(100, 'y')), 100);
  ASSERT_TRUE(at_limit.has_value()) << at_limit.error().message;
  EXPECT_EQ(*at_limit, std::string(100, 'y'));
}

// Files under /proc report a size of 0 but have content, like a file that grows after the size
// check, so the bounded read must stop them.
TEST(ReadFileUpToTest, StopsReadingPastLimit) {
  auto grown = ReadFileUpTo("/proc/self/status", 16);
  ASSERT_FALSE(grown.has_value());
  EXPECT_NE(grown.error().message.find("/proc/self/status grew to over 16 bytes"),
            std::string::npos)
      << grown.error().message;

  auto device = ReadFileUpTo("/dev/zero", 16);
  ASSERT_FALSE(device.has_value());
  EXPECT_NE(device.error().message.find("/dev/zero is not a regular file"), std::string::npos)
      << device.error().message;
}

TEST(ReadWholeFileTest, ReadsRegularFile) {
  testing::TempDir dir;
  const std::string content = std::string(70 * 1024, 'a') + "end";
  auto read = ReadWholeFile(WriteTemp(dir, "bundle.tar.gz", content));
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(*read, content);
}

TEST(ReadWholeFileTest, RejectsDevice) {
  auto device = ReadWholeFile("/dev/zero");
  ASSERT_FALSE(device.has_value());
  EXPECT_EQ(device.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(device.error().message.find("/dev/zero is not a regular file"), std::string::npos)
      << device.error().message;
}

// The list commands print items in the server's order: numbered ids by number, which for
// changes, incidents, discovered rollbacks and deliveries is the order they were recorded.
TEST(ListHelpTest, StatesServerOrder) {
  CLI::App app;
  int exit_status = 0;
  AddCommands(app, exit_status);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"incident", "in the order recorded"},
      {"change", "in the order recorded"},
      {"discovered", "in the order recorded"},
      {"notification", "in the order recorded"},
      {"user", "by name"},
      {"action", "by due date and then by id"},
  };
  for (const auto& [group, order] : cases) {
    SCOPED_TRACE(group);
    const CLI::App* list = app.get_subcommand(group)->get_subcommand("list");
    EXPECT_NE(list->get_description().find(order), std::string::npos) << list->get_description();
    EXPECT_EQ(list->get_description().find("newest"), std::string::npos) << list->get_description();
    EXPECT_EQ(list->get_description().find("oldest"), std::string::npos) << list->get_description();
  }
}

}  // namespace
}  // namespace backout::cli
