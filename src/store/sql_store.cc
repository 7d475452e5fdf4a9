#include "store/sql_store.h"

#include <array>
#include <limits>
#include <utility>

#include <spdlog/spdlog.h>

#include "ledger/hash.h"
#include "store/store_internal.h"

namespace backout::store {
namespace {

using core::ErrorCode;
using core::MakeError;

struct TableOrder {
  std::string_view table;
  std::string_view key;  // ORDER BY clause: the primary key
};

constexpr std::array<TableOrder, 8> kTables = {{
    {"schema_version", "version"},
    {"objects", "kind, id"},
    {"counters", "name"},
    {"ledger_entries", "sequence"},
    {"ledger_state", "id"},
    {"ledger_checkpoints", "id"},
    {"ledger_keys", "key_id"},
    {"jobs", "id"},
}};

constexpr std::string_view kCheckpointColumns = "id, tree_size, root, time, key_id, signature";

core::Result<ledger::Checkpoint> CheckpointFromRow(const SqlRow& row) {
  auto id = ColumnInt(row, 0, "ledger_checkpoints.id");
  auto tree_size = ColumnInt(row, 1, "ledger_checkpoints.tree_size");
  auto root = ColumnText(row, 2, "ledger_checkpoints.root");
  auto time = ColumnInt(row, 3, "ledger_checkpoints.time");
  auto key_id = ColumnText(row, 4, "ledger_checkpoints.key_id");
  auto signature = ColumnText(row, 5, "ledger_checkpoints.signature");
  if (!id) return std::unexpected(id.error());
  if (!tree_size) return std::unexpected(tree_size.error());
  if (!root) return std::unexpected(root.error());
  if (!time) return std::unexpected(time.error());
  if (!key_id) return std::unexpected(key_id.error());
  if (!signature) return std::unexpected(signature.error());

  auto root_hash = ledger::HashFromHex(*root);
  if (!root_hash) {
    return MakeError(ErrorCode::kCorruption, "ledger checkpoint {} (tree size {}) has root {}: {}",
                     *id, *tree_size, *root, root_hash.error().message);
  }
  return ledger::Checkpoint{
      .tree_size = static_cast<uint64_t>(*tree_size),
      .root = *root_hash,
      .time = FromMicros(*time),
      .key_id = std::move(*key_id),
      .signature = std::move(*signature),
  };
}

// Encodes one row so that no two different rows encode alike: each column as its length and
// text, or a marker for NULL.
void AppendRowEncoding(const SqlRow& row, std::string& out) {
  for (const std::optional<std::string>& column : row) {
    if (column.has_value()) {
      out += fmt::format("{}:", column->size());
      out += *column;
    } else {
      out += "N";
    }
    out += ';';
  }
  out += '\n';
}

}  // namespace

SqlStore::SqlStore(const StoreOptions& options)
    : clock_(*options.clock),
      checkpoint_interval_(options.checkpoint_interval),
      on_job_enqueued_(options.on_job_enqueued),
      signer_(options.signer) {}

std::shared_ptr<const ledger::Signer> SqlStore::CurrentSigner() const {
  std::lock_guard lock(signer_mutex_);
  return signer_;
}

core::Result<void> SqlStore::Write(const TransactionBody& body) {
  return WriteWithTransaction([&](SqlTransaction& transaction) { return body(transaction); });
}

core::Result<void> SqlStore::WriteWithTransaction(
    const std::function<core::Result<void>(SqlTransaction&)>& body) {
  std::shared_lock rotation(rotation_mutex_);
  std::shared_ptr<const ledger::Signer> signer = CurrentSigner();
  const bool sign = SignatureDue();
  bool signed_checkpoint = false;
  bool enqueued_job = false;
  std::optional<LedgerAppender::State> ledger_state;
  auto written = InWriteTransaction([&](SqlSession& session) -> core::Result<void> {
    SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, signer);
    transaction.UseCommittedLedgerState(TakeLedgerState());
    if (auto done = body(transaction); !done) return done;
    auto finished = transaction.Finish(sign);
    if (!finished) return std::unexpected(finished.error());
    signed_checkpoint = *finished;
    enqueued_job = transaction.enqueued_job();
    ledger_state = transaction.LedgerStateToRemember();
    return {};
  });
  // Remembered only once committed: a rolled-back append must not be built on.
  if (written && ledger_state.has_value()) RememberLedgerState(std::move(ledger_state));
  if (written && signed_checkpoint) NoteSigned();
  if (written && enqueued_job && on_job_enqueued_) on_job_enqueued_();
  return written;
}

bool SqlStore::SignatureDue() const {
  if (checkpoint_interval_ <= core::Duration::zero()) return true;
  const int64_t last = last_signed_micros_.load(std::memory_order_relaxed);
  return ToMicros(clock_.Now()) - last >= checkpoint_interval_.count();
}

std::optional<LedgerAppender::State> SqlStore::TakeLedgerState() {
  std::lock_guard lock(ledger_state_mutex_);
  std::optional<LedgerAppender::State> state = std::move(ledger_state_);
  ledger_state_.reset();
  return state;
}

void SqlStore::RememberLedgerState(std::optional<LedgerAppender::State> state) {
  std::lock_guard lock(ledger_state_mutex_);
  ledger_state_ = std::move(state);
}

void SqlStore::NoteSigned() {
  last_signed_micros_.store(ToMicros(clock_.Now()), std::memory_order_relaxed);
}

core::Result<bool> SqlStore::HasUnsignedEntries() {
  bool unsigned_entries = false;
  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    // Checkpoint sizes never decrease, so the newest checkpoint by id is the largest. Both
    // subqueries are primary key lookups.
    auto result = session.Execute(
        "SELECT (SELECT max(sequence) FROM ledger_entries), "
        "(SELECT tree_size FROM ledger_checkpoints ORDER BY id DESC LIMIT 1)");
    if (!result) return std::unexpected(result.error());
    const SqlRow& row = result->rows.at(0);
    if (!row.at(0).has_value()) return {};  // an empty log
    auto last_sequence = ColumnInt(row, 0, "max(ledger_entries.sequence)");
    if (!last_sequence) return std::unexpected(last_sequence.error());
    if (!row.at(1).has_value()) {
      unsigned_entries = true;
      return {};
    }
    auto signed_size = ColumnInt(row, 1, "ledger_checkpoints.tree_size");
    if (!signed_size) return std::unexpected(signed_size.error());
    unsigned_entries = *signed_size < *last_sequence + 1;
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return unsigned_entries;
}

core::Result<std::optional<ledger::Checkpoint>> SqlStore::SignCheckpoint() {
  // The read comes first, so an idle interval takes no write lock. An entry committed after the
  // read began is signed by the next call, which the checkpoint thread makes within one interval.
  auto pending = HasUnsignedEntries();
  if (!pending) return std::unexpected(pending.error());
  if (*pending) {
    std::shared_lock rotation(rotation_mutex_);
    std::shared_ptr<const ledger::Signer> signer = CurrentSigner();
    if (signer != nullptr) {
      bool signed_checkpoint = false;
      std::optional<LedgerAppender::State> ledger_state;
      auto written = InWriteTransaction([&](SqlSession& session) -> core::Result<void> {
        SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, signer);
        // Saves reading ledger_state and folding in the entries appended since it was saved.
        transaction.UseCommittedLedgerState(TakeLedgerState());
        auto signed_now = transaction.SignPendingCheckpoint();
        if (!signed_now) return std::unexpected(signed_now.error());
        signed_checkpoint = *signed_now;
        ledger_state = transaction.LedgerStateToRemember();
        return {};
      });
      if (!written) return std::unexpected(written.error());
      if (ledger_state.has_value()) RememberLedgerState(std::move(ledger_state));
      if (signed_checkpoint) NoteSigned();
    }
  }
  return LatestCheckpoint();
}

core::Result<void> SqlStore::Read(const TransactionBody& body) {
  return InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    SqlTransaction transaction(session, SqlTransaction::Mode::kRead, clock_, nullptr);
    return body(transaction);
  });
}

core::Result<void> SqlStore::RotateLedgerKey(std::shared_ptr<const ledger::Signer> next) {
  std::unique_lock rotation(rotation_mutex_);
  std::shared_ptr<const ledger::Signer> current = CurrentSigner();
  std::optional<ledger::Entry> recorded;
  auto rotated = InWriteTransaction([&](SqlSession& session) -> core::Result<void> {
    SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, current);
    auto entry = transaction.RotateLedgerKey(next);
    if (!entry) return std::unexpected(entry.error());
    recorded = std::move(*entry);
    auto finished = transaction.Finish(true);
    if (!finished) return std::unexpected(finished.error());
    return {};
  });
  if (!rotated) return rotated;

  {
    std::lock_guard lock(signer_mutex_);
    signer_ = next;
  }
  spdlog::info("store: ledger key rotated from {} to {} at sequence {}",
               current->public_key().key_id(), next->public_key().key_id(), recorded->sequence);
  return {};
}

core::Result<std::optional<ledger::Checkpoint>> SqlStore::LatestCheckpoint() {
  std::optional<ledger::Checkpoint> latest;
  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    auto result = session.Execute(fmt::format(
        "SELECT {} FROM ledger_checkpoints ORDER BY id DESC LIMIT 1", kCheckpointColumns));
    if (!result) return std::unexpected(result.error());
    if (result->rows.empty()) return {};
    auto checkpoint = CheckpointFromRow(result->rows[0]);
    if (!checkpoint) return std::unexpected(checkpoint.error());
    latest = std::move(*checkpoint);
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return latest;
}

// Jobs.

core::Result<std::optional<JobLease>> SqlStore::LeaseJob(std::string_view owner,
                                                         const std::vector<std::string>& kinds,
                                                         core::Duration lease_for) {
  std::optional<JobLease> lease;
  auto leased = InWriteTransaction([&](SqlSession& session) -> core::Result<void> {
    SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, nullptr);
    auto found = transaction.LeaseJob(owner, kinds, lease_for);
    if (!found) return std::unexpected(found.error());
    lease = std::move(*found);
    return {};
  });
  if (!leased) return std::unexpected(leased.error());
  if (lease.has_value()) {
    spdlog::debug("store: job {} ({}) leased by {} with fencing token {}, attempt {}",
                  lease->job.id, lease->job.kind, owner, lease->fencing_token, lease->job.attempts);
  }
  return lease;
}

core::Result<void> SqlStore::HeartbeatJob(int64_t job_id, int64_t token, core::Duration lease_for) {
  return InWriteTransaction([&](SqlSession& session) {
    SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, nullptr);
    return transaction.HeartbeatJob(job_id, token, lease_for);
  });
}

core::Result<void> SqlStore::ReleaseJob(int64_t job_id, int64_t token) {
  return InWriteTransaction([&](SqlSession& session) {
    SqlTransaction transaction(session, SqlTransaction::Mode::kWrite, clock_, nullptr);
    return transaction.ReleaseJob(job_id, token);
  });
}

// Digests and the log reader.

core::Result<std::map<std::string, std::string>> SqlStore::TableDigests() {
  std::map<std::string, std::string> digests;
  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    for (const TableOrder& table : kTables) {
      auto result =
          session.Execute(fmt::format("SELECT * FROM {} ORDER BY {}", table.table, table.key));
      if (!result) return std::unexpected(result.error());
      std::string encoded;
      for (const SqlRow& row : result->rows) AppendRowEncoding(row, encoded);
      digests[std::string(table.table)] = ledger::ToHex(ledger::Sha256(encoded));
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return digests;
}

core::Result<uint64_t> SqlStore::EntryCount() {
  uint64_t count = 0;
  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    auto result = session.Execute("SELECT count(*) FROM ledger_entries");
    if (!result) return std::unexpected(result.error());
    auto rows = ColumnInt(result->rows.at(0), 0, "count(*)");
    if (!rows) return std::unexpected(rows.error());
    count = static_cast<uint64_t>(*rows);
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return count;
}

core::Result<std::vector<ledger::StoredEntry>> SqlStore::ReadEntries(uint64_t from,
                                                                     uint64_t count) {
  constexpr auto kMaxSequence = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  std::vector<ledger::StoredEntry> entries;
  if (from >= kMaxSequence || count == 0) return entries;
  const uint64_t end = count > kMaxSequence - from ? kMaxSequence : from + count;

  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    auto result = session.Execute(
        "SELECT sequence, encoded, leaf_hash FROM ledger_entries "
        "WHERE sequence >= $1 AND sequence < $2 ORDER BY sequence",
        {static_cast<int64_t>(from), static_cast<int64_t>(end)});
    if (!result) return std::unexpected(result.error());
    entries.reserve(result->rows.size());
    for (const SqlRow& row : result->rows) {
      auto sequence = ColumnInt(row, 0, "ledger_entries.sequence");
      auto encoded = ColumnText(row, 1, "ledger_entries.encoded");
      auto leaf_hash = ColumnText(row, 2, "ledger_entries.leaf_hash");
      if (!sequence) return std::unexpected(sequence.error());
      if (!encoded) return std::unexpected(encoded.error());
      if (!leaf_hash) return std::unexpected(leaf_hash.error());
      auto hash = ledger::HashFromHex(*leaf_hash);
      if (!hash) {
        return MakeError(ErrorCode::kCorruption, "ledger entry {} has leaf hash {}: {}", *sequence,
                         *leaf_hash, hash.error().message);
      }
      entries.push_back(ledger::StoredEntry{
          .sequence = static_cast<uint64_t>(*sequence),
          .encoded = std::move(*encoded),
          .leaf_hash = *hash,
      });
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return entries;
}

core::Result<std::vector<ledger::Checkpoint>> SqlStore::ReadCheckpoints() {
  std::vector<ledger::Checkpoint> checkpoints;
  auto read = InReadTransaction([&](SqlSession& session) -> core::Result<void> {
    auto result = session.Execute(
        fmt::format("SELECT {} FROM ledger_checkpoints ORDER BY id", kCheckpointColumns));
    if (!result) return std::unexpected(result.error());
    checkpoints.reserve(result->rows.size());
    for (const SqlRow& row : result->rows) {
      auto checkpoint = CheckpointFromRow(row);
      if (!checkpoint) return std::unexpected(checkpoint.error());
      checkpoints.push_back(std::move(*checkpoint));
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return checkpoints;
}

}  // namespace backout::store
