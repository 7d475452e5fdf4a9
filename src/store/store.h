#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "core/time.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/verify.h"

namespace backout::store {

// A stored domain object: JSON body addressed by kind and id. `service` is indexed for listing.
struct Object {
  std::string kind;     // "incident", "change", "user", …
  std::string id;       // unique within kind
  std::string service;  // optional index key; empty when not tied to a service
  nlohmann::json body = nlohmann::json::object();
  int64_t version = 0;  // optimistic concurrency: 0 for a new object, then 1, 2, …
  core::Time created_at;
  core::Time updated_at;
};

class BodyWriter;

// An object body already serialized to the JSON text that Transaction::Put stores, so that a
// caller can do that work before its transaction starts. Made only by SerializeBody and by
// BodyWriter (store/body_writer.h).
class SerializedBody {
 public:
  const std::string& text() const { return text_; }

 private:
  friend core::Result<SerializedBody> SerializeBody(const nlohmann::json& body,
                                                    std::string_view what);
  friend class BodyWriter;
  explicit SerializedBody(std::string text) : text_(std::move(text)) {}

  std::string text_;
};

// Serializes `body` byte for byte as Transaction::Put would store it. Fails (kInvalidArgument)
// naming `what`, such as "body of signal/am:1", when a string in it is not valid UTF-8.
core::Result<SerializedBody> SerializeBody(const nlohmann::json& body, std::string_view what);

struct ListQuery {
  std::string kind;
  std::optional<std::string> service;
  std::string after_id;  // keyset pagination: ids strictly greater, in id order
  int limit = 1000;
};

// What a use case asks the ledger to record. The store assigns sequence and time.
struct LedgerRecord {
  std::string actor;
  std::string action;
  std::string subject;
  nlohmann::json change = nlohmann::json::object();
};

enum class JobState { kQueued, kLeased, kSucceeded, kFailed };
std::string_view JobStateName(JobState state);

struct Job {
  int64_t id = 0;
  std::string kind;                                   // "rollback", "validation", …
  std::string subject;                                // such as "incident/INC-7"
  nlohmann::json payload = nlohmann::json::object();  // steps save progress here
  JobState state = JobState::kQueued;
  int attempts = 0;
  core::Time run_after;
  std::string lease_owner;
  core::Time lease_expires;
  int64_t fencing_token = 0;  // incremented by every lease
  std::string last_error;
};

// The holder of a job's lease. Every commit on the job's behalf passes the token, and the store
// rejects it with kConflict once another worker has leased the job since.
struct JobLease {
  Job job;
  int64_t fencing_token = 0;
};

// One database transaction. Obtained only inside Store::Write or Store::Read, and valid only
// during that call; not thread-safe.
class Transaction {
 public:
  virtual ~Transaction() = default;

  virtual core::Result<std::optional<Object>> Get(std::string_view kind, std::string_view id) = 0;
  // Get for an object that the transaction is about to replace. In a write transaction on
  // PostgreSQL it also locks the row until the transaction ends. A concurrent writer that reads
  // the object the same way then waits for this transaction and reads its result, so its Put
  // does not fail with kConflict. SQLite runs one write transaction at a time, so there, and in a
  // read transaction, it is Get.
  virtual core::Result<std::optional<Object>> GetForUpdate(std::string_view kind,
                                                           std::string_view id) = 0;
  virtual core::Result<std::vector<Object>> List(const ListQuery& query) = 0;

  // Inserts the object when object.version is 0, otherwise replaces it if its stored version is
  // still object.version (kConflict when not). Sets version and times on `object`.
  virtual core::Result<void> Put(Object& object) = 0;
  // Put with `body` stored as the object's body. Ignores and keeps object.body.
  virtual core::Result<void> PutSerialized(Object& object, const SerializedBody& body) = 0;
  virtual core::Result<void> Delete(std::string_view kind, std::string_view id) = 0;

  // Next value of a named counter, from 1, without gaps in committed transactions.
  virtual core::Result<int64_t> NextNumber(std::string_view counter) = 0;

  // Appends a ledger entry in this transaction; it commits or rolls back with the state change.
  // The returned entry owns the record's members, so a caller that moves the record in avoids a
  // copy of its change.
  virtual core::Result<ledger::Entry> AppendLedger(LedgerRecord record) = 0;
  // AppendLedger for an entry encoded before the transaction by ledger::PrepareEntry, so that the
  // transaction only encodes and hashes its sequence and time. The stored bytes are those that
  // AppendLedger stores for the same record. Returns the entry's sequence.
  virtual core::Result<uint64_t> AppendPreparedLedger(const ledger::PreparedEntry& prepared) = 0;

  virtual core::Result<int64_t> EnqueueJob(std::string_view kind, std::string_view subject,
                                           const nlohmann::json& payload, core::Time run_after) = 0;
  virtual core::Result<std::optional<Job>> GetJob(int64_t id) = 0;
  virtual core::Result<std::vector<Job>> ListJobs(std::string_view subject) = 0;
  // kConflict unless `token` is the job's current fencing token and the lease is held.
  virtual core::Result<void> CheckFence(int64_t job_id, int64_t token) = 0;
  virtual core::Result<void> SaveJobProgress(int64_t job_id, int64_t token,
                                             const nlohmann::json& payload) = 0;
  virtual core::Result<void> CompleteJob(int64_t job_id, int64_t token) = 0;
  // Fails the job for good when retry_at is empty; otherwise queues it again for retry_at.
  virtual core::Result<void> FailJob(int64_t job_id, int64_t token, std::string_view error,
                                     std::optional<core::Time> retry_at) = 0;
};

using TransactionBody = std::function<core::Result<void>(Transaction&)>;

struct StoreOptions {
  const core::Clock* clock = nullptr;  // required
  // Signs the ledger's checkpoints. Without a signer the store is read-only for the ledger:
  // AppendLedger fails.
  std::shared_ptr<const ledger::Signer> signer;
  // How often a checkpoint is signed. Zero signs one in every write transaction that appended.
  // A positive interval signs in such a transaction only when this store's last signature is at
  // least that old. Until then the new entries are in the Merkle tree but not yet signed.
  // SignCheckpoint() signs them. An Ed25519 signature costs about as much as a bare SQLite insert
  // at synchronous NORMAL, so signing every transaction halves the append rate.
  core::Duration checkpoint_interval{};
  std::string sqlite_synchronous = "FULL";  // SQLite PRAGMA synchronous: OFF, NORMAL, FULL, EXTRA
  // Called after the commit of each Write that enqueued a job, on the writing thread, so idle
  // workers in this process can start at once rather than at their next poll. Must not block.
  std::function<void()> on_job_enqueued;
  bool migrate = true;  // apply pending migrations at open; false refuses an old schema instead
};

// The database. One object per process; thread-safe. SQLite serializes writers on one connection
// with BEGIN IMMEDIATE; PostgreSQL serializes ledger appends with a transaction-level advisory
// lock, so sequence numbers have no gaps.
class Store : public ledger::LogReader {
 public:
  ~Store() override = default;

  // Runs `body` in one write transaction and commits when it returns a value; on an error from
  // `body` or from the commit, nothing of it is kept, state and ledger entries alike. Never
  // retries `body`.
  virtual core::Result<void> Write(const TransactionBody& body) = 0;

  // Runs `body` in a read-only transaction with a consistent snapshot.
  virtual core::Result<void> Read(const TransactionBody& body) = 0;

  virtual core::Result<std::optional<ledger::Checkpoint>> LatestCheckpoint() = 0;

  // Signs a checkpoint of the whole log when entries were appended after the latest checkpoint,
  // then returns the latest checkpoint (empty while the log is empty). Without a signer it only
  // reads it. Callers that hand out proofs call it first, so the proofs cover every entry.
  virtual core::Result<std::optional<ledger::Checkpoint>> SignCheckpoint() = 0;

  // Records a "ledger.key_rotated" entry signed by the current key, then signs with `next`.
  virtual core::Result<void> RotateLedgerKey(std::shared_ptr<const ledger::Signer> next) = 0;

  // Leases the oldest runnable job of one of `kinds` (queued and due, or leased with an expired
  // lease) for `lease_for`, incrementing its fencing token. Empty when none is runnable.
  virtual core::Result<std::optional<JobLease>> LeaseJob(std::string_view owner,
                                                         const std::vector<std::string>& kinds,
                                                         core::Duration lease_for) = 0;
  // Extends the lease; kConflict when the token is stale.
  virtual core::Result<void> HeartbeatJob(int64_t job_id, int64_t token,
                                          core::Duration lease_for) = 0;
  // Gives the lease back without finishing, so another worker may take the job at once.
  virtual core::Result<void> ReleaseJob(int64_t job_id, int64_t token) = 0;

  virtual int SchemaVersion() const = 0;
  virtual std::string_view Backend() const = 0;  // "sqlite" or "postgresql"

  // SHA-256 of each table's full contents in key order, for tests that prove nothing changed.
  virtual core::Result<std::map<std::string, std::string>> TableDigests() = 0;
};

// Opens `url`: "sqlite:PATH" (created when missing) or "postgresql://…" / "postgres://…".
// Applies pending migrations unless options.migrate is false; refuses a database whose schema is
// newer than this build, naming both versions.
core::Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options);

}  // namespace backout::store
