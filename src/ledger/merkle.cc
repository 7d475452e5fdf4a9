#include "ledger/merkle.h"

#include <bit>
#include <cstring>

namespace backout::ledger {
namespace {

using core::ErrorCode;
using core::MakeError;

std::string_view AsBytes(const Hash& hash) {
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

// Largest power of two strictly less than `n`, for n >= 2: the size of the left subtree
// RFC 6962 splits a tree of n leaves into.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// RFC 6962 PATH(m, D[n]), appended bottom-up to `proof`.
void AppendPath(uint64_t index, std::span<const Hash> leaves, std::vector<Hash>& proof) {
  if (leaves.size() <= 1) return;
  const uint64_t k = SplitPoint(leaves.size());
  if (index < k) {
    AppendPath(index, leaves.first(k), proof);
    proof.push_back(RootOf(leaves.subspan(k)));
  } else {
    AppendPath(index - k, leaves.subspan(k), proof);
    proof.push_back(RootOf(leaves.first(k)));
  }
}

// RFC 6962 SUBPROOF(m, D[n], b), appended bottom-up to `proof`.
void AppendSubproof(uint64_t m, std::span<const Hash> leaves, bool complete_subtree,
                    std::vector<Hash>& proof) {
  const uint64_t n = leaves.size();
  if (m == n) {
    if (!complete_subtree) proof.push_back(RootOf(leaves));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    AppendSubproof(m, leaves.first(k), complete_subtree, proof);
    proof.push_back(RootOf(leaves.subspan(k)));
  } else {
    AppendSubproof(m - k, leaves.subspan(k), false, proof);
    proof.push_back(RootOf(leaves.first(k)));
  }
}

// Shifts both numbers right until `first` is odd or zero (RFC 9162's "right-shift equally").
void ShiftUntilOddOrZero(uint64_t& first, uint64_t& second) {
  while (first != 0 && (first & 1) == 0) {
    first >>= 1;
    second >>= 1;
  }
}

}  // namespace

Hash LeafHash(std::string_view entry_bytes) {
  static constexpr char kLeafPrefix = 0x00;
  return Sha256({std::string_view(&kLeafPrefix, 1), entry_bytes});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  static constexpr char kNodePrefix = 0x01;
  return Sha256({std::string_view(&kNodePrefix, 1), AsBytes(left), AsBytes(right)});
}

void CompactTree::Append(const Hash& leaf_hash, HashCounter* counter) {
  // Each trailing one bit of the old size is a perfect subtree that the new leaf completes.
  subtree_roots_.push_back(leaf_hash);
  for (uint64_t bits = size_; (bits & 1) != 0; bits >>= 1) {
    const Hash right = subtree_roots_.back();
    subtree_roots_.pop_back();
    subtree_roots_.back() = NodeHash(subtree_roots_.back(), right);
    if (counter != nullptr) ++counter->node_hashes;
  }
  ++size_;
}

Hash CompactTree::Root(HashCounter* counter) const {
  if (subtree_roots_.empty()) return Sha256(std::string_view());
  // Fold from the smallest subtree: RFC 6962 hashes the right part of an uneven tree first.
  Hash root = subtree_roots_.back();
  for (size_t i = subtree_roots_.size() - 1; i-- > 0;) {
    root = NodeHash(subtree_roots_[i], root);
    if (counter != nullptr) ++counter->node_hashes;
  }
  return root;
}

std::string CompactTree::Serialize() const {
  std::string bytes;
  bytes.reserve(subtree_roots_.size() * sizeof(Hash));
  for (const Hash& hash : subtree_roots_) bytes += AsBytes(hash);
  return bytes;
}

core::Result<CompactTree> CompactTree::Deserialize(uint64_t size, std::string_view bytes) {
  const size_t expected = static_cast<size_t>(std::popcount(size)) * sizeof(Hash);
  if (bytes.size() != expected) {
    return MakeError(ErrorCode::kCorruption,
                     "stored Merkle tree state for {} leaves has {} bytes, expected {} (one "
                     "32-byte root per one bit of the size); rebuild it from the leaf hashes",
                     size, bytes.size(), expected);
  }
  CompactTree tree;
  tree.size_ = size;
  tree.subtree_roots_.resize(std::popcount(size));
  for (size_t i = 0; i < tree.subtree_roots_.size(); ++i) {
    std::memcpy(tree.subtree_roots_[i].data(), bytes.data() + i * sizeof(Hash), sizeof(Hash));
  }
  return tree;
}

Hash RootOf(std::span<const Hash> leaf_hashes) {
  CompactTree tree;
  for (const Hash& leaf : leaf_hashes) tree.Append(leaf);
  return tree.Root();
}

core::Result<std::vector<Hash>> InclusionProof(uint64_t index, std::span<const Hash> leaf_hashes) {
  if (index >= leaf_hashes.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no inclusion proof for entry {}: the tree has {} entries", index,
                     leaf_hashes.size());
  }
  std::vector<Hash> proof;
  AppendPath(index, leaf_hashes, proof);
  return proof;
}

core::Result<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                 std::span<const Hash> leaf_hashes) {
  if (old_size > leaf_hashes.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no consistency proof from size {}: the tree has only {} entries", old_size,
                     leaf_hashes.size());
  }
  std::vector<Hash> proof;
  // The empty tree is a prefix of every tree, and a tree of itself; both proofs are empty.
  if (old_size == 0 || old_size == leaf_hashes.size()) return proof;
  AppendSubproof(old_size, leaf_hashes, true, proof);
  return proof;
}

bool VerifyInclusion(uint64_t index, uint64_t tree_size, const Hash& leaf_hash,
                     std::span<const Hash> proof, const Hash& root) {
  if (index >= tree_size) return false;
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) ShiftUntilOddOrZero(fn, sn);
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                       const Hash& new_root, std::span<const Hash> proof) {
  if (old_size > new_size) return false;
  if (old_size == new_size) return proof.empty() && old_root == new_root;
  if (old_size == 0) return proof.empty();
  if (proof.empty()) return false;

  // When the old tree is a perfect subtree of the new one, its root is the proof's first node.
  std::vector<Hash> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(old_size)) path.push_back(old_root);
  path.insert(path.end(), proof.begin(), proof.end());

  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path.front();
  Hash sr = path.front();
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) ShiftUntilOddOrZero(fn, sn);
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == old_root && sr == new_root && sn == 0;
}

}  // namespace backout::ledger
