#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/sql_session.h"
#include "store/sql_transaction.h"
#include "store/store.h"

namespace backout::store {

// The part of Store both backends share: transactions, the ledger, the job queue and the log
// reader, all written against SqlSession. A backend supplies sessions inside transactions.
class SqlStore : public Store {
 public:
  core::Result<void> Write(const TransactionBody& body) override;
  core::Result<void> Read(const TransactionBody& body) override;
  core::Result<std::optional<ledger::Checkpoint>> LatestCheckpoint() override;
  core::Result<std::optional<ledger::Checkpoint>> SignCheckpoint() override;
  core::Result<void> RotateLedgerKey(std::shared_ptr<const ledger::Signer> next) override;

  core::Result<std::optional<JobLease>> LeaseJob(std::string_view owner,
                                                 const std::vector<std::string>& kinds,
                                                 core::Duration lease_for) override;
  core::Result<void> HeartbeatJob(int64_t job_id, int64_t token, core::Duration lease_for) override;
  core::Result<void> ReleaseJob(int64_t job_id, int64_t token) override;

  core::Result<std::map<std::string, std::string>> TableDigests() override;

  // ledger::LogReader. Each call reads its own snapshot, so a verifier running beside writers may
  // see checkpoints newer than the entry count it read first.
  core::Result<uint64_t> EntryCount() override;
  core::Result<std::vector<ledger::StoredEntry>> ReadEntries(uint64_t from,
                                                             uint64_t count) override;
  core::Result<std::vector<ledger::Checkpoint>> ReadCheckpoints() override;

 protected:
  using SessionBody = std::function<core::Result<void>(SqlSession&)>;

  explicit SqlStore(const StoreOptions& options);

  // Runs `body` in a write transaction: commits when it returns a value, rolls back when it
  // returns an error or throws, and when the commit fails.
  virtual core::Result<void> InWriteTransaction(const SessionBody& body) = 0;
  // Runs `body` in a read-only transaction over one consistent snapshot.
  virtual core::Result<void> InReadTransaction(const SessionBody& body) = 0;

 private:
  std::shared_ptr<const ledger::Signer> CurrentSigner() const;
  // True when a write transaction starting now should sign a checkpoint if it appends.
  bool SignatureDue() const;
  void NoteSigned();
  // Returns whether the log has entries past the newest checkpoint, read in a read-only
  // transaction.
  core::Result<bool> HasUnsignedEntries();
  std::optional<LedgerAppender::State> TakeLedgerState();
  void RememberLedgerState(std::optional<LedgerAppender::State> state);
  // Runs `body` on a SqlTransaction in a write transaction, finishing the ledger before commit.
  core::Result<void> WriteWithTransaction(
      const std::function<core::Result<void>(SqlTransaction&)>& body);

  const core::Clock& clock_;
  const core::Duration checkpoint_interval_;
  const std::function<void()> on_job_enqueued_;
  // When this store last signed a checkpoint, in microseconds since the epoch; 0 before the first.
  std::atomic<int64_t> last_signed_micros_{0};
  // Writes hold it shared and key rotation exclusively, so no write in this process starts with
  // the key a rotation is retiring.
  std::shared_mutex rotation_mutex_;
  mutable std::mutex signer_mutex_;
  // The ledger state after this store's last committed append or checkpoint, so the next write
  // need not read ledger_state and fold in the entries stored after it. Reused only while the
  // entries still end where it ends.
  std::mutex ledger_state_mutex_;
  std::optional<LedgerAppender::State> ledger_state_;  // guarded by ledger_state_mutex_
  std::shared_ptr<const ledger::Signer> signer_;
};

}  // namespace backout::store
