#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

// Shared libraries opened with dlopen on first use. The server needs libcurl, libpq, libgit2,
// libarchive and cmark-gfm only for some configurations and commands, and each of them maps a
// tree of further libraries at start when linked. A file that uses such a library includes its
// headers for the types and signatures, lists the functions it calls in an X-macro, and calls
// them through a table that SharedLibrary fills:
//
//   #define BACKOUT_ZLIB_FUNCTIONS(X) X(zlibVersion) X(crc32)
//   struct Zlib { BACKOUT_ZLIB_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION) };
//   ...
//   auto opened = core::SharedLibrary::Open("libz.so.1", "zlib1g", "compression");
//   if (!opened) return std::unexpected(opened.error());
//   core::SharedLibrary& library = *opened;
//   Zlib functions;
//   BACKOUT_ZLIB_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
//   auto resolved = library.CheckResolved();
//   if (!resolved) return std::unexpected(resolved.error());
//
// A loaded library stays loaded for the life of the process.
namespace backout::core {

class SharedLibrary {
 public:
  // Opens the library whose file name is `soname` (the name the dynamic loader looks up, such as
  // "libpq.so.5"). `package` is the Debian package that installs it; the error names it as the
  // fix, and `purpose` (what needs the library) as the reason.
  static Result<SharedLibrary> Open(std::string soname, std::string package, std::string purpose);

  // Sets `function` to the library's function `name`, or to nullptr and records the name when
  // the library has no such function.
  template <typename Function>
  void Resolve(const char* name, Function& function) {
    function = reinterpret_cast<Function>(Find(name));
  }

  // Returns an error naming the first function Resolve did not find, so an older library gives
  // one clear message instead of a crash at the first call.
  Result<void> CheckResolved() const;

 private:
  SharedLibrary(void* handle, std::string soname, std::string package)
      : handle_(handle), soname_(std::move(soname)), package_(std::move(package)) {}
  void* Find(const char* name);

  void* handle_;
  std::string soname_;
  std::string package_;
  std::string missing_;  // the first name Resolve did not find
};

}  // namespace backout::core

// A member of a function table: `decltype(&::name) name`, so a call reads `table.name(...)`.
#define BACKOUT_LIBRARY_FUNCTION(name) decltype(&::name) name = nullptr;

// Resolves `functions.name` through the SharedLibrary named `library` in the enclosing scope, for
// use as the X of a function list.
#define BACKOUT_RESOLVE_FUNCTION(name) library.Resolve(#name, functions.name);
