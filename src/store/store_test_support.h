#pragma once

// Fixtures for the store's tests: every suite runs once per backend. Suites instantiated for
// PostgreSQL carry "Postgres" in their names, which CMake uses to label them `postgresql`.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "ledger/checkpoint.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace backout::store {

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info);
void PrintTo(Backend backend, std::ostream* out);

// Runs statements outside the store, as an operator (or an attacker) with database access would.
// Fails the current test on error.
void ExecuteRaw(const std::string& url, const std::string& sql);
// Returns the first column of the first row of `sql`, or "" when there is none or it is NULL.
std::string QueryRaw(const std::string& url, const std::string& sql);

// Holds the lock that a ledger write takes, from a connection outside the store: SQLite's write
// lock (BEGIN IMMEDIATE), or PostgreSQL's ledger advisory lock. Fails the current test when it
// cannot take the lock. Release() or the destructor lets it go.
class LedgerWriteLock {
 public:
  explicit LedgerWriteLock(const std::string& url);
  ~LedgerWriteLock() { Release(); }
  LedgerWriteLock(const LedgerWriteLock&) = delete;
  LedgerWriteLock& operator=(const LedgerWriteLock&) = delete;

  void Release();

 private:
  std::function<void()> release_;
};

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  StoreTest();

  // Creates a fresh empty database for the test's backend and stores its URL in url_.
  void SetUp() override;

  StoreOptions Options() const;
  // Opens url_ with Options(); fails the test when the store does not open.
  std::unique_ptr<Store> OpenStore();
  std::unique_ptr<Store> OpenStore(const StoreOptions& options);
  // A URL of another fresh database of the same backend.
  std::string NewDatabaseUrl();

  // Appends one ledger entry (with an object and a counter) in its own write.
  void WriteRecord(Store& store, std::string_view subject);

  bool IsPostgres() const { return GetParam() == Backend::kPostgres; }

  testing::TempDir temp_;
  core::ManualClock clock_;
  std::shared_ptr<ledger::Signer> signer_;
  std::string url_;

 private:
  int databases_ = 0;
};

#define BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Sqlite, suite, ::testing::Values(::backout::store::Backend::kSqlite), \
                           ::backout::store::BackendName);                                       \
  INSTANTIATE_TEST_SUITE_P(Postgres, suite,                                                      \
                           ::testing::Values(::backout::store::Backend::kPostgres),              \
                           ::backout::store::BackendName)

}  // namespace backout::store
