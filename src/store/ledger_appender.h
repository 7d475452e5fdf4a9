#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "store/sql_session.h"
#include "store/store.h"

namespace backout::store {

// Appends ledger entries inside one write transaction. The first append loads the Merkle tree's
// right edge: the state saved in ledger_state, with the leaf hashes of the entries stored after
// it folded in. On PostgreSQL it first takes the ledger's transaction-level advisory lock, which
// the commit releases. So sequence numbers follow the last committed entry without gaps.
//
// An append writes only its entry row. Finish() saves the tree state when the transaction signs a
// checkpoint, introduces or rotates a key, had to fold entries in, or leaves the saved state
// kMaxUnsavedEntries or more entries behind. So ledger_state is never ahead of the entries, is at
// least as large as the newest checkpoint, and Load() folds in fewer than kMaxUnsavedEntries
// leaf hashes plus those of the last transaction. Not thread-safe; lives as long as its
// transaction.
class LedgerAppender {
 public:
  // The largest number of entries the saved state may lag behind before a write saves it.
  static constexpr uint64_t kMaxUnsavedEntries = 1024;

  // The tree's right edge and the key in force after the last committed append.
  struct State {
    ledger::CompactTree tree;
    std::string key_id;  // empty until the first key is introduced
    // The tree size in ledger_state, as this process last read or wrote it.
    uint64_t saved_size = 0;
  };

  LedgerAppender(SqlSession& session, const core::Clock& clock,
                 std::shared_ptr<const ledger::Signer> signer);

  // Sets a state this process committed earlier, to be called before the first append. Load()
  // uses it in place of ledger_state while the stored entries end where it ends, that is, while
  // no other process has appended since, and rejects the log when the entries end before it.
  void UseCommittedState(std::optional<State> committed) { committed_ = std::move(committed); }
  // Returns the state after this transaction, for UseCommittedState once it commits, or nothing
  // when no state was loaded or handed in.
  std::optional<State> StateToRemember() const;

  // Appends `record` as the next entry. An empty log first gets a "ledger.key_introduced" entry
  // for the signer's key. Fails when there is no signer, or when the signer's key is not the key
  // the log has in force.
  core::Result<ledger::Entry> Append(LedgerRecord record);
  // Append for an entry encoded before the transaction. Returns its sequence.
  core::Result<uint64_t> AppendPrepared(const ledger::PreparedEntry& prepared);

  // Appends a "ledger.key_rotated" entry introducing `next`, signed by the current key. Finish()
  // then signs the checkpoint with `next`.
  core::Result<ledger::Entry> Rotate(std::shared_ptr<const ledger::Signer> next);

  // Does nothing unless this transaction appended entries. Then inserts a checkpoint of the new
  // size and root, signed by the key now in force, when `sign` is true or the transaction rotated
  // the key. Saves the tree state in the cases the class comment lists. Returns whether it signed.
  // Call once, just before commit.
  core::Result<bool> Finish(bool sign);

  // Signs a checkpoint of the whole log when the latest stored checkpoint is smaller, with the
  // key in force, which must be the signer's, and saves the tree state with it. Returns whether
  // it signed. Call alone in its transaction.
  core::Result<bool> SignPending();

 private:
  // Runs Append's checks and loads the state, introducing the signer's key on an empty log.
  core::Result<void> BeginAppend();
  core::Result<void> RequireSigner() const;
  core::Result<void> Load();
  // Appends to `state` the leaf hashes of the entries from state.tree.size() up to `entries`.
  core::Result<void> FoldStoredEntries(State& state, uint64_t entries);
  core::Result<void> SaveState();
  core::Result<void> IntroduceSignerKey();
  core::Result<void> CheckSignerIsCurrent() const;
  core::Result<ledger::Entry> AppendEntry(LedgerRecord record);
  core::Result<void> InsertEntry(uint64_t sequence, const ledger::EncodedEntry& encoded);
  core::Result<void> InsertKey(const ledger::PublicKey& key, uint64_t sequence);
  core::Result<void> InsertCheckpoint();

  SqlSession& session_;
  const core::Clock& clock_;
  std::shared_ptr<const ledger::Signer> signer_;
  std::optional<State> state_;      // loaded by the first append
  std::optional<State> committed_;  // see UseCommittedState
  bool appended_ = false;
  bool rotated_ = false;   // a rotation's checkpoint is always signed, with the new key
  bool save_due_ = false;  // a key was introduced, or Load() folded entries into the saved state
};

}  // namespace backout::store
