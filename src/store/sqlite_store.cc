#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "store/migrations.h"
#include "store/store_internal.h"

namespace backout::store {
namespace {

using core::ErrorCode;
using core::MakeError;

// How long a connection waits for another connection's lock (another process's writer, or a
// checkpoint of the WAL) before it reports the database as busy.
constexpr int kBusyTimeoutMs = 10'000;

constexpr std::array<std::string_view, 4> kSynchronousModes = {"OFF", "NORMAL", "FULL", "EXTRA"};

ErrorCode CodeForSqlite(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ErrorCode::kConflict;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return ErrorCode::kCorruption;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return ErrorCode::kFailedPrecondition;
    default:
      return ErrorCode::kInternal;
  }
}

// Rewrites PostgreSQL's `$N` placeholders to SQLite's `?N`. The store's statements contain no
// `$` anywhere else.
std::string ToSqlitePlaceholders(std::string_view sql) {
  std::string rewritten(sql);
  for (size_t i = 0; i + 1 < rewritten.size(); ++i) {
    if (rewritten[i] == '$' && std::isdigit(static_cast<unsigned char>(rewritten[i + 1]))) {
      rewritten[i] = '?';
    }
  }
  return rewritten;
}

std::string_view Abbreviate(std::string_view sql) {
  constexpr size_t kMax = 80;
  return sql.size() <= kMax ? sql : sql.substr(0, kMax);
}

core::Result<std::string> NormalizeSynchronous(std::string_view mode) {
  std::string upper(mode);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (std::find(kSynchronousModes.begin(), kSynchronousModes.end(), upper) ==
      kSynchronousModes.end()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid SQLite synchronous mode '{}': use OFF, NORMAL, FULL or EXTRA", mode);
  }
  return upper;
}

}  // namespace

// One SQLite connection and its prepared statements. Used by one thread at a time.
class SqliteConnection final : public SqlSession {
 public:
  static core::Result<std::unique_ptr<SqliteConnection>> Open(const std::string& path,
                                                              bool read_only) {
    const int flags =
        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
        SQLITE_OPEN_NOMUTEX;
    sqlite3* db = nullptr;
    const int code = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (code != SQLITE_OK) {
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
      sqlite3_close_v2(db);
      return MakeError(CodeForSqlite(code),
                       "cannot open SQLite database {}: {}; check that the folder exists and is "
                       "writable",
                       path, message);
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return std::unique_ptr<SqliteConnection>(new SqliteConnection(db, path));
  }

  ~SqliteConnection() override {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close_v2(db_);
  }

  using SqlSession::Execute;

  Dialect dialect() const override { return Dialect::kSqlite; }

  // Switches the database to write-ahead logging and returns the journal mode now in force.
  // When several connections open a new database at once, SQLite can return SQLITE_BUSY at once
  // without calling the busy handler, because two connections upgrading their locks could
  // otherwise deadlock. So a busy answer is retried until the busy timeout has passed.
  core::Result<std::string> UseWriteAheadLog() {
    constexpr std::string_view kSql = "PRAGMA journal_mode = WAL";
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    while (true) {
      auto result = Execute(kSql);
      if (result) {
        if (result->rows.empty() || result->rows[0].empty()) return std::string("unknown");
        return result->rows[0][0].value_or("?");
      }
      const bool busy = (sqlite3_errcode(db_) & 0xff) == SQLITE_BUSY;
      if (!busy || std::chrono::steady_clock::now() >= deadline) {
        return std::unexpected(result.error());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  core::Result<SqlResult> Execute(std::string_view sql, std::span<const SqlValue> params) override {
    auto prepared = Prepare(sql);
    if (!prepared) return std::unexpected(prepared.error());
    sqlite3_stmt* statement = *prepared;
    // Bound text is borrowed (SQLITE_STATIC), so the bindings must go before the caller's
    // strings do.
    ScopeExit reset([statement] {
      sqlite3_reset(statement);
      sqlite3_clear_bindings(statement);
    });

    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      int code = SQLITE_OK;
      if (const auto* integer = std::get_if<int64_t>(&params[i])) {
        code = sqlite3_bind_int64(statement, index, *integer);
      } else if (const auto* text = std::get_if<std::string_view>(&params[i])) {
        // A null pointer would bind NULL, so an empty string needs a real one.
        const char* data = text->data() != nullptr ? text->data() : "";
        code =
            sqlite3_bind_text64(statement, index, data, text->size(), SQLITE_STATIC, SQLITE_UTF8);
      } else {
        code = sqlite3_bind_null(statement, index);
      }
      if (code != SQLITE_OK) return Failure(code, sql);
    }

    SqlResult result;
    const int columns = sqlite3_column_count(statement);
    while (true) {
      const int code = sqlite3_step(statement);
      if (code == SQLITE_DONE) break;
      if (code != SQLITE_ROW) return Failure(code, sql);
      SqlRow& row = result.rows.emplace_back(columns);
      for (int column = 0; column < columns; ++column) {
        if (sqlite3_column_type(statement, column) == SQLITE_NULL) continue;
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
        row[column].emplace(text, sqlite3_column_bytes(statement, column));
      }
    }
    if (!sqlite3_stmt_readonly(statement)) result.affected_rows = sqlite3_changes64(db_);
    return result;
  }

  // Runs several statements without parameters, such as a migration script.
  core::Result<void> ExecuteScript(std::string_view sql) {
    const std::string text(sql);
    char* message = nullptr;
    const int code = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
    if (code != SQLITE_OK) {
      std::string detail = message != nullptr ? message : sqlite3_errstr(code);
      sqlite3_free(message);
      return MakeError(CodeForSqlite(code), "SQLite {}: {} (running: {})", path_, detail,
                       Abbreviate(sql));
    }
    return {};
  }

  // Rolls back an open transaction, if any; used on paths that are already failing.
  void RollbackQuietly() {
    if (sqlite3_get_autocommit(db_) != 0) return;
    if (auto rolled_back = ExecuteScript("ROLLBACK"); !rolled_back) {
      spdlog::error("store: rollback failed on SQLite database {}: {}", path_,
                    rolled_back.error().message);
    }
  }

 private:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  core::Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto cached = statements_.find(sql);
    if (cached != statements_.end()) return cached->second;

    const std::string rewritten = ToSqlitePlaceholders(sql);
    sqlite3_stmt* statement = nullptr;
    const int code = sqlite3_prepare_v3(db_, rewritten.c_str(), static_cast<int>(rewritten.size()),
                                        SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
    if (code != SQLITE_OK) return Failure(code, sql);
    statements_.emplace(std::string(sql), statement);
    return statement;
  }

  std::unexpected<core::Error> Failure(int code, std::string_view sql) const {
    std::string hint;
    if ((code & 0xff) == SQLITE_BUSY) {
      hint = "; another connection held the lock for longer than the busy timeout, retry later";
    }
    return MakeError(CodeForSqlite(code), "SQLite {}: {}{} (running: {})", path_,
                     sqlite3_errmsg(db_), hint, Abbreviate(sql));
  }

  sqlite3* db_;
  std::string path_;
  // Transparent hashing lets Prepare look a statement up by string_view without copying it.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> statements_;
};

namespace {

// Applies pending migrations in one BEGIN IMMEDIATE transaction and returns the schema version.
// The write lock makes a second process wait and then find the schema up to date.
core::Result<int> Migrate(SqliteConnection& db, const StoreOptions& options,
                          const std::string& path) {
  // Only a migrating open needs the write lock; a verifier must not wait for, or block, writers.
  if (auto begun = db.ExecuteScript(options.migrate ? "BEGIN IMMEDIATE" : "BEGIN"); !begun) {
    return std::unexpected(begun.error().WithContext("checking the schema version"));
  }
  auto migrated = [&]() -> core::Result<int> {
    int current = 0;
    auto exists = db.Execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
    if (!exists) return std::unexpected(exists.error());
    if (exists->rows.at(0).at(0) == "1") {
      auto version = db.Execute("SELECT coalesce(max(version), 0) FROM schema_version");
      if (!version) return std::unexpected(version.error());
      auto number = ColumnInt(version->rows.at(0), 0, "schema_version.version");
      if (!number) return std::unexpected(number.error());
      current = static_cast<int>(*number);
    }

    auto pending = PendingMigrations(current, options.migrate, "sqlite:" + path);
    if (!pending) return std::unexpected(pending.error());
    for (const Migration& migration : *pending) {
      if (auto applied = db.ExecuteScript(migration.sqlite); !applied) {
        return std::unexpected(
            applied.error().WithContext(fmt::format("applying migration {}", migration.version)));
      }
      auto recorded =
          db.Execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                     {static_cast<int64_t>(migration.version), ToMicros(options.clock->Now())});
      if (!recorded) return std::unexpected(recorded.error());
      spdlog::info("store: applied migration {} ({}) to sqlite:{}", migration.version,
                   migration.description, path);
      current = migration.version;
    }
    return current;
  }();
  if (!migrated) {
    db.RollbackQuietly();
    return migrated;
  }
  if (auto committed = db.ExecuteScript("COMMIT"); !committed) {
    db.RollbackQuietly();
    return std::unexpected(committed.error().WithContext("committing migrations"));
  }
  return migrated;
}

}  // namespace

core::Result<std::unique_ptr<Store>> SqliteStore::Open(std::string_view path,
                                                       const StoreOptions& options) {
  if (path.empty() || path == ":memory:") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid SQLite database path '{}': name a file, such as "
                     "sqlite:/var/lib/backout/backout.db",
                     path);
  }
  auto synchronous = NormalizeSynchronous(options.sqlite_synchronous);
  if (!synchronous) return std::unexpected(synchronous.error());

  const std::string file(path);
  auto writer = SqliteConnection::Open(file, /*read_only=*/false);
  if (!writer) return std::unexpected(writer.error());

  // WAL lets readers keep their snapshot while the writer commits.
  auto journal = (*writer)->UseWriteAheadLog();
  if (!journal) return std::unexpected(journal.error());
  if (*journal != "wal") {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "SQLite database {} cannot use write-ahead logging (journal mode is {}); "
                     "keep the database on a local file system",
                     file, *journal);
  }
  auto synced = (*writer)->ExecuteScript(fmt::format("PRAGMA synchronous = {}", *synchronous));
  if (!synced) return std::unexpected(synced.error());

  auto version = Migrate(**writer, options, file);
  if (!version) return std::unexpected(version.error());

  spdlog::info("store: opened sqlite:{} (schema version {}, synchronous {})", file, *version,
               *synchronous);
  return std::unique_ptr<Store>(new SqliteStore(options, file, std::move(*writer), *version));
}

SqliteStore::SqliteStore(const StoreOptions& options, std::string path,
                         std::unique_ptr<SqliteConnection> writer, int schema_version)
    : SqlStore(options),
      path_(std::move(path)),
      schema_version_(schema_version),
      writer_(std::move(writer)) {}

SqliteStore::~SqliteStore() = default;

core::Result<void> SqliteStore::InWriteTransaction(const SessionBody& body) {
  if (writer_thread_.load() == std::this_thread::get_id()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "a write transaction on sqlite:{} was started inside another one on the "
                     "same thread; do the work in the outer transaction",
                     path_);
  }
  std::lock_guard lock(writer_mutex_);
  writer_thread_.store(std::this_thread::get_id());
  ScopeExit clear_thread([this] { writer_thread_.store(std::thread::id()); });

  if (auto begun = writer_->Execute("BEGIN IMMEDIATE"); !begun) {
    return std::unexpected(begun.error().WithContext("starting a write transaction"));
  }
  bool committed = false;
  ScopeExit rollback([&] {
    if (!committed) writer_->RollbackQuietly();
  });

  if (auto done = body(*writer_); !done) return done;
  if (auto commit = writer_->Execute("COMMIT"); !commit) {
    return std::unexpected(commit.error().WithContext("committing a write transaction"));
  }
  committed = true;
  return {};
}

core::Result<void> SqliteStore::InReadTransaction(const SessionBody& body) {
  auto taken = TakeReader();
  if (!taken) return std::unexpected(taken.error());
  std::unique_ptr<SqliteConnection> reader = std::move(*taken);
  ScopeExit give_back([&] {
    reader->RollbackQuietly();
    ReturnReader(std::move(reader));
  });

  if (auto begun = reader->Execute("BEGIN"); !begun) {
    return std::unexpected(begun.error().WithContext("starting a read transaction"));
  }
  if (auto done = body(*reader); !done) return done;
  if (auto ended = reader->Execute("COMMIT"); !ended) {
    return std::unexpected(ended.error().WithContext("ending a read transaction"));
  }
  return {};
}

core::Result<std::unique_ptr<SqliteConnection>> SqliteStore::TakeReader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<SqliteConnection> reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return reader;
    }
  }
  return SqliteConnection::Open(path_, /*read_only=*/true);
}

void SqliteStore::ReturnReader(std::unique_ptr<SqliteConnection> reader) {
  std::lock_guard lock(readers_mutex_);
  idle_readers_.push_back(std::move(reader));
}

}  // namespace backout::store
