#include "store/postgres_store.h"

#include <charconv>
#include <utility>

#include <spdlog/spdlog.h>

#include "store/migrations.h"
#include "store/postgres_library.h"
#include "store/store_internal.h"

namespace backout::store {
namespace {

using core::ErrorCode;
using core::MakeError;

// Key of the transaction-level advisory lock held while checking and applying migrations
// ("backout" in ASCII, then 2).
constexpr int64_t kMigrationLockKey = 0x6261636b6f757402;

// Connections per store. Writers that append to the ledger queue on its advisory lock anyway, so
// more connections would mostly wait.
constexpr int kMaxConnections = 8;

struct ResultDeleter {
  const Libpq* libpq;
  void operator()(PGresult* result) const { libpq->PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

ErrorCode CodeForSqlState(std::string_view state) {
  if (state.starts_with("08") || state.starts_with("53") || state.starts_with("57P")) {
    return ErrorCode::kUnavailable;  // connection, resources, server shutting down
  }
  if (state == "40001" || state == "40P01" || state.starts_with("23")) {
    return ErrorCode::kConflict;  // serialization failure, deadlock, constraint violation
  }
  if (state == "57014") return ErrorCode::kTimeout;
  if (state == "25006") return ErrorCode::kFailedPrecondition;  // write in a read-only transaction
  if (state == "XX001" || state == "XX002") return ErrorCode::kCorruption;
  return ErrorCode::kInternal;
}

std::string_view Abbreviate(std::string_view sql) {
  constexpr size_t kMax = 80;
  return sql.size() <= kMax ? sql : sql.substr(0, kMax);
}

std::string TrimTrailingNewlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void LogNotice(void* /*context*/, const char* message) {
  spdlog::debug("store: postgresql notice: {}", TrimTrailingNewlines(message));
}

}  // namespace

// One libpq connection. Used by one thread at a time.
class PostgresConnection final : public SqlSession {
 public:
  static core::Result<std::unique_ptr<PostgresConnection>> Connect(const std::string& url) {
    const core::Result<Libpq>& loaded = LoadLibpq();
    if (!loaded) return std::unexpected(loaded.error());
    const Libpq& libpq = *loaded;
    PGconn* connection = libpq.PQconnectdb(url.c_str());
    if (connection == nullptr || libpq.PQstatus(connection) != CONNECTION_OK) {
      std::string message = connection != nullptr
                                ? TrimTrailingNewlines(libpq.PQerrorMessage(connection))
                                : std::string("out of memory");
      libpq.PQfinish(connection);
      return MakeError(ErrorCode::kUnavailable,
                       "cannot connect to PostgreSQL at {}: {}; check that the server is running "
                       "and the URL is right",
                       RedactUrl(url), message);
    }
    libpq.PQsetNoticeProcessor(connection, LogNotice, nullptr);
    return std::unique_ptr<PostgresConnection>(new PostgresConnection(libpq, connection, url));
  }

  ~PostgresConnection() override { libpq_.PQfinish(connection_); }

  using SqlSession::Execute;

  Dialect dialect() const override { return Dialect::kPostgresql; }

  core::Result<SqlResult> Execute(std::string_view sql, std::span<const SqlValue> params) override {
    // libpq takes NUL-terminated text for every parameter.
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (const auto* integer = std::get_if<int64_t>(&params[i])) {
        texts[i] = std::to_string(*integer);
        values[i] = texts[i].c_str();
      } else if (const auto* text = std::get_if<std::string_view>(&params[i])) {
        texts[i] = std::string(*text);
        values[i] = texts[i].c_str();
      }
    }

    const std::string statement(sql);
    ResultPtr result(
        libpq_.PQexecParams(connection_, statement.c_str(), static_cast<int>(params.size()),
                            nullptr, values.data(), nullptr, nullptr, /*resultFormat=*/0),
        ResultDeleter{&libpq_});
    const ExecStatusType status = libpq_.PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return Failure(result.get(), sql);
    }

    SqlResult rows;
    const int row_count = libpq_.PQntuples(result.get());
    const int columns = libpq_.PQnfields(result.get());
    rows.rows.reserve(row_count);
    for (int r = 0; r < row_count; ++r) {
      SqlRow& row = rows.rows.emplace_back(columns);
      for (int c = 0; c < columns; ++c) {
        if (libpq_.PQgetisnull(result.get(), r, c)) continue;
        row[c].emplace(libpq_.PQgetvalue(result.get(), r, c),
                       libpq_.PQgetlength(result.get(), r, c));
      }
    }
    const std::string_view affected = libpq_.PQcmdTuples(result.get());
    std::from_chars(affected.data(), affected.data() + affected.size(), rows.affected_rows);
    return rows;
  }

  // Runs statements without parameters (several are allowed) and returns the last command tag,
  // such as "COMMIT", or "ROLLBACK" when COMMIT ended a transaction that had already failed.
  core::Result<std::string> ExecuteScript(std::string_view sql) {
    const std::string statement(sql);
    ResultPtr result(libpq_.PQexec(connection_, statement.c_str()), ResultDeleter{&libpq_});
    const ExecStatusType status = libpq_.PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return Failure(result.get(), sql);
    }
    return std::string(libpq_.PQcmdStatus(result.get()));
  }

  bool Usable() const {
    return libpq_.PQstatus(connection_) == CONNECTION_OK &&
           libpq_.PQtransactionStatus(connection_) == PQTRANS_IDLE;
  }

  // Rolls back an open or failed transaction, if any; used on paths that are already failing.
  void RollbackQuietly() {
    const PGTransactionStatusType state = libpq_.PQtransactionStatus(connection_);
    if (state != PQTRANS_INTRANS && state != PQTRANS_INERROR) return;
    if (auto rolled_back = ExecuteScript("ROLLBACK"); !rolled_back) {
      spdlog::error("store: rollback failed on PostgreSQL {}: {}", RedactUrl(url_),
                    rolled_back.error().message);
    }
  }

 private:
  PostgresConnection(const Libpq& libpq, PGconn* connection, std::string url)
      : libpq_(libpq), connection_(connection), url_(std::move(url)) {}

  std::unexpected<core::Error> Failure(const PGresult* result, std::string_view sql) const {
    const char* state =
        result != nullptr ? libpq_.PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string message =
        TrimTrailingNewlines(result != nullptr ? libpq_.PQresultErrorMessage(result)
                                               : libpq_.PQerrorMessage(connection_));
    if (message.empty()) message = TrimTrailingNewlines(libpq_.PQerrorMessage(connection_));
    ErrorCode code = state != nullptr ? CodeForSqlState(state) : ErrorCode::kUnavailable;
    if (libpq_.PQstatus(connection_) != CONNECTION_OK) code = ErrorCode::kUnavailable;
    return MakeError(code, "PostgreSQL {}: {} (SQLSTATE {}, running: {})", RedactUrl(url_), message,
                     state != nullptr ? state : "none", Abbreviate(sql));
  }

  const Libpq& libpq_;
  PGconn* connection_;
  std::string url_;
};

namespace {

core::Result<int> CurrentSchemaVersion(PostgresConnection& connection) {
  auto exists = connection.Execute("SELECT to_regclass('schema_version') IS NOT NULL");
  if (!exists) return std::unexpected(exists.error());
  if (exists->rows.at(0).at(0) != "t") return 0;

  auto version = connection.Execute("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!version) return std::unexpected(version.error());
  auto number = ColumnInt(version->rows.at(0), 0, "schema_version.version");
  if (!number) return std::unexpected(number.error());
  return static_cast<int>(*number);
}

// Applies pending migrations in one transaction under an advisory lock and returns the schema
// version. A second process waits on the lock, then finds the schema up to date.
core::Result<int> Migrate(PostgresConnection& connection, const StoreOptions& options,
                          const std::string& database) {
  if (auto begun = connection.ExecuteScript("BEGIN"); !begun) {
    return std::unexpected(begun.error().WithContext("checking the schema version"));
  }
  auto migrated = [&]() -> core::Result<int> {
    auto locked = connection.Execute("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey});
    if (!locked) return std::unexpected(locked.error());
    auto current = CurrentSchemaVersion(connection);
    if (!current) return current;

    auto pending = PendingMigrations(*current, options.migrate, database);
    if (!pending) return std::unexpected(pending.error());
    int version = *current;
    for (const Migration& migration : *pending) {
      if (auto applied = connection.ExecuteScript(migration.postgresql); !applied) {
        return std::unexpected(
            applied.error().WithContext(fmt::format("applying migration {}", migration.version)));
      }
      auto recorded = connection.Execute(
          "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
          {static_cast<int64_t>(migration.version), ToMicros(options.clock->Now())});
      if (!recorded) return std::unexpected(recorded.error());
      spdlog::info("store: applied migration {} ({}) to {}", migration.version,
                   migration.description, database);
      version = migration.version;
    }
    return version;
  }();
  if (!migrated) {
    connection.RollbackQuietly();
    return migrated;
  }
  auto committed = connection.ExecuteScript("COMMIT");
  if (!committed) {
    connection.RollbackQuietly();
    return std::unexpected(committed.error().WithContext("committing migrations"));
  }
  return migrated;
}

}  // namespace

core::Result<std::unique_ptr<Store>> PostgresStore::Open(std::string_view url,
                                                         const StoreOptions& options) {
  const std::string target(url);
  const std::string redacted = RedactUrl(url);
  auto connection = PostgresConnection::Connect(target);
  if (!connection) return std::unexpected(connection.error());

  auto version = Migrate(**connection, options, redacted);
  if (!version) return std::unexpected(version.error());

  spdlog::info("store: opened {} (schema version {})", redacted, *version);
  return std::unique_ptr<Store>(
      new PostgresStore(options, target, std::move(*connection), *version));
}

PostgresStore::PostgresStore(const StoreOptions& options, std::string url,
                             std::unique_ptr<PostgresConnection> first, int schema_version)
    : SqlStore(options), url_(std::move(url)), schema_version_(schema_version) {
  idle_.push_back(std::move(first));
  open_connections_ = 1;
}

PostgresStore::~PostgresStore() = default;

core::Result<void> PostgresStore::InWriteTransaction(const SessionBody& body) {
  return InTransaction("BEGIN ISOLATION LEVEL READ COMMITTED", body);
}

core::Result<void> PostgresStore::InReadTransaction(const SessionBody& body) {
  return InTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body);
}

core::Result<void> PostgresStore::InTransaction(std::string_view begin, const SessionBody& body) {
  auto acquired = Acquire();
  if (!acquired) return std::unexpected(acquired.error());
  std::unique_ptr<PostgresConnection> connection = std::move(*acquired);
  ScopeExit give_back([&] {
    connection->RollbackQuietly();
    Release(std::move(connection));
  });

  if (auto begun = connection->ExecuteScript(begin); !begun) {
    return std::unexpected(begun.error().WithContext("starting a transaction"));
  }
  if (auto done = body(*connection); !done) return done;

  auto committed = connection->ExecuteScript("COMMIT");
  if (!committed) {
    return std::unexpected(committed.error().WithContext("committing a transaction"));
  }
  if (*committed != "COMMIT") {
    return MakeError(ErrorCode::kInternal,
                     "PostgreSQL {} rolled the transaction back at commit because one of its "
                     "statements had failed and the error was ignored; nothing was written",
                     RedactUrl(url_));
  }
  return {};
}

core::Result<std::unique_ptr<PostgresConnection>> PostgresStore::Acquire() {
  std::unique_lock lock(pool_mutex_);
  while (true) {
    if (!idle_.empty()) {
      std::unique_ptr<PostgresConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    if (open_connections_ < kMaxConnections) {
      ++open_connections_;
      lock.unlock();
      auto connection = PostgresConnection::Connect(url_);
      if (!connection) {
        lock.lock();
        --open_connections_;
        pool_released_.notify_one();
      }
      return connection;
    }
    pool_released_.wait(lock);
  }
}

void PostgresStore::Release(std::unique_ptr<PostgresConnection> connection) {
  std::lock_guard lock(pool_mutex_);
  if (connection->Usable()) {
    idle_.push_back(std::move(connection));
  } else {
    // A broken connection is closed; the next Acquire opens a fresh one.
    spdlog::warn("store: dropping a broken PostgreSQL connection to {}", RedactUrl(url_));
    connection.reset();
    --open_connections_;
  }
  pool_released_.notify_one();
}

}  // namespace backout::store
