#include "store/sql_transaction.h"

#include <utility>

#include "store/store_internal.h"

namespace backout::store {
namespace {

using core::ErrorCode;
using core::MakeError;

constexpr std::string_view kObjectColumns =
    "kind, id, service, body, version, created_at, updated_at";

// The statement of Transaction::List, in core::IdLess order: the id without its trailing digits
// (its prefix), then the length, then the bytes, so CHG-2 comes before CHG-10. Schema version 2
// indexes this key. The ids after the cursor are three index ranges: the same prefix and length
// with larger bytes, the same prefix and a greater length, then greater prefixes. Each is read in
// index order up to the limit and the union is sorted again. One row comparison of the whole key
// was not an index range in SQLite (bench/growth_bench paged 10^5 incidents at about 100 ms a
// page). The statement names the index for SQLite, which otherwise scans the primary key from
// `id > after` and filters, reading every row of the kind when the cursor is empty.
std::string ListStatement(bool by_service, Dialect dialect) {
  const std::string filter = by_service ? "kind = $1 AND service = $2" : "kind = $1";
  std::string source = "objects";
  if (dialect == Dialect::kSqlite) {
    source = by_service ? "objects INDEXED BY objects_by_service_id_order"
                        : "objects INDEXED BY objects_by_id_order";
  }
  const int after = by_service ? 3 : 2;
  const int limit = after + 1;
  return fmt::format(
      "SELECT {cols} FROM ("
      "SELECT * FROM (SELECT {cols} FROM {source} WHERE {filter} AND {prefix} = {after_prefix} "
      "AND length(id) = {after_length} AND id > ${after} ORDER BY id LIMIT ${limit}) "
      "AS same_length UNION ALL "
      "SELECT * FROM (SELECT {cols} FROM {source} WHERE {filter} AND {prefix} = {after_prefix} "
      "AND length(id) > {after_length} ORDER BY length(id), id LIMIT ${limit}) "
      "AS longer UNION ALL "
      "SELECT * FROM (SELECT {cols} FROM {source} WHERE {filter} AND {prefix} > {after_prefix} "
      "ORDER BY {prefix}, length(id), id LIMIT ${limit}) AS later_prefix"
      ") AS page ORDER BY {prefix}, length(id), id LIMIT ${limit}",
      fmt::arg("cols", kObjectColumns), fmt::arg("source", source), fmt::arg("filter", filter),
      fmt::arg("prefix", "rtrim(id, '0123456789')"),
      fmt::arg("after_prefix", fmt::format("rtrim(CAST(${} AS TEXT), '0123456789')", after)),
      fmt::arg("after_length", fmt::format("length(CAST(${} AS TEXT))", after)),
      fmt::arg("after", after), fmt::arg("limit", limit));
}

core::Result<Object> ObjectFromRow(const SqlRow& row) {
  Object object;
  auto kind = ColumnText(row, 0, "objects.kind");
  auto id = ColumnText(row, 1, "objects.id");
  auto service = ColumnText(row, 2, "objects.service");
  auto body = ColumnText(row, 3, "objects.body");
  auto version = ColumnInt(row, 4, "objects.version");
  auto created_at = ColumnInt(row, 5, "objects.created_at");
  auto updated_at = ColumnInt(row, 6, "objects.updated_at");
  for (const auto* column : {&kind, &id, &service, &body}) {
    if (!column->has_value()) return std::unexpected(column->error());
  }
  for (const auto* column : {&version, &created_at, &updated_at}) {
    if (!column->has_value()) return std::unexpected(column->error());
  }

  auto parsed = ParseStoredJson(*body, fmt::format("body of {}/{}", *kind, *id));
  if (!parsed) return std::unexpected(parsed.error());
  object.kind = std::move(*kind);
  object.id = std::move(*id);
  object.service = std::move(*service);
  object.body = std::move(*parsed);
  object.version = *version;
  object.created_at = FromMicros(*created_at);
  object.updated_at = FromMicros(*updated_at);
  return object;
}

core::Result<void> RequireKey(std::string_view kind, std::string_view id) {
  if (kind.empty() || id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "object key '{}/{}' is incomplete: both kind and id must be non-empty", kind,
                     id);
  }
  return {};
}

}  // namespace

SqlTransaction::SqlTransaction(SqlSession& session, Mode mode, const core::Clock& clock,
                               std::shared_ptr<const ledger::Signer> signer)
    : session_(session), mode_(mode), clock_(clock), ledger_(session, clock, std::move(signer)) {}

core::Result<void> SqlTransaction::RequireWrite(std::string_view operation) const {
  if (mode_ != Mode::kWrite) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{} is not allowed in a read transaction; run it inside Store::Write",
                     operation);
  }
  return {};
}

// Objects.

core::Result<std::optional<Object>> SqlTransaction::Get(std::string_view kind,
                                                        std::string_view id) {
  return SelectObject(kind, id, false);
}

core::Result<std::optional<Object>> SqlTransaction::GetForUpdate(std::string_view kind,
                                                                 std::string_view id) {
  const bool lock_row = session_.dialect() == Dialect::kPostgresql && mode_ == Mode::kWrite;
  return SelectObject(kind, id, lock_row);
}

core::Result<std::optional<Object>> SqlTransaction::SelectObject(std::string_view kind,
                                                                 std::string_view id,
                                                                 bool lock_row) {
  auto result = session_.Execute(fmt::format("SELECT {} FROM objects WHERE kind = $1 AND id = $2{}",
                                             kObjectColumns, lock_row ? " FOR UPDATE" : ""),
                                 {kind, id});
  if (!result) return std::unexpected(result.error());
  if (result->rows.empty()) return std::nullopt;
  auto object = ObjectFromRow(result->rows[0]);
  if (!object) return std::unexpected(object.error());
  return std::move(*object);
}

core::Result<std::vector<Object>> SqlTransaction::List(const ListQuery& query) {
  if (query.kind.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "listing objects needs a kind");
  }
  if (query.limit < 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid list limit {} for kind '{}': use a positive number", query.limit,
                     query.kind);
  }

  const std::string statement = ListStatement(query.service.has_value(), session_.dialect());
  core::Result<SqlResult> result;
  if (query.service.has_value()) {
    result = session_.Execute(
        statement, {query.kind, *query.service, query.after_id, static_cast<int64_t>(query.limit)});
  } else {
    result = session_.Execute(statement,
                              {query.kind, query.after_id, static_cast<int64_t>(query.limit)});
  }
  if (!result) return std::unexpected(result.error());

  std::vector<Object> objects;
  objects.reserve(result->rows.size());
  for (const SqlRow& row : result->rows) {
    auto object = ObjectFromRow(row);
    if (!object) return std::unexpected(object.error());
    objects.push_back(std::move(*object));
  }
  return objects;
}

core::Result<void> SqlTransaction::CheckPut(std::string_view operation,
                                            const Object& object) const {
  if (auto writable = RequireWrite(operation); !writable) return writable;
  if (auto key = RequireKey(object.kind, object.id); !key) return key;
  if (object.version < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "object {}/{} has invalid version {}: use 0 to create it, or the version "
                     "last read to replace it",
                     object.kind, object.id, object.version);
  }
  return {};
}

core::Result<void> SqlTransaction::Put(Object& object) {
  if (auto checked = CheckPut("Put", object); !checked) return checked;
  auto body = DumpJson(object.body, fmt::format("body of {}/{}", object.kind, object.id));
  if (!body) return std::unexpected(body.error());
  return WriteObject(object, *body);
}

core::Result<void> SqlTransaction::PutSerialized(Object& object, const SerializedBody& body) {
  if (auto checked = CheckPut("PutSerialized", object); !checked) return checked;
  return WriteObject(object, body.text());
}

core::Result<void> SqlTransaction::WriteObject(Object& object, std::string_view body) {
  const core::Time now = clock_.Now();

  // Create.
  if (object.version == 0) {
    auto inserted = session_.Execute(
        "INSERT INTO objects (kind, id, service, body, version, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (kind, id) DO NOTHING",
        {object.kind, object.id, object.service, body, ToMicros(now)});
    if (!inserted) return std::unexpected(inserted.error());
    if (inserted->affected_rows == 0) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "object {}/{} already exists; read it and replace it with its version",
                       object.kind, object.id);
    }
    object.version = 1;
    object.created_at = now;
    object.updated_at = now;
    return {};
  }

  // Replace it only if its stored version is still the one the caller read.
  auto updated = session_.Execute(
      "UPDATE objects SET service = $3, body = $4, version = version + 1, updated_at = $5 "
      "WHERE kind = $1 AND id = $2 AND version = $6 RETURNING created_at",
      {object.kind, object.id, object.service, body, ToMicros(now), object.version});
  if (!updated) return std::unexpected(updated.error());
  if (updated->rows.empty()) {
    auto stored = StoredVersion(object.kind, object.id);
    if (!stored) return std::unexpected(stored.error());
    if (!stored->has_value()) {
      return MakeError(ErrorCode::kNotFound, "object {}/{} not found; create it with version 0",
                       object.kind, object.id);
    }
    return MakeError(ErrorCode::kConflict,
                     "object {}/{} is at version {}, not {}: another writer changed it; read it "
                     "again and retry",
                     object.kind, object.id, **stored, object.version);
  }
  auto created_at = ColumnInt(updated->rows[0], 0, "objects.created_at");
  if (!created_at) return std::unexpected(created_at.error());
  object.version += 1;
  object.created_at = FromMicros(*created_at);
  object.updated_at = now;
  return {};
}

core::Result<void> SqlTransaction::Delete(std::string_view kind, std::string_view id) {
  if (auto writable = RequireWrite("Delete"); !writable) return writable;
  auto deleted = session_.Execute("DELETE FROM objects WHERE kind = $1 AND id = $2", {kind, id});
  if (!deleted) return std::unexpected(deleted.error());
  if (deleted->affected_rows == 0) {
    return MakeError(ErrorCode::kNotFound, "object {}/{} not found", kind, id);
  }
  return {};
}

core::Result<std::optional<int64_t>> SqlTransaction::StoredVersion(std::string_view kind,
                                                                   std::string_view id) {
  auto result =
      session_.Execute("SELECT version FROM objects WHERE kind = $1 AND id = $2", {kind, id});
  if (!result) return std::unexpected(result.error());
  if (result->rows.empty()) return std::nullopt;
  auto version = ColumnInt(result->rows[0], 0, "objects.version");
  if (!version) return std::unexpected(version.error());
  return *version;
}

// Counters and the ledger.

core::Result<int64_t> SqlTransaction::NextNumber(std::string_view counter) {
  if (auto writable = RequireWrite("NextNumber"); !writable) {
    return std::unexpected(writable.error());
  }
  if (counter.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "counter name must be non-empty");
  }
  // The row lock the upsert takes orders concurrent writers, and a rolled-back increment is
  // undone with its transaction, so committed numbers have no gaps.
  auto result = session_.Execute(
      "INSERT INTO counters (name, value) VALUES ($1, 1) "
      "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
      {counter});
  if (!result) return std::unexpected(result.error());
  return ColumnInt(result->rows.at(0), 0, "counters.value");
}

core::Result<ledger::Entry> SqlTransaction::AppendLedger(LedgerRecord record) {
  if (auto writable = RequireWrite("AppendLedger"); !writable) {
    return std::unexpected(writable.error());
  }
  return ledger_.Append(std::move(record));
}

core::Result<uint64_t> SqlTransaction::AppendPreparedLedger(const ledger::PreparedEntry& prepared) {
  if (auto writable = RequireWrite("AppendPreparedLedger"); !writable) {
    return std::unexpected(writable.error());
  }
  return ledger_.AppendPrepared(prepared);
}

core::Result<ledger::Entry> SqlTransaction::RotateLedgerKey(
    std::shared_ptr<const ledger::Signer> next) {
  if (auto writable = RequireWrite("RotateLedgerKey"); !writable) {
    return std::unexpected(writable.error());
  }
  return ledger_.Rotate(std::move(next));
}

core::Result<bool> SqlTransaction::Finish(bool sign) {
  if (mode_ != Mode::kWrite) return false;
  return ledger_.Finish(sign);
}

core::Result<bool> SqlTransaction::SignPendingCheckpoint() {
  if (auto writable = RequireWrite("SignPendingCheckpoint"); !writable) {
    return std::unexpected(writable.error());
  }
  return ledger_.SignPending();
}

// Jobs.

core::Result<int64_t> SqlTransaction::EnqueueJob(std::string_view kind, std::string_view subject,
                                                 const nlohmann::json& payload,
                                                 core::Time run_after) {
  if (auto writable = RequireWrite("EnqueueJob"); !writable) {
    return std::unexpected(writable.error());
  }
  if (kind.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "job kind must be non-empty (subject '{}')",
                     subject);
  }
  auto payload_text = DumpJson(payload, fmt::format("payload of {} job for {}", kind, subject));
  if (!payload_text) return std::unexpected(payload_text.error());

  auto inserted = session_.Execute(
      "INSERT INTO jobs (kind, subject, payload, state, attempts, run_after, created_at, "
      "updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5) RETURNING id",
      {kind, subject, *payload_text, ToMicros(run_after), ToMicros(clock_.Now())});
  if (!inserted) return std::unexpected(inserted.error());
  enqueued_job_ = true;
  return ColumnInt(inserted->rows.at(0), 0, "jobs.id");
}

core::Result<std::optional<Job>> SqlTransaction::GetJob(int64_t id) {
  auto result =
      session_.Execute(fmt::format("SELECT {} FROM jobs WHERE id = $1", kJobColumns), {id});
  if (!result) return std::unexpected(result.error());
  if (result->rows.empty()) return std::nullopt;
  auto job = JobFromRow(result->rows[0]);
  if (!job) return std::unexpected(job.error());
  return std::move(*job);
}

core::Result<std::vector<Job>> SqlTransaction::ListJobs(std::string_view subject) {
  auto result = session_.Execute(
      fmt::format("SELECT {} FROM jobs WHERE subject = $1 ORDER BY id", kJobColumns), {subject});
  if (!result) return std::unexpected(result.error());
  std::vector<Job> jobs;
  jobs.reserve(result->rows.size());
  for (const SqlRow& row : result->rows) {
    auto job = JobFromRow(row);
    if (!job) return std::unexpected(job.error());
    jobs.push_back(std::move(*job));
  }
  return jobs;
}

core::Result<void> SqlTransaction::CheckFence(int64_t job_id, int64_t token) {
  // On PostgreSQL the row lock keeps a concurrent LeaseJob (which skips locked rows) from taking
  // the job between this check and the commit. SQLite has one writer at a time.
  const bool lock_row = session_.dialect() == Dialect::kPostgresql && mode_ == Mode::kWrite;
  auto result =
      session_.Execute(lock_row ? "SELECT state, fencing_token FROM jobs WHERE id = $1 FOR UPDATE"
                                : "SELECT state, fencing_token FROM jobs WHERE id = $1",
                       {job_id});
  if (!result) return std::unexpected(result.error());
  if (result->rows.empty()) {
    return MakeError(ErrorCode::kNotFound, "job {} not found", job_id);
  }
  auto state = ColumnText(result->rows[0], 0, "jobs.state");
  auto current_token = ColumnInt(result->rows[0], 1, "jobs.fencing_token");
  if (!state) return std::unexpected(state.error());
  if (!current_token) return std::unexpected(current_token.error());

  if (*current_token != token || *state != JobStateName(JobState::kLeased)) {
    return MakeError(ErrorCode::kConflict,
                     "lease on job {} with fencing token {} is no longer held (the job is {} "
                     "with token {}): another worker owns it now, so stop working on it",
                     job_id, token, *state, *current_token);
  }
  return {};
}

core::Result<void> SqlTransaction::SaveJobProgress(int64_t job_id, int64_t token,
                                                   const nlohmann::json& payload) {
  if (auto writable = RequireWrite("SaveJobProgress"); !writable) return writable;
  auto payload_text = DumpJson(payload, fmt::format("payload of job {}", job_id));
  if (!payload_text) return std::unexpected(payload_text.error());
  if (auto fenced = CheckFence(job_id, token); !fenced) return fenced;

  auto updated = session_.Execute("UPDATE jobs SET payload = $2, updated_at = $3 WHERE id = $1",
                                  {job_id, *payload_text, ToMicros(clock_.Now())});
  if (!updated) return std::unexpected(updated.error());
  return {};
}

core::Result<void> SqlTransaction::CompleteJob(int64_t job_id, int64_t token) {
  if (auto writable = RequireWrite("CompleteJob"); !writable) return writable;
  if (auto fenced = CheckFence(job_id, token); !fenced) return fenced;

  // lease_owner stays: it names the worker that finished the job.
  auto updated = session_.Execute(
      "UPDATE jobs SET state = 'succeeded', lease_expires = 0, updated_at = $2 WHERE id = $1",
      {job_id, ToMicros(clock_.Now())});
  if (!updated) return std::unexpected(updated.error());
  return {};
}

core::Result<void> SqlTransaction::FailJob(int64_t job_id, int64_t token, std::string_view error,
                                           std::optional<core::Time> retry_at) {
  if (auto writable = RequireWrite("FailJob"); !writable) return writable;
  if (auto fenced = CheckFence(job_id, token); !fenced) return fenced;

  const int64_t now = ToMicros(clock_.Now());
  core::Result<SqlResult> updated;
  if (retry_at.has_value()) {
    updated = session_.Execute(
        "UPDATE jobs SET state = 'queued', run_after = $2, last_error = $3, lease_expires = 0, "
        "updated_at = $4 WHERE id = $1",
        {job_id, ToMicros(*retry_at), error, now});
  } else {
    updated = session_.Execute(
        "UPDATE jobs SET state = 'failed', last_error = $2, lease_expires = 0, updated_at = $3 "
        "WHERE id = $1",
        {job_id, error, now});
  }
  if (!updated) return std::unexpected(updated.error());
  return {};
}

core::Result<std::optional<JobLease>> SqlTransaction::LeaseJob(
    std::string_view owner, const std::vector<std::string>& kinds, core::Duration lease_for) {
  if (auto writable = RequireWrite("LeaseJob"); !writable) {
    return std::unexpected(writable.error());
  }
  if (kinds.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "leasing a job needs at least one job kind");
  }
  if (lease_for <= core::Duration::zero()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid lease duration {} µs for owner '{}': use a positive duration",
                     lease_for.count(), owner);
  }
  const int64_t now = ToMicros(clock_.Now());

  // Find the oldest runnable job: queued and due, or leased by a worker whose lease ran out.
  std::vector<SqlValue> params = {now};
  std::string placeholders;
  for (const std::string& kind : kinds) {
    params.emplace_back(std::string_view(kind));
    placeholders += fmt::format("{}${}", placeholders.empty() ? "" : ", ", params.size());
  }
  const std::string select = fmt::format(
      "SELECT id FROM jobs WHERE kind IN ({}) AND ((state = 'queued' AND run_after <= $1) OR "
      "(state = 'leased' AND lease_expires <= $1)) ORDER BY run_after, id LIMIT 1{}",
      placeholders, session_.dialect() == Dialect::kPostgresql ? " FOR UPDATE SKIP LOCKED" : "");
  auto found = session_.Execute(select, params);
  if (!found) return std::unexpected(found.error());
  if (found->rows.empty()) return std::nullopt;
  auto job_id = ColumnInt(found->rows[0], 0, "jobs.id");
  if (!job_id) return std::unexpected(job_id.error());

  // Take it with a new fencing token.
  auto leased = session_.Execute(
      fmt::format("UPDATE jobs SET state = 'leased', lease_owner = $2, lease_expires = $3, "
                  "fencing_token = fencing_token + 1, attempts = attempts + 1, updated_at = $4 "
                  "WHERE id = $1 RETURNING {}",
                  kJobColumns),
      {*job_id, owner, now + lease_for.count(), now});
  if (!leased) return std::unexpected(leased.error());
  auto job = JobFromRow(leased->rows.at(0));
  if (!job) return std::unexpected(job.error());
  const int64_t token = job->fencing_token;
  return JobLease{.job = std::move(*job), .fencing_token = token};
}

core::Result<void> SqlTransaction::HeartbeatJob(int64_t job_id, int64_t token,
                                                core::Duration lease_for) {
  if (auto writable = RequireWrite("HeartbeatJob"); !writable) return writable;
  if (lease_for <= core::Duration::zero()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid lease duration {} µs for job {}: use a positive duration",
                     lease_for.count(), job_id);
  }
  if (auto fenced = CheckFence(job_id, token); !fenced) return fenced;

  const int64_t now = ToMicros(clock_.Now());
  auto updated =
      session_.Execute("UPDATE jobs SET lease_expires = $2, updated_at = $3 WHERE id = $1",
                       {job_id, now + lease_for.count(), now});
  if (!updated) return std::unexpected(updated.error());
  return {};
}

core::Result<void> SqlTransaction::ReleaseJob(int64_t job_id, int64_t token) {
  if (auto writable = RequireWrite("ReleaseJob"); !writable) return writable;
  if (auto fenced = CheckFence(job_id, token); !fenced) return fenced;

  auto updated = session_.Execute(
      "UPDATE jobs SET state = 'queued', lease_owner = '', lease_expires = 0, updated_at = $2 "
      "WHERE id = $1",
      {job_id, ToMicros(clock_.Now())});
  if (!updated) return std::unexpected(updated.error());
  return {};
}

}  // namespace backout::store
