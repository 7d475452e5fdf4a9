#include "http/curl_library.h"

#include <dlfcn.h>

#include <type_traits>

#include <fmt/format.h>

namespace backout::http::internal {
namespace {

// The Debian package that installs libcurl.so.4 built with OpenSSL, the one
// scripts/install-deps.sh builds against.
constexpr const char* kPackage = "libcurl4";

}  // namespace

Result<Libcurl> OpenLibcurl(const std::string& soname) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return std::unexpected(
        Error{ErrorKind::kUnavailable,
              fmt::format("cannot load {} for outbound HTTP ({}); install Debian's {} package "
                          "(scripts/install-deps.sh does)",
                          soname, reason != nullptr ? reason : "no reason given", kPackage)});
  }

  Libcurl libcurl;
  std::string missing;
  auto resolve = [handle, &missing](const char* name, auto& function) {
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(handle, name));
    if (function == nullptr && missing.empty()) missing = name;
  };
#define BACKOUT_RESOLVE_CURL_FUNCTION(name) resolve(#name, libcurl.name);
  BACKOUT_CURL_FUNCTIONS(BACKOUT_RESOLVE_CURL_FUNCTION)
#undef BACKOUT_RESOLVE_CURL_FUNCTION
  if (!missing.empty()) {
    return std::unexpected(
        Error{ErrorKind::kUnavailable,
              fmt::format("{} has no function {}, so it is older than Backout needs; upgrade "
                          "Debian's {} package",
                          soname, missing, kPackage)});
  }
  return libcurl;
}

const Result<Libcurl>& LoadLibcurl() {
  // A function-local static is initialized once even when threads race to the first call, and
  // curl_global_init must run once, before any other libcurl call.
  static const Result<Libcurl> loaded = []() -> Result<Libcurl> {
    Result<Libcurl> libcurl = OpenLibcurl(BACKOUT_LIBCURL_SONAME);
    if (!libcurl) return libcurl;
    if (CURLcode code = libcurl->curl_global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
      return std::unexpected(Error{
          ErrorKind::kInternal,
          fmt::format("libcurl failed to initialize: {}", libcurl->curl_easy_strerror(code))});
    }
    return libcurl;
  }();
  return loaded;
}

}  // namespace backout::http::internal
