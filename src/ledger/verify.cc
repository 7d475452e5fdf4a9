#include "ledger/verify.h"

#include <algorithm>
#include <utility>

#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace backout::ledger {
namespace {

using core::ErrorCode;
using core::MakeError;

// Entries are read in chunks of this many, so memory contains one chunk of entry bytes at a time.
constexpr uint64_t kChunkSize = 10'000;

constexpr std::string_view kKeyIntroduced = "ledger.key_introduced";
constexpr std::string_view kKeyRotated = "ledger.key_rotated";

template <typename... Args>
std::unexpected<core::Error> CorruptAt(uint64_t position, fmt::format_string<Args...> format,
                                       Args&&... args) {
  return std::unexpected(core::Error{
      ErrorCode::kCorruption, fmt::format("ledger corrupt at entry {}: {}", position,
                                          fmt::format(format, std::forward<Args>(args)...))});
}

template <typename... Args>
std::unexpected<core::Error> CorruptIn(uint64_t first, uint64_t last,
                                       fmt::format_string<Args...> format, Args&&... args) {
  if (first == last) return CorruptAt(first, format, std::forward<Args>(args)...);
  return std::unexpected(core::Error{
      ErrorCode::kCorruption, fmt::format("ledger corrupt in entries {} to {}: {}", first, last,
                                          fmt::format(format, std::forward<Args>(args)...))});
}

// A key carried by a key entry's change, checked against the key id recorded beside it.
core::Result<PublicKey> KeyFromChange(const nlohmann::json& change, uint64_t position) {
  if (!change.contains("public_key") || !change.at("public_key").is_string()) {
    return CorruptAt(position, "key entry has no string 'public_key' in its change");
  }
  auto key = PublicKey::FromPem(change.at("public_key").get<std::string>());
  if (!key) return CorruptAt(position, "key entry's public_key: {}", key.error().message);
  const std::string recorded = change.contains("key_id") && change.at("key_id").is_string()
                                   ? change.at("key_id").get<std::string>()
                                   : std::string();
  if (recorded != key->key_id()) {
    return CorruptAt(position,
                     "key entry's key_id does not match its public key: expected {} (SHA-256 of "
                     "the raw key), actual '{}'",
                     key->key_id(), recorded);
  }
  return key;
}

class Verifier {
 public:
  Verifier(LogReader& reader, const VerifyOptions& options) : reader_(reader), options_(options) {}

  core::Result<VerifyReport> Run();

 private:
  core::Result<void> ReadCheckpoints();
  core::Result<void> CheckStoredEntry(const StoredEntry& stored, uint64_t position);
  core::Result<void> CheckKeyEntry(const Entry& entry, uint64_t position);
  core::Result<void> CheckCheckpointsAtSize(uint64_t size);
  core::Result<void> CheckExportedAtSize(uint64_t size);
  core::Result<void> CheckExportedBeyondLog();
  core::Result<void> CheckExportedSignature(const std::vector<PublicKey>& candidates);

  LogReader& reader_;
  const VerifyOptions& options_;
  uint64_t entry_count_ = 0;
  std::vector<Checkpoint> checkpoints_;
  size_t next_checkpoint_ = 0;
  // Size of the last checkpoint whose root matched: entries below it are vouched for.
  uint64_t verified_size_ = 0;
  CompactTree tree_;
  // All leaf hashes, kept only to prove consistency with an exported checkpoint.
  std::vector<Hash> leaves_;
  std::vector<PublicKey> keys_;  // keys in force so far, oldest first
};

core::Result<VerifyReport> Verifier::Run() {
  auto count = reader_.EntryCount();
  if (!count) return std::unexpected(count.error());
  entry_count_ = *count;
  auto checkpoints = ReadCheckpoints();
  if (!checkpoints) return std::unexpected(checkpoints.error());
  const bool keep_leaves = options_.exported_checkpoint.has_value();
  if (keep_leaves) leaves_.reserve(entry_count_);

  auto exported = CheckExportedAtSize(0);
  if (!exported) return std::unexpected(exported.error());

  // Stream the entries, checking each checkpoint as the tree reaches its size.
  uint64_t position = 0;
  while (position < entry_count_) {
    auto chunk = reader_.ReadEntries(position, std::min(kChunkSize, entry_count_ - position));
    if (!chunk) return std::unexpected(chunk.error());
    if (chunk->empty()) {
      return CorruptAt(position,
                       "entry {} is missing: the log reports {} entries, but no stored row has "
                       "sequence {} or above",
                       position, entry_count_, position);
    }
    for (const StoredEntry& stored : *chunk) {
      if (position >= entry_count_) break;
      auto checked = CheckStoredEntry(stored, position);
      if (!checked) return std::unexpected(checked.error());
      tree_.Append(stored.leaf_hash);
      if (keep_leaves) leaves_.push_back(stored.leaf_hash);
      ++position;

      auto at_size = CheckCheckpointsAtSize(position);
      if (!at_size) return std::unexpected(at_size.error());
      auto exported_at_size = CheckExportedAtSize(position);
      if (!exported_at_size) return std::unexpected(exported_at_size.error());
    }
  }

  // Checkpoints that sign more entries than the log contains: the tail was removed.
  if (next_checkpoint_ < checkpoints_.size()) {
    const Checkpoint& beyond = checkpoints_[next_checkpoint_];
    return CorruptIn(entry_count_, beyond.tree_size - 1,
                     "checkpoint {} signs tree size {}, but the log has only {} entries (the "
                     "tail was removed): expected root {} at size {}, actual root {} at size {}",
                     next_checkpoint_, beyond.tree_size, entry_count_, ToHex(beyond.root),
                     beyond.tree_size, ToHex(tree_.Root()), entry_count_);
  }
  auto beyond = CheckExportedBeyondLog();
  if (!beyond) return std::unexpected(beyond.error());

  VerifyReport report;
  report.entries = entry_count_;
  report.checkpoints = checkpoints_.size();
  report.root = tree_.Root();
  for (const PublicKey& key : keys_) report.key_ids.push_back(key.key_id());
  return report;
}

core::Result<void> Verifier::ReadCheckpoints() {
  auto checkpoints = reader_.ReadCheckpoints();
  if (!checkpoints) return std::unexpected(checkpoints.error());
  checkpoints_ = std::move(*checkpoints);
  for (size_t i = 0; i < checkpoints_.size(); ++i) {
    const uint64_t size = checkpoints_[i].tree_size;
    if (size == 0) {
      return CorruptAt(0,
                       "checkpoint {} signs an empty tree, but no key is in force before entry "
                       "0 introduces one",
                       i);
    }
    if (i > 0 && size < checkpoints_[i - 1].tree_size) {
      return CorruptAt(size,
                       "checkpoint {} signs tree size {} after checkpoint {} signed tree size "
                       "{}: a log only grows, so checkpoint sizes never decrease",
                       i, size, i - 1, checkpoints_[i - 1].tree_size);
    }
  }
  return {};
}

core::Result<void> Verifier::CheckStoredEntry(const StoredEntry& stored, uint64_t position) {
  // The row belongs at this position.
  if (stored.sequence > position) {
    return CorruptAt(position, "entry {} is missing: the next stored row has sequence {}", position,
                     stored.sequence);
  }
  if (stored.sequence < position) {
    return CorruptAt(position,
                     "a second stored row with sequence {} appears where entry {} belongs "
                     "(leaf hash {})",
                     stored.sequence, position, ToHex(stored.leaf_hash));
  }

  // The stored leaf hash covers the stored bytes.
  const Hash actual = LeafHash(stored.encoded);
  if (actual != stored.leaf_hash) {
    return CorruptAt(position,
                     "leaf hash mismatch: expected {} (the stored leaf hash), actual {} "
                     "(SHA-256 of 0x00 and the stored entry bytes)",
                     ToHex(stored.leaf_hash), ToHex(actual));
  }

  // The bytes are a well-formed entry for this position.
  auto entry = DecodeEntry(stored.encoded);
  if (!entry) {
    return CorruptAt(position, "{} (leaf hash {})", entry.error().message, ToHex(stored.leaf_hash));
  }
  if (entry->sequence != position) {
    return CorruptAt(position,
                     "the entry bytes record sequence {}: expected sequence {}, actual {} (leaf "
                     "hash {}); entries were reordered, inserted or deleted",
                     entry->sequence, position, entry->sequence, ToHex(stored.leaf_hash));
  }
  return CheckKeyEntry(*entry, position);
}

core::Result<void> Verifier::CheckKeyEntry(const Entry& entry, uint64_t position) {
  if (position == 0) {
    if (entry.action != kKeyIntroduced) {
      return CorruptAt(0, "the first entry has action '{}', but a log starts with '{}'",
                       entry.action, kKeyIntroduced);
    }
    auto key = KeyFromChange(entry.change, 0);
    if (!key) return std::unexpected(key.error());
    if (options_.trusted_key && options_.trusted_key->key_id() != key->key_id()) {
      return CorruptAt(0,
                       "the log introduces signing key {}, but the trusted public key is {}: "
                       "expected key id {}, actual {}; the log was re-signed with another key",
                       key->key_id(), options_.trusted_key->key_id(),
                       options_.trusted_key->key_id(), key->key_id());
    }
    keys_.push_back(std::move(*key));
    return {};
  }

  if (entry.action == kKeyIntroduced) {
    return CorruptAt(position,
                     "'{}' appears after entry 0; a later key must come in through '{}', signed "
                     "by the key in force",
                     kKeyIntroduced, kKeyRotated);
  }
  if (entry.action != kKeyRotated) return {};

  const PublicKey& current = keys_.back();
  const nlohmann::json& change = entry.change;
  const std::string previous =
      change.contains("previous_key_id") && change.at("previous_key_id").is_string()
          ? change.at("previous_key_id").get<std::string>()
          : "";
  if (previous != current.key_id()) {
    return CorruptAt(position,
                     "key rotation names previous key '{}': expected key id {} (the key in "
                     "force), actual '{}'",
                     previous, current.key_id(), previous);
  }
  auto key = KeyFromChange(change, position);
  if (!key) return std::unexpected(key.error());
  const std::string signature = change.contains("signature") && change.at("signature").is_string()
                                    ? change.at("signature").get<std::string>()
                                    : "";
  if (!current.Verify(change.at("public_key").get<std::string>(), signature)) {
    return CorruptAt(position,
                     "key rotation to {} is not signed by the key in force {}: its signature "
                     "over the new public key does not verify",
                     key->key_id(), current.key_id());
  }
  keys_.push_back(std::move(*key));
  return {};
}

core::Result<void> Verifier::CheckCheckpointsAtSize(uint64_t size) {
  while (next_checkpoint_ < checkpoints_.size() &&
         checkpoints_[next_checkpoint_].tree_size == size) {
    const Checkpoint& checkpoint = checkpoints_[next_checkpoint_];
    const PublicKey& key = keys_.back();

    // The signature first: a forged checkpoint's root is no evidence of anything.
    if (checkpoint.key_id != key.key_id()) {
      return CorruptAt(size - 1,
                       "checkpoint {} at tree size {} is signed by key {}: expected key id {} "
                       "(in force after entry {}), actual {}",
                       next_checkpoint_, size, checkpoint.key_id, key.key_id(), size - 1,
                       checkpoint.key_id);
    }
    if (!key.Verify(checkpoint)) {
      return CorruptAt(size - 1,
                       "checkpoint {} at tree size {} (root {}) has a signature that does not "
                       "verify with key {}: the checkpoint was forged or altered",
                       next_checkpoint_, size, ToHex(checkpoint.root), key.key_id());
    }

    const Hash root = tree_.Root();
    if (root != checkpoint.root) {
      return CorruptIn(verified_size_, size - 1,
                       "checkpoint {} at tree size {}: root mismatch: expected {} (signed), "
                       "actual {} (recomputed); an entry after the last matching checkpoint "
                       "(tree size {}) differs from what was signed",
                       next_checkpoint_, size, ToHex(checkpoint.root), ToHex(root), verified_size_);
    }
    verified_size_ = size;
    ++next_checkpoint_;
  }
  return {};
}

core::Result<void> Verifier::CheckExportedSignature(const std::vector<PublicKey>& candidates) {
  const Checkpoint& exported = *options_.exported_checkpoint;
  const PublicKey* signer = nullptr;
  for (const PublicKey& key : candidates) {
    if (key.key_id() == exported.key_id) signer = &key;
  }
  if (options_.trusted_key && options_.trusted_key->key_id() == exported.key_id) {
    signer = &*options_.trusted_key;
  }
  const uint64_t position = exported.tree_size == 0 ? 0 : exported.tree_size - 1;
  if (signer == nullptr) {
    std::vector<std::string> ids;
    for (const PublicKey& key : candidates) ids.push_back(key.key_id());
    return CorruptAt(position,
                     "the exported checkpoint (tree size {}) is signed by key {}, which the log "
                     "had not introduced by then (its keys: {}) and which is not the trusted key",
                     exported.tree_size, exported.key_id,
                     ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", ")));
  }
  if (!signer->Verify(exported)) {
    return CorruptAt(position,
                     "the exported checkpoint (tree size {}, root {}) has a signature that does "
                     "not verify with key {}: the file was altered",
                     exported.tree_size, ToHex(exported.root), signer->key_id());
  }
  return {};
}

core::Result<void> Verifier::CheckExportedAtSize(uint64_t size) {
  if (!options_.exported_checkpoint || options_.exported_checkpoint->tree_size != size) return {};
  const Checkpoint& exported = *options_.exported_checkpoint;

  // An exported checkpoint of the empty log can only be signed by a key introduced later.
  if (size > 0) {
    auto signature = CheckExportedSignature(keys_);
    if (!signature) return signature;
  }
  const Hash root = tree_.Root();
  if (root != exported.root) {
    return CorruptIn(0, size == 0 ? 0 : size - 1,
                     "the log's first {} entries do not match the exported checkpoint: expected "
                     "root {} (exported), actual {} (recomputed); the log was rewritten",
                     size, ToHex(exported.root), ToHex(root));
  }
  return {};
}

core::Result<void> Verifier::CheckExportedBeyondLog() {
  if (!options_.exported_checkpoint) return {};
  const Checkpoint& exported = *options_.exported_checkpoint;
  if (exported.tree_size == 0 || exported.tree_size > entry_count_) {
    auto signature = CheckExportedSignature(keys_);
    if (!signature) return signature;
  }
  if (exported.tree_size > entry_count_) {
    return CorruptIn(entry_count_, exported.tree_size - 1,
                     "the exported checkpoint signs tree size {}, but the log has only {} "
                     "entries (the tail was removed): expected root {} at size {}, actual root "
                     "{} at size {}",
                     exported.tree_size, entry_count_, ToHex(exported.root), exported.tree_size,
                     ToHex(tree_.Root()), entry_count_);
  }

  // The prefix roots matched; prove it the way a third party would, with a consistency proof.
  const Hash root = tree_.Root();
  auto proof = ConsistencyProof(exported.tree_size, leaves_);
  if (!proof) return std::unexpected(proof.error());
  if (!VerifyConsistency(exported.tree_size, entry_count_, exported.root, root, *proof)) {
    return CorruptIn(exported.tree_size, entry_count_ - 1,
                     "no valid consistency proof from the exported checkpoint (tree size {}, "
                     "root {}) to the log (tree size {}, root {})",
                     exported.tree_size, ToHex(exported.root), entry_count_, ToHex(root));
  }
  return {};
}

}  // namespace

core::Result<VerifyReport> VerifyLog(LogReader& reader, const VerifyOptions& options) {
  return Verifier(reader, options).Run();
}

}  // namespace backout::ledger
