#include "store/postgres_library.h"

#include <utility>

namespace backout::store {

core::Result<Libpq> OpenLibpq(std::string soname) {
  core::Result<core::SharedLibrary> opened =
      core::SharedLibrary::Open(std::move(soname), "libpq5", "PostgreSQL stores");
  if (!opened) return std::unexpected(opened.error());
  core::SharedLibrary& library = *opened;
  Libpq functions;
  BACKOUT_LIBPQ_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
  if (auto resolved = library.CheckResolved(); !resolved) return std::unexpected(resolved.error());
  return functions;
}

const core::Result<Libpq>& LoadLibpq() {
  // A function-local static is initialized once even when threads race to the first call. libpq
  // needs no library-wide initialization.
  static const core::Result<Libpq> loaded = OpenLibpq(BACKOUT_LIBPQ_SONAME);
  return loaded;
}

}  // namespace backout::store
