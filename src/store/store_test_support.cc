#include "store/store_test_support.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <memory>
#include <utility>

#include <fmt/format.h>

#include "store/store_internal.h"
#include "support/postgres_server.h"

namespace backout::store {
namespace {

constexpr std::string_view kSqlitePrefix = "sqlite:";

core::Time TestStart() { return core::ParseTime("2026-12-04T17:00:00Z").value(); }

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

std::unique_ptr<sqlite3, SqliteCloser> OpenSqlite(const std::string& url) {
  sqlite3* db = nullptr;
  const std::string path = url.substr(kSqlitePrefix.size());
  const int code = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, SqliteCloser> owned(db);
  if (code != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errstr(code);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 10'000);
  return owned;
}

std::unique_ptr<PGconn, decltype(&PQfinish)> OpenPostgres(const std::string& url) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(url.c_str()), PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    ADD_FAILURE() << "cannot connect to " << url << ": " << PQerrorMessage(connection.get());
    return {nullptr, PQfinish};
  }
  return connection;
}

}  // namespace

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgresql";
}

void PrintTo(Backend backend, std::ostream* out) {
  *out << (backend == Backend::kSqlite ? "sqlite" : "postgresql");
}

void ExecuteRaw(const std::string& url, const std::string& sql) {
  if (url.starts_with(kSqlitePrefix)) {
    auto db = OpenSqlite(url);
    if (db == nullptr) return;
    char* message = nullptr;
    if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      ADD_FAILURE() << "raw SQL failed: " << (message ? message : "?") << "\n" << sql;
    }
    sqlite3_free(message);
    return;
  }
  auto connection = OpenPostgres(url);
  if (connection == nullptr) return;
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()),
                                                       PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "raw SQL failed: " << PQresultErrorMessage(result.get()) << "\n" << sql;
  }
}

std::string QueryRaw(const std::string& url, const std::string& sql) {
  if (url.starts_with(kSqlitePrefix)) {
    auto db = OpenSqlite(url);
    if (db == nullptr) return "";
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "raw query failed: " << sqlite3_errmsg(db.get()) << "\n" << sql;
      return "";
    }
    std::string value;
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_type(statement, 0) != SQLITE_NULL) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    sqlite3_finalize(statement);
    return value;
  }
  auto connection = OpenPostgres(url);
  if (connection == nullptr) return "";
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()),
                                                       PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "raw query failed: " << PQresultErrorMessage(result.get()) << "\n" << sql;
    return "";
  }
  if (PQntuples(result.get()) == 0 || PQgetisnull(result.get(), 0, 0)) return "";
  return PQgetvalue(result.get(), 0, 0);
}

LedgerWriteLock::LedgerWriteLock(const std::string& url) {
  if (url.starts_with(kSqlitePrefix)) {
    std::shared_ptr<sqlite3> db = OpenSqlite(url);
    if (db == nullptr) return;
    char* message = nullptr;
    if (sqlite3_exec(db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, &message) != SQLITE_OK) {
      ADD_FAILURE() << "cannot take the SQLite write lock: " << (message ? message : "?");
      sqlite3_free(message);
      return;
    }
    release_ = [db] { sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr); };
    return;
  }
  std::shared_ptr<PGconn> connection = OpenPostgres(url);
  if (connection == nullptr) return;
  const std::string sql = fmt::format("SELECT pg_advisory_lock({})", kLedgerLockKey);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()),
                                                       PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "cannot take the ledger advisory lock: " << PQresultErrorMessage(result.get());
    return;
  }
  // Closing the connection would also release the lock, but an explicit unlock is clearer.
  release_ = [connection, unlock = fmt::format("SELECT pg_advisory_unlock({})", kLedgerLockKey)] {
    PQclear(PQexec(connection.get(), unlock.c_str()));
  };
}

void LedgerWriteLock::Release() {
  if (release_) std::exchange(release_, nullptr)();
}

StoreTest::StoreTest() : clock_(TestStart()) {}

void StoreTest::SetUp() {
  auto signer = ledger::Signer::Generate();
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  signer_ = *signer;
  url_ = NewDatabaseUrl();
  ASSERT_FALSE(url_.empty());
}

std::string StoreTest::NewDatabaseUrl() {
  if (GetParam() == Backend::kSqlite) {
    return "sqlite:" + (temp_.path() / ("store-" + std::to_string(databases_++) + ".db")).string();
  }
  auto server = testing::PostgresServer::Shared();
  if (!server) {
    ADD_FAILURE() << "the PostgreSQL test server did not start: " << server.error();
    return "";
  }
  auto url = (*server)->CreateDatabase();
  if (!url) {
    ADD_FAILURE() << url.error();
    return "";
  }
  return *url;
}

StoreOptions StoreTest::Options() const {
  StoreOptions options;
  options.clock = &clock_;
  options.signer = signer_;
  return options;
}

std::unique_ptr<Store> StoreTest::OpenStore() { return OpenStore(Options()); }

std::unique_ptr<Store> StoreTest::OpenStore(const StoreOptions& options) {
  auto store = ::backout::store::OpenStore(url_, options);
  if (!store) {
    ADD_FAILURE() << "cannot open " << url_ << ": " << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

void StoreTest::WriteRecord(Store& store, std::string_view subject) {
  auto written = store.Write([&](Transaction& transaction) -> core::Result<void> {
    auto number = transaction.NextNumber("records");
    if (!number) return std::unexpected(number.error());
    Object object{.kind = "record", .id = std::string(subject)};
    object.body = {{"number", *number}};
    if (auto put = transaction.Put(object); !put) return put;
    auto entry = transaction.AppendLedger(LedgerRecord{
        .actor = "tester",
        .action = "record.written",
        .subject = std::string(subject),
        .change = {{"number", *number}},
    });
    if (!entry) return std::unexpected(entry.error());
    return {};
  });
  ASSERT_TRUE(written.has_value()) << written.error().message;
}

}  // namespace backout::store
