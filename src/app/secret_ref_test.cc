#include "app/secret_ref.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/temp_dir.h"

namespace backout::app {
namespace {

using backout::testing::TempDir;

// A unique string standing in for a secret, so a leak is found by searching for it.
constexpr std::string_view kCanary = "canary-93c4e8a1b7d0";

// The canary followed by a newline, as `echo` writes a secret to a file.
std::string CanaryLine() {
  std::string line(kCanary);
  line.push_back('\n');
  return line;
}

// Sets an environment variable for one test and removes it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

TEST(SecretRefTest, ParsesEnvReference) {
  auto reference = SecretRef::Parse("env:CHECKOUT_TOKEN");
  ASSERT_TRUE(reference.has_value()) << reference.error().message;
  EXPECT_EQ(reference->source(), SecretRef::Source::kEnv);
  EXPECT_EQ(reference->target(), "CHECKOUT_TOKEN");
  EXPECT_EQ(reference->ToString(), "env:CHECKOUT_TOKEN");
}

TEST(SecretRefTest, ParsesFileReferenceAgainstBase) {
  auto reference = SecretRef::Parse("file:secrets/../keys/token", "/etc/backout");
  ASSERT_TRUE(reference.has_value()) << reference.error().message;
  EXPECT_EQ(reference->source(), SecretRef::Source::kFile);
  EXPECT_EQ(reference->target(), "/etc/backout/keys/token");
  EXPECT_EQ(reference->ToString(), "file:/etc/backout/keys/token");
}

TEST(SecretRefTest, KeepsAbsoluteFilePath) {
  auto reference = SecretRef::Parse("file:/run/secrets/token", "/etc/backout");
  ASSERT_TRUE(reference.has_value()) << reference.error().message;
  EXPECT_EQ(reference->target(), "/run/secrets/token");
}

TEST(SecretRefTest, RejectsInlineValueWithoutQuotingIt) {
  auto reference = SecretRef::Parse(kCanary);
  ASSERT_FALSE(reference.has_value());
  EXPECT_EQ(reference.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(reference.error().message,
            "secrets must be references (env:NAME or file:PATH), not inline values");
}

TEST(SecretRefTest, RejectsBadVariableNames) {
  for (std::string_view text : {"env:", "env:1TOKEN", "env:API-TOKEN", "env:A B"}) {
    SCOPED_TRACE(text);
    auto reference = SecretRef::Parse(text);
    ASSERT_FALSE(reference.has_value());
    EXPECT_NE(reference.error().message.find("invalid secret reference"), std::string::npos);
  }
}

TEST(SecretRefTest, RejectsEmptyFilePath) {
  auto reference = SecretRef::Parse("file:");
  ASSERT_FALSE(reference.has_value());
  EXPECT_EQ(reference.error().message, "invalid secret reference 'file:': the file path is empty");
}

TEST(SecretRefTest, IsReferenceChecksPrefix) {
  EXPECT_TRUE(SecretRef::IsReference("env:X"));
  EXPECT_TRUE(SecretRef::IsReference("file:/x"));
  EXPECT_FALSE(SecretRef::IsReference("ENV:X"));
  EXPECT_FALSE(SecretRef::IsReference("hunter2"));
}

TEST(SecretRefTest, ResolvesEnvironmentVariable) {
  ScopedEnv env("BACKOUT_TEST_SECRET_RESOLVE", CanaryLine());
  auto value = SecretRef::Parse("env:BACKOUT_TEST_SECRET_RESOLVE")->Resolve();
  ASSERT_TRUE(value.has_value()) << value.error().message;
  EXPECT_EQ(*value, kCanary);
}

TEST(SecretRefTest, ResolvesFile) {
  TempDir dir;
  WriteFile(dir.path() / "token", CanaryLine());
  auto value = SecretRef::Parse("file:token", dir.path())->Resolve();
  ASSERT_TRUE(value.has_value()) << value.error().message;
  EXPECT_EQ(*value, kCanary);
}

TEST(SecretRefTest, TrimsOnlyOneTrailingNewline) {
  TempDir dir;
  WriteFile(dir.path() / "two", "abc\n\n");
  WriteFile(dir.path() / "crlf", "abc\r\n");
  WriteFile(dir.path() / "none", "abc");
  WriteFile(dir.path() / "pem", "-----BEGIN-----\nxyz\n-----END-----\n");

  EXPECT_EQ(SecretRef::Parse("file:two", dir.path())->Resolve().value(), "abc\n");
  EXPECT_EQ(SecretRef::Parse("file:crlf", dir.path())->Resolve().value(), "abc");
  EXPECT_EQ(SecretRef::Parse("file:none", dir.path())->Resolve().value(), "abc");
  EXPECT_EQ(SecretRef::Parse("file:pem", dir.path())->Resolve().value(),
            "-----BEGIN-----\nxyz\n-----END-----");
}

TEST(SecretRefTest, UnsetVariableNamesReference) {
  ::unsetenv("BACKOUT_TEST_SECRET_UNSET");
  auto value = SecretRef::Parse("env:BACKOUT_TEST_SECRET_UNSET")->Resolve();
  ASSERT_FALSE(value.has_value());
  EXPECT_EQ(value.error().code, core::ErrorCode::kNotFound);
  EXPECT_EQ(value.error().message,
            "secret env:BACKOUT_TEST_SECRET_UNSET: the environment variable "
            "BACKOUT_TEST_SECRET_UNSET is not set: set it in the server's environment");
}

TEST(SecretRefTest, MissingFileNamesReference) {
  TempDir dir;
  const std::string path = (dir.path() / "absent").string();
  auto value = SecretRef::Parse("file:" + path)->Resolve();
  ASSERT_FALSE(value.has_value());
  EXPECT_EQ(value.error().code, core::ErrorCode::kNotFound);
  EXPECT_EQ(value.error().message,
            "secret file:" + path + ": cannot open the file: No such file or directory");
}

TEST(SecretRefTest, RejectsFolder) {
  TempDir dir;
  auto value = SecretRef::Parse("file:" + dir.path().string())->Resolve();
  ASSERT_FALSE(value.has_value());
  EXPECT_EQ(value.error().message, "secret file:" + dir.path().string() +
                                       ": not a regular file: point the reference at the file "
                                       "that holds the secret");
}

TEST(SecretRefTest, RejectsEmptySecret) {
  TempDir dir;
  WriteFile(dir.path() / "newline-only", "\n");
  ScopedEnv env("BACKOUT_TEST_SECRET_EMPTY", "");

  auto from_file = SecretRef::Parse("file:newline-only", dir.path())->Resolve();
  ASSERT_FALSE(from_file.has_value());
  EXPECT_EQ(from_file.error().message, "secret file:" + (dir.path() / "newline-only").string() +
                                           " is empty: give it a value or correct the reference");

  auto from_env = SecretRef::Parse("env:BACKOUT_TEST_SECRET_EMPTY")->Resolve();
  ASSERT_FALSE(from_env.has_value());
  EXPECT_EQ(from_env.error().message,
            "secret env:BACKOUT_TEST_SECRET_EMPTY is empty: give it a value or correct the "
            "reference");
}

TEST(SecretRefTest, OversizedSecretErrorsOmitValue) {
  std::string large;
  while (large.size() <= SecretRef::kMaxBytes) large += kCanary;
  TempDir dir;
  WriteFile(dir.path() / "large", large);
  ScopedEnv env("BACKOUT_TEST_SECRET_LARGE", large);

  for (std::string_view text : {"file:large", "env:BACKOUT_TEST_SECRET_LARGE"}) {
    SCOPED_TRACE(text);
    auto value = SecretRef::Parse(text, dir.path())->Resolve();
    ASSERT_FALSE(value.has_value());
    EXPECT_NE(value.error().message.find("is larger than 1048576 bytes"), std::string::npos)
        << value.error().message;
    EXPECT_EQ(value.error().message.find(kCanary), std::string::npos);
  }
}

TEST(SecretRefTest, AcceptsSecretAtSizeLimit) {
  TempDir dir;
  WriteFile(dir.path() / "limit", std::string(SecretRef::kMaxBytes, 'x'));
  auto value = SecretRef::Parse("file:limit", dir.path())->Resolve();
  ASSERT_TRUE(value.has_value()) << value.error().message;
  EXPECT_EQ(value->size(), SecretRef::kMaxBytes);
}

}  // namespace
}  // namespace backout::app
