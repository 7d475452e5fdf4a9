#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "store/sql_session.h"

namespace backout::store {

// One step of the schema. Both dialects create the same logical tables; each backend runs its own
// script inside the transaction that checks the version, and records `version` in schema_version.
struct Migration {
  int version = 0;
  std::string_view description;
  std::string_view sqlite;
  std::string_view postgresql;

  std::string_view Script(Dialect dialect) const {
    return dialect == Dialect::kSqlite ? sqlite : postgresql;
  }
};

// Every migration, oldest first, numbered from 1 without gaps.
std::span<const Migration> Migrations();

// The schema version this build writes.
int LatestSchemaVersion();

// Returns the migrations a database at `current` version needs. Rejects a database newer than this
// build, naming both versions, and an older one when `migrate` is false.
core::Result<std::vector<Migration>> PendingMigrations(int current, bool migrate,
                                                       std::string_view database);

}  // namespace backout::store
