#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/sql_store.h"

namespace backout::store {

class PostgresConnection;

// The shared backend for several `backout serve` replicas: libpq connections from a small pool.
// Writes run at READ COMMITTED, so row locks and the ledger's advisory lock order concurrent
// writers. Reads run at REPEATABLE READ, READ ONLY, on one snapshot.
class PostgresStore final : public SqlStore {
 public:
  // Connects to `url` (a libpq connection URI) and applies pending migrations. Opens from several
  // processes at once migrate once: the version check and the migrations run under one
  // transaction-level advisory lock.
  static core::Result<std::unique_ptr<Store>> Open(std::string_view url,
                                                   const StoreOptions& options);
  ~PostgresStore() override;

  int SchemaVersion() const override { return schema_version_; }
  std::string_view Backend() const override { return "postgresql"; }

 protected:
  core::Result<void> InWriteTransaction(const SessionBody& body) override;
  core::Result<void> InReadTransaction(const SessionBody& body) override;

 private:
  PostgresStore(const StoreOptions& options, std::string url,
                std::unique_ptr<PostgresConnection> first, int schema_version);

  core::Result<void> InTransaction(std::string_view begin, const SessionBody& body);
  // Takes an idle connection, opens a new one below the pool's limit, or waits for one.
  core::Result<std::unique_ptr<PostgresConnection>> Acquire();
  void Release(std::unique_ptr<PostgresConnection> connection);

  const std::string url_;
  const int schema_version_;

  std::mutex pool_mutex_;
  std::condition_variable pool_released_;
  std::vector<std::unique_ptr<PostgresConnection>> idle_;
  int open_connections_ = 0;  // idle and in use
};

}  // namespace backout::store
