#include "core/shared_library.h"

#include <dlfcn.h>

namespace backout::core {

Result<SharedLibrary> SharedLibrary::Open(std::string soname, std::string package,
                                          std::string purpose) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return MakeError(
        ErrorCode::kUnavailable,
        "cannot load {} for {} ({}); install Debian's {} package (scripts/install-deps.sh does)",
        soname, purpose, reason != nullptr ? reason : "no reason given", package);
  }
  return SharedLibrary(handle, std::move(soname), std::move(package));
}

void* SharedLibrary::Find(const char* name) {
  void* symbol = dlsym(handle_, name);
  if (symbol == nullptr && missing_.empty()) missing_ = name;
  return symbol;
}

Result<void> SharedLibrary::CheckResolved() const {
  if (missing_.empty()) return {};
  return MakeError(ErrorCode::kUnavailable,
                   "{} has no function {}, so it is older than Backout needs; upgrade Debian's {} "
                   "package",
                   soname_, missing_, package_);
}

}  // namespace backout::core
