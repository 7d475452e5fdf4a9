#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/sql_store.h"

namespace backout::store {

class SqliteConnection;

// The embedded backend: one database file in WAL mode. All writes go through one connection,
// serialized by a mutex and by BEGIN IMMEDIATE, which also waits (up to the busy timeout) for
// other processes' writers. Reads use a pool of read-only connections, each transaction on one
// WAL snapshot.
class SqliteStore final : public SqlStore {
 public:
  // Opens or creates the database at `path` and applies pending migrations. Opens to the same
  // file from several threads or processes migrate once: the version check and the migrations
  // run in one BEGIN IMMEDIATE transaction.
  static core::Result<std::unique_ptr<Store>> Open(std::string_view path,
                                                   const StoreOptions& options);
  ~SqliteStore() override;

  int SchemaVersion() const override { return schema_version_; }
  std::string_view Backend() const override { return "sqlite"; }

 protected:
  core::Result<void> InWriteTransaction(const SessionBody& body) override;
  core::Result<void> InReadTransaction(const SessionBody& body) override;

 private:
  SqliteStore(const StoreOptions& options, std::string path,
              std::unique_ptr<SqliteConnection> writer, int schema_version);

  core::Result<std::unique_ptr<SqliteConnection>> TakeReader();
  void ReturnReader(std::unique_ptr<SqliteConnection> reader);

  const std::string path_;
  const int schema_version_;

  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;
  // The thread inside a write transaction, to reject a nested Write instead of deadlocking.
  std::atomic<std::thread::id> writer_thread_;

  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_;
};

}  // namespace backout::store
