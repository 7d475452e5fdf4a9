#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "store/ledger_appender.h"
#include "store/sql_session.h"
#include "store/store.h"

namespace backout::store {

// The Transaction both backends hand to bodies: the same SQL on one session, with the dialect's
// few differences (row locks on PostgreSQL) chosen here. Not thread-safe.
class SqlTransaction final : public Transaction {
 public:
  enum class Mode { kRead, kWrite };

  SqlTransaction(SqlSession& session, Mode mode, const core::Clock& clock,
                 std::shared_ptr<const ledger::Signer> signer);

  core::Result<std::optional<Object>> Get(std::string_view kind, std::string_view id) override;
  core::Result<std::optional<Object>> GetForUpdate(std::string_view kind,
                                                   std::string_view id) override;
  core::Result<std::vector<Object>> List(const ListQuery& query) override;
  core::Result<void> Put(Object& object) override;
  core::Result<void> PutSerialized(Object& object, const SerializedBody& body) override;
  core::Result<void> Delete(std::string_view kind, std::string_view id) override;
  core::Result<int64_t> NextNumber(std::string_view counter) override;
  core::Result<ledger::Entry> AppendLedger(LedgerRecord record) override;
  core::Result<uint64_t> AppendPreparedLedger(const ledger::PreparedEntry& prepared) override;

  core::Result<int64_t> EnqueueJob(std::string_view kind, std::string_view subject,
                                   const nlohmann::json& payload, core::Time run_after) override;
  core::Result<std::optional<Job>> GetJob(int64_t id) override;
  core::Result<std::vector<Job>> ListJobs(std::string_view subject) override;
  core::Result<void> CheckFence(int64_t job_id, int64_t token) override;
  core::Result<void> SaveJobProgress(int64_t job_id, int64_t token,
                                     const nlohmann::json& payload) override;
  core::Result<void> CompleteJob(int64_t job_id, int64_t token) override;
  core::Result<void> FailJob(int64_t job_id, int64_t token, std::string_view error,
                             std::optional<core::Time> retry_at) override;

  // The Store-level job operations, each run in a write transaction of its own.
  core::Result<std::optional<JobLease>> LeaseJob(std::string_view owner,
                                                 const std::vector<std::string>& kinds,
                                                 core::Duration lease_for);
  core::Result<void> HeartbeatJob(int64_t job_id, int64_t token, core::Duration lease_for);
  core::Result<void> ReleaseJob(int64_t job_id, int64_t token);

  // See LedgerAppender::Rotate.
  core::Result<ledger::Entry> RotateLedgerKey(std::shared_ptr<const ledger::Signer> next);

  // Writes what the ledger appender holds back until the end, with a signed checkpoint when
  // `sign` is true. Returns whether it signed. Call once, just before commit.
  core::Result<bool> Finish(bool sign);

  // See LedgerAppender::UseCommittedState and StateToRemember.
  void UseCommittedLedgerState(std::optional<LedgerAppender::State> state) {
    ledger_.UseCommittedState(std::move(state));
  }
  std::optional<LedgerAppender::State> LedgerStateToRemember() const {
    return ledger_.StateToRemember();
  }

  // True once EnqueueJob succeeded in this transaction.
  bool enqueued_job() const { return enqueued_job_; }

  // See LedgerAppender::SignPending.
  core::Result<bool> SignPendingCheckpoint();

 private:
  core::Result<void> RequireWrite(std::string_view operation) const;
  // Runs the checks that Put and PutSerialized share, before any serialization.
  core::Result<void> CheckPut(std::string_view operation, const Object& object) const;
  // Inserts or replaces `object` with `body` as its stored text, once CheckPut passed.
  core::Result<void> WriteObject(Object& object, std::string_view body);
  core::Result<std::optional<int64_t>> StoredVersion(std::string_view kind, std::string_view id);
  // Reads one object, with SELECT … FOR UPDATE when `lock_row`.
  core::Result<std::optional<Object>> SelectObject(std::string_view kind, std::string_view id,
                                                   bool lock_row);

  SqlSession& session_;
  Mode mode_;
  const core::Clock& clock_;
  LedgerAppender ledger_;
  bool enqueued_job_ = false;
};

}  // namespace backout::store
