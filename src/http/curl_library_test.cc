#include "http/curl_library.h"

#include <gtest/gtest.h>

namespace backout::http::internal {
namespace {

TEST(CurlLibraryTest, LoadResolvesEveryFunction) {
  const Result<Libcurl>& libcurl = LoadLibcurl();
  ASSERT_TRUE(libcurl.has_value()) << libcurl.error().message;
#define BACKOUT_EXPECT_RESOLVED(name) EXPECT_NE(libcurl->name, nullptr) << #name;
  BACKOUT_CURL_FUNCTIONS(BACKOUT_EXPECT_RESOLVED)
#undef BACKOUT_EXPECT_RESOLVED
  EXPECT_STREQ(libcurl->curl_easy_strerror(CURLE_OK), "No error");
}

TEST(CurlLibraryTest, LoadReturnsSameTable) {
  const Result<Libcurl>& first = LoadLibcurl();
  const Result<Libcurl>& second = LoadLibcurl();
  EXPECT_EQ(&first, &second);
}

TEST(CurlLibraryTest, MissingLibraryNamesPackage) {
  Result<Libcurl> libcurl = OpenLibcurl("libbackout-absent-curl.so.4");
  ASSERT_FALSE(libcurl.has_value());
  EXPECT_EQ(libcurl.error().kind, ErrorKind::kUnavailable);
  const std::string& message = libcurl.error().message;
  EXPECT_NE(message.find("libbackout-absent-curl.so.4"), std::string::npos) << message;
  EXPECT_NE(message.find("libcurl4 package"), std::string::npos) << message;
}

TEST(CurlLibraryTest, LibraryWithoutFunctionsNamesFirst) {
  // libm is a real library without libcurl's functions, so resolving stops at the first name.
  Result<Libcurl> libcurl = OpenLibcurl("libm.so.6");
  ASSERT_FALSE(libcurl.has_value());
  EXPECT_EQ(libcurl.error().kind, ErrorKind::kUnavailable);
  const std::string& message = libcurl.error().message;
  EXPECT_NE(message.find("libm.so.6 has no function curl_global_init"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace backout::http::internal
