#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "ledger/hash.h"

namespace backout::ledger {

// RFC 6962 hashing: leaves are SHA-256(0x00 || entry), interior nodes SHA-256(0x01 || l || r).
Hash LeafHash(std::string_view entry_bytes);
Hash NodeHash(const Hash& left, const Hash& right);

// Counts interior-node hashes, so tests can bound the work an append does.
struct HashCounter {
  uint64_t node_hashes = 0;
};

// The right edge of a Merkle tree: the roots of its maximal perfect subtrees, largest first.
// It is all an append needs, so appending and computing the root cost O(log n) node hashes
// without reading earlier leaves. The store persists it with the tree size.
class CompactTree {
 public:
  CompactTree() = default;

  uint64_t size() const { return size_; }

  void Append(const Hash& leaf_hash, HashCounter* counter = nullptr);

  // Root of the whole tree; the SHA-256 of the empty string when the tree is empty.
  Hash Root(HashCounter* counter = nullptr) const;

  // Bytes to store: the concatenated subtree roots. Restore with the same size.
  std::string Serialize() const;
  static core::Result<CompactTree> Deserialize(uint64_t size, std::string_view bytes);

 private:
  uint64_t size_ = 0;
  std::vector<Hash> subtree_roots_;
};

// Root of the tree over `leaf_hashes` (RFC 6962 MTH).
Hash RootOf(std::span<const Hash> leaf_hashes);

// Audit path for leaf `index` in the tree over `leaf_hashes` (RFC 6962 PATH), bottom-up.
// Fails (kInvalidArgument) when index is not below the number of leaves. Costs O(n) hashes.
core::Result<std::vector<Hash>> InclusionProof(uint64_t index, std::span<const Hash> leaf_hashes);

// Proof that the tree of `old_size` leaves is a prefix of the tree over `leaf_hashes`
// (RFC 6962 PROOF / SUBPROOF), bottom-up. The proof is empty when old_size is 0 or equal to the
// number of leaves. Fails (kInvalidArgument) when old_size exceeds it. Costs O(n) hashes.
core::Result<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                 std::span<const Hash> leaf_hashes);

// Verification as RFC 9162 sections 2.1.3.2 and 2.1.4.2 describe, for verifiers without the leaves.
// VerifyConsistency also accepts old_size == new_size (empty proof, equal roots) and old_size == 0
// (empty proof), matching what ConsistencyProof produces.
bool VerifyInclusion(uint64_t index, uint64_t tree_size, const Hash& leaf_hash,
                     std::span<const Hash> proof, const Hash& root);
bool VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                       const Hash& new_root, std::span<const Hash> proof);

}  // namespace backout::ledger
