// Read access to the ledger: the latest signed checkpoint and Merkle proofs.
#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/try.h"
#include "ledger/merkle.h"

namespace backout::app {
namespace {

constexpr uint64_t kReadChunk = 4096;

nlohmann::json HexList(const std::vector<ledger::Hash>& hashes) {
  nlohmann::json out = nlohmann::json::array();
  for (const ledger::Hash& hash : hashes) out.push_back(ledger::ToHex(hash));
  return out;
}

core::Result<std::vector<ledger::Hash>> LeafHashes(store::Store& store, uint64_t count) {
  std::vector<ledger::Hash> leaves;
  leaves.reserve(count);
  while (leaves.size() < count) {
    BACKOUT_TRY(auto entries,
                store.ReadEntries(leaves.size(), std::min(kReadChunk, count - leaves.size())));
    if (entries.empty()) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "the ledger ends at entry {} but reports {} entries", leaves.size(),
                             count);
    }
    for (const ledger::StoredEntry& entry : entries) leaves.push_back(entry.leaf_hash);
  }
  return leaves;
}

}  // namespace

core::Result<nlohmann::json> ControlPlane::LedgerCheckpoint(const Caller& caller) {
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "ledger.checkpoint", "ledger", [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  BACKOUT_TRY(auto checkpoint, store_.SignCheckpoint());
  if (!checkpoint) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "the ledger has no checkpoint yet; one is signed with the first entry");
  }
  return checkpoint->ToJson();
}

core::Result<nlohmann::json> ControlPlane::LedgerProof(const Caller& caller, uint64_t entry) {
  const auto current = settings();
  BACKOUT_CHECK(
      Read(caller, "ledger.proof", fmt::format("ledger/{}", entry), [&](store::Transaction&) {
        return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
      }));
  BACKOUT_TRY(uint64_t count, store_.EntryCount());
  if (entry >= count) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "ledger entry {} not found; the ledger has {} entries (0 to {})", entry,
                           count, count == 0 ? 0 : count - 1);
  }
  BACKOUT_TRY(auto leaves, LeafHashes(store_, count));
  BACKOUT_TRY(auto proof, ledger::InclusionProof(entry, leaves));
  BACKOUT_TRY(auto stored, store_.ReadEntries(entry, 1));
  return nlohmann::json{{"entry", entry},
                        {"tree_size", count},
                        {"leaf_hash", ledger::ToHex(leaves[entry])},
                        {"encoded", stored.empty() ? "" : stored.front().encoded},
                        {"proof", HexList(proof)},
                        {"root", ledger::ToHex(ledger::RootOf(leaves))}};
}

core::Result<nlohmann::json> ControlPlane::LedgerConsistency(const Caller& caller, uint64_t from,
                                                             uint64_t to) {
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "ledger.consistency", "ledger", [&](store::Transaction&) {
    return core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
  }));
  BACKOUT_TRY(uint64_t count, store_.EntryCount());
  if (from == 0 || from > to || to > count) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "a consistency proof needs 1 <= from <= to <= {} (the tree size); got "
                           "from={} to={}",
                           count, from, to);
  }
  BACKOUT_TRY(auto leaves, LeafHashes(store_, to));
  const std::span<const ledger::Hash> all(leaves);
  BACKOUT_TRY(auto proof, ledger::ConsistencyProof(from, all));
  return nlohmann::json{{"from", from},
                        {"to", to},
                        {"proof", HexList(proof)},
                        {"old_root", ledger::ToHex(ledger::RootOf(all.first(from)))},
                        {"new_root", ledger::ToHex(ledger::RootOf(all))}};
}

}  // namespace backout::app
