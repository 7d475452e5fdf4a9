#pragma once

#include <curl/curl.h>

#include <string>

#include "http/error.h"

// libcurl, opened with dlopen on first use. An idle server makes no outbound HTTP calls, and
// linking libcurl would map it and the libraries it needs (librtmp with GnuTLS, libssh2, Kerberos,
// LDAP and more) at start. The `http` module may not depend on `core`, so it opens libcurl itself
// instead of with core::SharedLibrary.
//
// In C++, curl.h (7.88) defines curl_easy_setopt, curl_easy_getinfo and two other functions as
// macros that expand to the same call, so `libcurl.curl_easy_setopt(...)` reaches the table.
namespace backout::http::internal {

// Every libcurl function the module calls.
#define BACKOUT_CURL_FUNCTIONS(X) \
  X(curl_global_init)             \
  X(curl_free)                    \
  X(curl_getdate)                 \
  X(curl_easy_init)               \
  X(curl_easy_cleanup)            \
  X(curl_easy_reset)              \
  X(curl_easy_setopt)             \
  X(curl_easy_perform)            \
  X(curl_easy_getinfo)            \
  X(curl_easy_strerror)           \
  X(curl_slist_append)            \
  X(curl_slist_free_all)          \
  X(curl_url)                     \
  X(curl_url_cleanup)             \
  X(curl_url_set)                 \
  X(curl_url_get)                 \
  X(curl_url_strerror)

#define BACKOUT_CURL_FUNCTION(name) decltype(&::name) name = nullptr;

// The functions of a loaded libcurl, called as `libcurl.curl_easy_init()`.
struct Libcurl {
  BACKOUT_CURL_FUNCTIONS(BACKOUT_CURL_FUNCTION)
};

// Loads libcurl and runs curl_global_init on the first call, and returns the same result on later
// calls. Thread-safe. The library stays loaded for the life of the process. The error names the
// soname and the Debian package to install.
const Result<Libcurl>& LoadLibcurl();

// Opens the library `soname` and resolves the functions of Libcurl, without curl_global_init and
// without keeping the result. LoadLibcurl calls it with the soname of the libcurl found at build
// time.
Result<Libcurl> OpenLibcurl(const std::string& soname);

}  // namespace backout::http::internal
