#include "store/ledger_appender.h"

#include <utility>

#include "ledger/hash.h"
#include "store/store_internal.h"

namespace backout::store {
namespace {

using core::ErrorCode;
using core::MakeError;

constexpr std::string_view kSystemActor = "system";

std::string KeySubject(const ledger::PublicKey& key) { return "ledger-key/" + key.key_id(); }

}  // namespace

LedgerAppender::LedgerAppender(SqlSession& session, const core::Clock& clock,
                               std::shared_ptr<const ledger::Signer> signer)
    : session_(session), clock_(clock), signer_(std::move(signer)) {}

core::Result<ledger::Entry> LedgerAppender::Append(LedgerRecord record) {
  if (auto ready = BeginAppend(); !ready) return std::unexpected(ready.error());
  return AppendEntry(std::move(record));
}

core::Result<uint64_t> LedgerAppender::AppendPrepared(const ledger::PreparedEntry& prepared) {
  if (auto ready = BeginAppend(); !ready) return std::unexpected(ready.error());
  const uint64_t sequence = state_->tree.size();
  auto encoded = prepared.Encode(sequence, clock_.Now());
  if (!encoded) return std::unexpected(encoded.error());
  if (auto inserted = InsertEntry(sequence, *encoded); !inserted) {
    return std::unexpected(inserted.error());
  }
  return sequence;
}

core::Result<void> LedgerAppender::BeginAppend() {
  if (auto ready = RequireSigner(); !ready) return ready;
  if (auto loaded = Load(); !loaded) return loaded;

  if (state_->key_id.empty()) {
    if (auto introduced = IntroduceSignerKey(); !introduced) return introduced;
  }
  return CheckSignerIsCurrent();
}

core::Result<ledger::Entry> LedgerAppender::Rotate(std::shared_ptr<const ledger::Signer> next) {
  if (next == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "ledger key rotation needs the next key");
  }
  if (auto ready = RequireSigner(); !ready) return std::unexpected(ready.error());
  if (auto loaded = Load(); !loaded) return std::unexpected(loaded.error());

  if (state_->key_id.empty()) {
    if (auto introduced = IntroduceSignerKey(); !introduced) {
      return std::unexpected(introduced.error());
    }
  }
  if (auto current = CheckSignerIsCurrent(); !current) return std::unexpected(current.error());

  // A key that signed earlier would make old and new checkpoints indistinguishable by key.
  const ledger::PublicKey& next_key = next->public_key();
  auto used = session_.Execute("SELECT introduced_at_sequence FROM ledger_keys WHERE key_id = $1",
                               {next_key.key_id()});
  if (!used) return std::unexpected(used.error());
  if (!used->rows.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "ledger key {} was already introduced at sequence {}; rotate to a newly "
                     "generated key",
                     next_key.key_id(), used->rows[0][0].value_or("?"));
  }

  auto entry = AppendEntry(LedgerRecord{
      .actor = std::string(kSystemActor),
      .action = "ledger.key_rotated",
      .subject = KeySubject(next_key),
      .change = ledger::KeyRotatedChange(*signer_, next_key),
  });
  if (!entry) return entry;
  if (auto inserted = InsertKey(next_key, entry->sequence); !inserted) {
    return std::unexpected(inserted.error());
  }
  state_->key_id = next_key.key_id();
  signer_ = std::move(next);
  rotated_ = true;
  return entry;
}

core::Result<bool> LedgerAppender::Finish(bool sign) {
  if (!appended_) return false;

  const bool signing = sign || rotated_;
  const uint64_t unsaved = state_->tree.size() - state_->saved_size;
  if (signing || save_due_ || unsaved >= kMaxUnsavedEntries) {
    if (auto saved = SaveState(); !saved) return std::unexpected(saved.error());
  }
  appended_ = false;
  if (!signing) return false;
  if (auto inserted = InsertCheckpoint(); !inserted) return std::unexpected(inserted.error());
  return true;
}

core::Result<bool> LedgerAppender::SignPending() {
  if (auto ready = RequireSigner(); !ready) return std::unexpected(ready.error());
  if (auto loaded = Load(); !loaded) return std::unexpected(loaded.error());
  if (state_->tree.size() == 0) return false;

  // Checkpoints are written under the ledger's write lock as the tree grows, so the newest row
  // by id has the largest size. Reading it by the primary key avoids a scan of the table.
  auto latest =
      session_.Execute("SELECT tree_size FROM ledger_checkpoints ORDER BY id DESC LIMIT 1");
  if (!latest) return std::unexpected(latest.error());
  if (!latest->rows.empty() && latest->rows[0].at(0).has_value()) {
    auto signed_size = ColumnInt(latest->rows[0], 0, "ledger_checkpoints.tree_size");
    if (!signed_size) return std::unexpected(signed_size.error());
    if (static_cast<uint64_t>(*signed_size) >= state_->tree.size()) return false;
  }
  if (auto current = CheckSignerIsCurrent(); !current) return std::unexpected(current.error());
  if (auto inserted = InsertCheckpoint(); !inserted) return std::unexpected(inserted.error());
  if (auto saved = SaveState(); !saved) return std::unexpected(saved.error());
  return true;
}

core::Result<void> LedgerAppender::SaveState() {
  const ledger::CompactTree& tree = state_->tree;
  auto saved = session_.Execute(
      "INSERT INTO ledger_state (id, tree_size, compact_tree, key_id) VALUES (1, $1, $2, $3) "
      "ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, "
      "compact_tree = excluded.compact_tree, key_id = excluded.key_id",
      {static_cast<int64_t>(tree.size()), HexEncode(tree.Serialize()), state_->key_id});
  if (!saved) return std::unexpected(saved.error());
  state_->saved_size = tree.size();
  save_due_ = false;
  return {};
}

core::Result<void> LedgerAppender::InsertCheckpoint() {
  const ledger::CompactTree& tree = state_->tree;
  const ledger::Checkpoint checkpoint = signer_->Sign(tree.size(), tree.Root(), clock_.Now());
  auto inserted = session_.Execute(
      "INSERT INTO ledger_checkpoints (tree_size, root, time, key_id, signature) "
      "VALUES ($1, $2, $3, $4, $5)",
      {static_cast<int64_t>(checkpoint.tree_size), ledger::ToHex(checkpoint.root),
       ToMicros(checkpoint.time), checkpoint.key_id, checkpoint.signature});
  if (!inserted) return std::unexpected(inserted.error());
  return {};
}

std::optional<LedgerAppender::State> LedgerAppender::StateToRemember() const {
  // A loaded state without appends is the committed one too; without a load, the state handed
  // in is still unused and still good.
  if (state_.has_value()) return state_;
  return committed_;
}

core::Result<void> LedgerAppender::RequireSigner() const {
  if (signer_ == nullptr) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "cannot append to the ledger: the store was opened without a signing key; "
                     "open it with the ledger key to record changes");
  }
  return {};
}

core::Result<void> LedgerAppender::Load() {
  if (state_.has_value()) return {};

  if (session_.dialect() == Dialect::kPostgresql) {
    // Held until commit or rollback, so the next writer reads the state this one leaves.
    auto locked = session_.Execute("SELECT pg_advisory_xact_lock($1)", {kLedgerLockKey});
    if (!locked) return std::unexpected(locked.error());
  }

  // One index lookup. The entries never shrink, so a state that ends past them means that
  // stored entries were removed.
  auto last = session_.Execute("SELECT max(sequence) FROM ledger_entries");
  if (!last) return std::unexpected(last.error());
  uint64_t entries = 0;
  if (last->rows.at(0).at(0).has_value()) {
    auto last_sequence = ColumnInt(last->rows[0], 0, "max(ledger_entries.sequence)");
    if (!last_sequence) return std::unexpected(last_sequence.error());
    entries = static_cast<uint64_t>(*last_sequence) + 1;
  }
  if (committed_.has_value() && committed_->tree.size() == entries && entries > 0) {
    state_ = std::move(*committed_);
    committed_.reset();
    return {};
  }
  if (committed_.has_value() && committed_->tree.size() > entries) {
    return MakeError(ErrorCode::kCorruption,
                     "the ledger this process committed has {} entries but the stored entries "
                     "end at {} entries, so stored entries were removed; the append is rejected: "
                     "run `backout ledger verify` to find the damage",
                     committed_->tree.size(), entries);
  }
  committed_.reset();  // another process appended since: read the stored state

  auto stored =
      session_.Execute("SELECT tree_size, compact_tree, key_id FROM ledger_state WHERE id = 1");
  if (!stored) return std::unexpected(stored.error());
  State state;
  if (!stored->rows.empty()) {
    const SqlRow& row = stored->rows[0];
    auto size = ColumnInt(row, 0, "ledger_state.tree_size");
    auto tree_hex = ColumnText(row, 1, "ledger_state.compact_tree");
    auto key_id = ColumnText(row, 2, "ledger_state.key_id");
    if (!size) return std::unexpected(size.error());
    if (!tree_hex) return std::unexpected(tree_hex.error());
    if (!key_id) return std::unexpected(key_id.error());
    auto tree_bytes = HexDecode(*tree_hex);
    if (!tree_bytes) return std::unexpected(tree_bytes.error().WithContext("ledger_state"));
    auto tree = ledger::CompactTree::Deserialize(static_cast<uint64_t>(*size), *tree_bytes);
    if (!tree) return std::unexpected(tree.error());
    state.tree = std::move(*tree);
    state.key_id = std::move(*key_id);
    state.saved_size = state.tree.size();
  }

  // The key introduction saves the state, so entries without a saved state have no known key.
  if (entries > state.tree.size() && (stored->rows.empty() || state.key_id.empty())) {
    return MakeError(ErrorCode::kCorruption,
                     "ledger state is missing or names no key, but the stored entries end at {} "
                     "entries; the append is rejected: run `backout ledger verify` to find the "
                     "damage",
                     entries);
  }
  if (entries < state.tree.size()) {
    return MakeError(ErrorCode::kCorruption,
                     "ledger state records {} entries but the stored entries end at {} entries; "
                     "refusing to append: run `backout ledger verify` to find the damage",
                     state.tree.size(), entries);
  }
  if (entries > state.tree.size()) {
    if (auto folded = FoldStoredEntries(state, entries); !folded) return folded;
    save_due_ = true;  // so the next process that loads folds in fewer entries
  }

  state_ = std::move(state);
  return {};
}

core::Result<void> LedgerAppender::FoldStoredEntries(State& state, uint64_t entries) {
  const uint64_t saved_size = state.tree.size();
  // A transaction that introduces or rotates a key saves the state, so a key entry after the
  // saved state means ledger_state was set back, and its key_id would be stale.
  auto key = session_.Execute(
      "SELECT key_id, introduced_at_sequence FROM ledger_keys WHERE introduced_at_sequence >= $1 "
      "ORDER BY introduced_at_sequence LIMIT 1",
      {static_cast<int64_t>(saved_size)});
  if (!key) return std::unexpected(key.error());
  if (!key->rows.empty()) {
    return MakeError(ErrorCode::kCorruption,
                     "ledger state records {} entries with key {}, but key {} was introduced "
                     "later, at sequence {}; the append is rejected: run `backout ledger verify` "
                     "to find the damage",
                     saved_size, state.key_id, key->rows[0].at(0).value_or("?"),
                     key->rows[0].at(1).value_or("?"));
  }

  auto rows = session_.Execute(
      "SELECT sequence, leaf_hash FROM ledger_entries WHERE sequence >= $1 AND sequence < $2 "
      "ORDER BY sequence",
      {static_cast<int64_t>(saved_size), static_cast<int64_t>(entries)});
  if (!rows) return std::unexpected(rows.error());
  for (const SqlRow& row : rows->rows) {
    auto sequence = ColumnInt(row, 0, "ledger_entries.sequence");
    auto leaf_hex = ColumnText(row, 1, "ledger_entries.leaf_hash");
    if (!sequence) return std::unexpected(sequence.error());
    if (!leaf_hex) return std::unexpected(leaf_hex.error());
    if (static_cast<uint64_t>(*sequence) != state.tree.size()) {
      return MakeError(ErrorCode::kCorruption,
                       "ledger entry {} is missing: the stored entries after the saved ledger "
                       "state ({} entries) go on at sequence {}; the append is rejected: run "
                       "`backout ledger verify` to find the damage",
                       state.tree.size(), saved_size, *sequence);
    }
    auto leaf = ledger::HashFromHex(*leaf_hex);
    if (!leaf) {
      return MakeError(ErrorCode::kCorruption, "ledger entry {} has leaf hash {}: {}", *sequence,
                       *leaf_hex, leaf.error().message);
    }
    state.tree.Append(*leaf);
  }
  // max(sequence) ended at `entries`, and every row before it was contiguous from saved_size.
  return {};
}

core::Result<void> LedgerAppender::IntroduceSignerKey() {
  const ledger::PublicKey& key = signer_->public_key();
  auto entry = AppendEntry(LedgerRecord{
      .actor = std::string(kSystemActor),
      .action = "ledger.key_introduced",
      .subject = KeySubject(key),
      .change = ledger::KeyIntroducedChange(key),
  });
  if (!entry) return std::unexpected(entry.error());
  if (auto inserted = InsertKey(key, entry->sequence); !inserted) return inserted;
  state_->key_id = key.key_id();
  save_due_ = true;
  return {};
}

core::Result<void> LedgerAppender::CheckSignerIsCurrent() const {
  const std::string& signer_key = signer_->public_key().key_id();
  if (signer_key != state_->key_id) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the ledger signing key {} is not the key in force for this log ({}); the "
                     "key file was probably replaced: restore the file holding key {}, or "
                     "introduce a new key by rotating from the old one",
                     signer_key, state_->key_id, state_->key_id);
  }
  return {};
}

core::Result<ledger::Entry> LedgerAppender::AppendEntry(LedgerRecord record) {
  ledger::Entry entry{
      .sequence = state_->tree.size(),
      .time = clock_.Now(),
      .actor = std::move(record.actor),
      .action = std::move(record.action),
      .subject = std::move(record.subject),
      .change = std::move(record.change),
  };
  auto encoded = ledger::EncodeEntry(entry);
  if (!encoded) return std::unexpected(encoded.error());
  const ledger::Hash leaf_hash = ledger::LeafHash(*encoded);
  auto inserted = InsertEntry(
      entry.sequence, ledger::EncodedEntry{.bytes = std::move(*encoded), .leaf_hash = leaf_hash});
  if (!inserted) return std::unexpected(inserted.error());
  return entry;
}

core::Result<void> LedgerAppender::InsertEntry(uint64_t sequence,
                                               const ledger::EncodedEntry& encoded) {
  auto inserted = session_.Execute(
      "INSERT INTO ledger_entries (sequence, encoded, leaf_hash) VALUES ($1, $2, $3)",
      {static_cast<int64_t>(sequence), encoded.bytes, ledger::ToHex(encoded.leaf_hash)});
  if (!inserted) return std::unexpected(inserted.error());

  state_->tree.Append(encoded.leaf_hash);
  appended_ = true;
  return {};
}

core::Result<void> LedgerAppender::InsertKey(const ledger::PublicKey& key, uint64_t sequence) {
  auto inserted = session_.Execute(
      "INSERT INTO ledger_keys (key_id, public_key_pem, introduced_at_sequence) "
      "VALUES ($1, $2, $3)",
      {key.key_id(), key.pem(), static_cast<int64_t>(sequence)});
  if (!inserted) return std::unexpected(inserted.error());
  return {};
}

}  // namespace backout::store
