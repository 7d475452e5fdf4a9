#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.h"

namespace backout::store {

// The SQL dialects the store speaks. Statements are written once with PostgreSQL's `$1`
// placeholders; the SQLite session rewrites them to SQLite's equivalent `?1`.
enum class Dialect { kSqlite, kPostgresql };

// A bound parameter: NULL, an integer or text. Text is borrowed and must outlive the call.
using SqlValue = std::variant<std::monostate, int64_t, std::string_view>;

// One result row, every column as text (NULL as an empty optional), as both backends report it.
using SqlRow = std::vector<std::optional<std::string>>;

struct SqlResult {
  std::vector<SqlRow> rows;
  int64_t affected_rows = 0;  // rows changed by INSERT, UPDATE or DELETE
};

// A connection inside an open transaction. Used by one thread at a time.
class SqlSession {
 public:
  virtual ~SqlSession() = default;

  virtual Dialect dialect() const = 0;

  // Runs one statement with `$N` placeholders bound to `params[N - 1]`.
  virtual core::Result<SqlResult> Execute(std::string_view sql,
                                          std::span<const SqlValue> params) = 0;

  core::Result<SqlResult> Execute(std::string_view sql, std::initializer_list<SqlValue> params) {
    return Execute(sql, std::span<const SqlValue>(params.begin(), params.size()));
  }
  core::Result<SqlResult> Execute(std::string_view sql) {
    return Execute(sql, std::span<const SqlValue>());
  }
};

// Column readers that turn a malformed stored value into a kCorruption error naming the column.
core::Result<int64_t> ColumnInt(const SqlRow& row, size_t column, std::string_view name);
core::Result<std::string> ColumnText(const SqlRow& row, size_t column, std::string_view name);

}  // namespace backout::store
