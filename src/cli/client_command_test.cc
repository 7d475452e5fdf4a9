#include "cli/client_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

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

}  // namespace
}  // namespace backout::cli
