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
// right edge from ledger_state. On PostgreSQL it first takes the ledger's transaction-level
// advisory lock, which the commit releases. So sequence numbers follow the last committed entry
// without gaps, and an append never reads earlier leaves. Finish() stores the new tree state and,
// when asked, a signed checkpoint in the same transaction. Not thread-safe; lives as long as its
// transaction.
class LedgerAppender {
 public:
  // The tree's right edge and the key in force after the last committed append.
  struct State {
    ledger::CompactTree tree;
    std::string key_id;  // empty until the first key is introduced
  };

  LedgerAppender(SqlSession& session, const core::Clock& clock,
                 std::shared_ptr<const ledger::Signer> signer);

  // Sets a state this process committed earlier, to be called before the first append. Load()
  // uses it in place of ledger_state while the stored entries end where it ends, that is, while
  // no other process has appended since.
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

  // When this transaction appended entries: saves the tree state and, when `sign` is true or the
  // transaction rotated the key, inserts a checkpoint of the new size and root signed by the key
  // now in force. Returns whether it signed. Call once, just before commit.
  core::Result<bool> Finish(bool sign);

  // Signs a checkpoint of the whole log when the latest stored checkpoint is smaller, with the
  // key in force, which must be the signer's. Returns whether it signed. Call alone in its
  // transaction.
  core::Result<bool> SignPending();

 private:
  // Runs Append's checks and loads the state, introducing the signer's key on an empty log.
  core::Result<void> BeginAppend();
  core::Result<void> RequireSigner() const;
  core::Result<void> Load();
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
  bool rotated_ = false;  // a rotation's checkpoint is always signed, with the new key
};

}  // namespace backout::store
