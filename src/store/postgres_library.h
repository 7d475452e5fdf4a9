#pragma once

#include <libpq-fe.h>

#include <string>

#include "core/error.h"
#include "core/shared_library.h"

// libpq, opened with dlopen on first use. A server on SQLite never calls it, and linking libpq
// would map it and the libraries it needs (Kerberos, LDAP, SASL and more) at start.
namespace backout::store {

// Every libpq function the store calls.
#define BACKOUT_LIBPQ_FUNCTIONS(X) \
  X(PQconnectdb)                   \
  X(PQstatus)                      \
  X(PQerrorMessage)                \
  X(PQfinish)                      \
  X(PQsetNoticeProcessor)          \
  X(PQtransactionStatus)           \
  X(PQexec)                        \
  X(PQexecParams)                  \
  X(PQresultStatus)                \
  X(PQresultErrorField)            \
  X(PQresultErrorMessage)          \
  X(PQntuples)                     \
  X(PQnfields)                     \
  X(PQgetisnull)                   \
  X(PQgetvalue)                    \
  X(PQgetlength)                   \
  X(PQcmdTuples)                   \
  X(PQcmdStatus)                   \
  X(PQclear)

// The functions of a loaded libpq, called as `libpq.PQexec(...)`.
struct Libpq {
  BACKOUT_LIBPQ_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION)
};

// Loads libpq on the first call and returns the same result on later calls. Thread-safe. The
// library stays loaded for the life of the process. The error names the soname and the Debian
// package to install.
const core::Result<Libpq>& LoadLibpq();

// Opens the library `soname` and resolves the functions of Libpq, without keeping the result.
// LoadLibpq calls it with the soname of the libpq found at build time.
core::Result<Libpq> OpenLibpq(std::string soname);

}  // namespace backout::store
