#include "core/shared_library.h"

#include <gtest/gtest.h>

namespace backout::core {
namespace {

TEST(SharedLibraryTest, ResolvesFunction) {
  auto library = SharedLibrary::Open("libm.so.6", "libc6", "the test");
  ASSERT_TRUE(library.has_value()) << library.error().message;
  double (*cosine)(double) = nullptr;
  library->Resolve("cos", cosine);
  ASSERT_NE(cosine, nullptr);
  EXPECT_EQ(cosine(0.0), 1.0);
  EXPECT_TRUE(library->CheckResolved().has_value());
}

TEST(SharedLibraryTest, MissingFunctionNamed) {
  auto library = SharedLibrary::Open("libm.so.6", "libc6", "the test");
  ASSERT_TRUE(library.has_value()) << library.error().message;
  void (*absent)() = nullptr;
  library->Resolve("backout_no_such_function", absent);
  EXPECT_EQ(absent, nullptr);
  double (*cosine)(double) = nullptr;
  library->Resolve("cos", cosine);
  auto checked = library->CheckResolved();
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message.find("backout_no_such_function"), std::string::npos);
  EXPECT_NE(checked.error().message.find("libc6"), std::string::npos);
}

TEST(SharedLibraryTest, MissingLibraryNamesPackage) {
  auto library = SharedLibrary::Open("libbackout-absent.so.9", "backout-absent", "drawing charts");
  ASSERT_FALSE(library.has_value());
  EXPECT_EQ(library.error().code, ErrorCode::kUnavailable);
  const std::string& message = library.error().message;
  EXPECT_NE(message.find("libbackout-absent.so.9"), std::string::npos);
  EXPECT_NE(message.find("backout-absent package"), std::string::npos);
  EXPECT_NE(message.find("drawing charts"), std::string::npos);
}

}  // namespace
}  // namespace backout::core
