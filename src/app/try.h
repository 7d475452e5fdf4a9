#pragma once

#include <expected>
#include <utility>

// Early returns for core::Result, so a use case reads as its steps. Both macros return the
// error unchanged from the enclosing function, which must itself return a core::Result.

#define BACKOUT_CONCAT_INNER(a, b) a##b
#define BACKOUT_CONCAT(a, b) BACKOUT_CONCAT_INNER(a, b)

// BACKOUT_TRY(auto incident, LoadIncident(tx, id));
#define BACKOUT_TRY(declaration, expression)                                          \
  auto BACKOUT_CONCAT(try_result_, __LINE__) = (expression);                          \
  if (!BACKOUT_CONCAT(try_result_, __LINE__)) {                                       \
    return std::unexpected(std::move(BACKOUT_CONCAT(try_result_, __LINE__)).error()); \
  }                                                                                   \
  declaration = *std::move(BACKOUT_CONCAT(try_result_, __LINE__))

// BACKOUT_CHECK(tx.Put(object));
#define BACKOUT_CHECK(expression)                                           \
  do {                                                                      \
    auto try_status = (expression);                                         \
    if (!try_status) return std::unexpected(std::move(try_status).error()); \
  } while (false)
