#include "ledger/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace backout::ledger {
namespace {

Hash FromHex(std::string_view hex) {
  auto hash = HashFromHex(hex);
  EXPECT_TRUE(hash.has_value()) << hex;
  return hash.value_or(Hash{});
}

std::vector<Hash> FromHexList(std::initializer_list<std::string_view> hexes) {
  std::vector<Hash> hashes;
  for (std::string_view hex : hexes) hashes.push_back(FromHex(hex));
  return hashes;
}

// Test data published with RFC 6962 implementations: the leaf inputs and root hashes of
// transparency-dev/merkle testonly/constants.go, and the proofs of its proof/verify_test.go
// (there with 1-based leaf numbers, here 0-based indices). Data only.
const std::vector<std::string> kReferenceLeaves = {
    std::string(""),
    std::string("\x00", 1),
    std::string("\x10"),
    std::string("\x20\x21"),
    std::string("\x30\x31"),
    std::string("\x40\x41\x42\x43"),
    std::string("\x50\x51\x52\x53\x54\x55\x56\x57"),
    std::string("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"),
};

// Root hashes for tree sizes 0 to 8.
const std::vector<std::string_view> kReferenceRoots = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct InclusionVector {
  uint64_t index;
  uint64_t size;
  std::vector<Hash> proof;
};

struct ConsistencyVector {
  uint64_t old_size;
  uint64_t new_size;
  std::vector<Hash> proof;
};

std::vector<InclusionVector> ReferenceInclusionProofs() {
  return {
      {0, 1, {}},
      {0, 8,
       FromHexList({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
      {5, 8,
       FromHexList({"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
      {2, 3, FromHexList({"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"})},
      {1, 5,
       FromHexList({"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
  };
}

std::vector<ConsistencyVector> ReferenceConsistencyProofs() {
  return {
      {1, 1, {}},
      {1, 8,
       FromHexList({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
      {6, 8,
       FromHexList({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
      {2, 5,
       FromHexList({"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
      {6, 7,
       FromHexList({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
  };
}

std::vector<Hash> ReferenceLeafHashes() {
  std::vector<Hash> hashes;
  for (const std::string& leaf : kReferenceLeaves) hashes.push_back(LeafHash(leaf));
  return hashes;
}

std::span<const Hash> Prefix(const std::vector<Hash>& hashes, uint64_t size) {
  return std::span<const Hash>(hashes).first(size);
}

// A deliberately naive RFC 6962 implementation, written from the definitions of MTH, PATH and
// SUBPROOF with vectors copied at every step, to check the production code against.
namespace naive {

uint64_t Split(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

std::vector<Hash> Slice(const std::vector<Hash>& leaves, uint64_t begin, uint64_t end) {
  return std::vector<Hash>(leaves.begin() + begin, leaves.begin() + end);
}

Hash Mth(const std::vector<Hash>& leaves) {
  if (leaves.empty()) return Sha256("");
  if (leaves.size() == 1) return leaves[0];
  const uint64_t k = Split(leaves.size());
  return NodeHash(Mth(Slice(leaves, 0, k)), Mth(Slice(leaves, k, leaves.size())));
}

std::vector<Hash> Path(uint64_t m, const std::vector<Hash>& leaves) {
  const uint64_t n = leaves.size();
  if (n <= 1) return {};
  const uint64_t k = Split(n);
  std::vector<Hash> proof;
  if (m < k) {
    proof = Path(m, Slice(leaves, 0, k));
    proof.push_back(Mth(Slice(leaves, k, n)));
  } else {
    proof = Path(m - k, Slice(leaves, k, n));
    proof.push_back(Mth(Slice(leaves, 0, k)));
  }
  return proof;
}

std::vector<Hash> Subproof(uint64_t m, const std::vector<Hash>& leaves, bool b) {
  const uint64_t n = leaves.size();
  if (m == n) {
    if (b) return {};
    return {Mth(leaves)};
  }
  const uint64_t k = Split(n);
  std::vector<Hash> proof;
  if (m <= k) {
    proof = Subproof(m, Slice(leaves, 0, k), b);
    proof.push_back(Mth(Slice(leaves, k, n)));
  } else {
    proof = Subproof(m - k, Slice(leaves, k, n), false);
    proof.push_back(Mth(Slice(leaves, 0, k)));
  }
  return proof;
}

}  // namespace naive

std::vector<Hash> RandomLeaves(std::mt19937_64& random, uint64_t count) {
  std::vector<Hash> leaves;
  leaves.reserve(count);
  for (uint64_t i = 0; i < count; ++i) leaves.push_back(LeafHash(std::to_string(random())));
  return leaves;
}

TEST(MerkleTest, LeafAndNodeHashPrefixes) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  EXPECT_EQ(ToHex(leaves[0]), kReferenceRoots[1]);
  EXPECT_EQ(ToHex(NodeHash(leaves[0], leaves[1])), kReferenceRoots[2]);
}

TEST(MerkleTest, RootsMatchReferenceVectors) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  for (uint64_t size = 0; size <= leaves.size(); ++size) {
    EXPECT_EQ(ToHex(RootOf(Prefix(leaves, size))), kReferenceRoots[size]) << "size " << size;
  }
}

TEST(MerkleTest, CompactTreeRootsMatchReferenceVectors) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  CompactTree tree;
  EXPECT_EQ(ToHex(tree.Root()), kReferenceRoots[0]);
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    tree.Append(leaves[size - 1]);
    EXPECT_EQ(tree.size(), size);
    EXPECT_EQ(ToHex(tree.Root()), kReferenceRoots[size]) << "size " << size;
  }
}

TEST(MerkleTest, InclusionProofsMatchReferenceVectors) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  for (const InclusionVector& vector : ReferenceInclusionProofs()) {
    auto proof = InclusionProof(vector.index, Prefix(leaves, vector.size));
    ASSERT_TRUE(proof.has_value()) << proof.error().message;
    EXPECT_EQ(*proof, vector.proof) << "index " << vector.index << " size " << vector.size;
    const Hash root = FromHex(kReferenceRoots[vector.size]);
    EXPECT_TRUE(
        VerifyInclusion(vector.index, vector.size, leaves[vector.index], vector.proof, root))
        << "index " << vector.index << " size " << vector.size;
  }
}

TEST(MerkleTest, ConsistencyProofsMatchReferenceVectors) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  for (const ConsistencyVector& vector : ReferenceConsistencyProofs()) {
    auto proof = ConsistencyProof(vector.old_size, Prefix(leaves, vector.new_size));
    ASSERT_TRUE(proof.has_value()) << proof.error().message;
    EXPECT_EQ(*proof, vector.proof) << vector.old_size << " to " << vector.new_size;
    EXPECT_TRUE(VerifyConsistency(vector.old_size, vector.new_size,
                                  FromHex(kReferenceRoots[vector.old_size]),
                                  FromHex(kReferenceRoots[vector.new_size]), vector.proof))
        << vector.old_size << " to " << vector.new_size;
  }
}

TEST(MerkleTest, TamperedInclusionProofsFail) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  const Hash some_hash = Sha256("some other hash");
  for (const InclusionVector& vector : ReferenceInclusionProofs()) {
    const Hash root = FromHex(kReferenceRoots[vector.size]);
    const Hash& leaf = leaves[vector.index];
    const std::string label = fmt::format("index {} size {}", vector.index, vector.size);
    EXPECT_FALSE(VerifyInclusion(vector.index + 1, vector.size, leaf, vector.proof, root)) << label;
    EXPECT_FALSE(VerifyInclusion(vector.index, vector.size * 2, leaf, vector.proof, root)) << label;
    EXPECT_FALSE(VerifyInclusion(vector.index, vector.size, some_hash, vector.proof, root))
        << label;
    EXPECT_FALSE(VerifyInclusion(vector.index, vector.size, leaf, vector.proof, some_hash))
        << label;
    std::vector<Hash> longer = vector.proof;
    longer.push_back(root);
    EXPECT_FALSE(VerifyInclusion(vector.index, vector.size, leaf, longer, root)) << label;
    for (size_t i = 0; i < vector.proof.size(); ++i) {
      std::vector<Hash> flipped = vector.proof;
      flipped[i][0] ^= 8;
      EXPECT_FALSE(VerifyInclusion(vector.index, vector.size, leaf, flipped, root))
          << label << " element " << i;
    }
    if (!vector.proof.empty()) {
      std::vector<Hash> shorter(vector.proof.begin(), vector.proof.end() - 1);
      EXPECT_FALSE(VerifyInclusion(vector.index, vector.size, leaf, shorter, root)) << label;
    }
  }
}

TEST(MerkleTest, TamperedConsistencyProofsFail) {
  for (const ConsistencyVector& vector : ReferenceConsistencyProofs()) {
    if (vector.proof.empty()) continue;
    const Hash old_root = FromHex(kReferenceRoots[vector.old_size]);
    const Hash new_root = FromHex(kReferenceRoots[vector.new_size]);
    const std::string label = fmt::format("{} to {}", vector.old_size, vector.new_size);
    EXPECT_FALSE(
        VerifyConsistency(vector.old_size - 1, vector.new_size, old_root, new_root, vector.proof))
        << label;
    EXPECT_FALSE(
        VerifyConsistency(vector.old_size + 1, vector.new_size, old_root, new_root, vector.proof))
        << label;
    EXPECT_FALSE(
        VerifyConsistency(vector.old_size, vector.new_size * 2, old_root, new_root, vector.proof))
        << label;
    EXPECT_FALSE(
        VerifyConsistency(vector.old_size, vector.new_size, new_root, old_root, vector.proof))
        << label;
    EXPECT_FALSE(VerifyConsistency(vector.old_size, vector.new_size, old_root, new_root, {}))
        << label;
    for (size_t i = 0; i < vector.proof.size(); ++i) {
      std::vector<Hash> flipped = vector.proof;
      flipped[i][0] ^= 16;
      EXPECT_FALSE(VerifyConsistency(vector.old_size, vector.new_size, old_root, new_root, flipped))
          << label << " element " << i;
    }
    std::vector<Hash> shorter(vector.proof.begin(), vector.proof.end() - 1);
    EXPECT_FALSE(VerifyConsistency(vector.old_size, vector.new_size, old_root, new_root, shorter))
        << label;
  }
}

TEST(MerkleTest, TrivialConsistencyCases) {
  const Hash empty_root = Sha256("");
  const Hash other_root = Sha256("other");
  EXPECT_TRUE(VerifyConsistency(0, 0, empty_root, empty_root, {}));
  EXPECT_TRUE(VerifyConsistency(0, 5, empty_root, other_root, {}));
  EXPECT_TRUE(VerifyConsistency(3, 3, other_root, other_root, {}));
  EXPECT_FALSE(VerifyConsistency(3, 3, empty_root, other_root, {}));
  EXPECT_FALSE(VerifyConsistency(3, 3, other_root, other_root, std::vector<Hash>{empty_root}));
  EXPECT_FALSE(VerifyConsistency(0, 5, empty_root, other_root, std::vector<Hash>{empty_root}));
  EXPECT_FALSE(VerifyConsistency(4, 3, other_root, other_root, {}));
}

TEST(MerkleTest, ProofRequestsOutOfRangeFail) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  EXPECT_FALSE(InclusionProof(8, leaves).has_value());
  EXPECT_FALSE(InclusionProof(0, {}).has_value());
  EXPECT_FALSE(ConsistencyProof(9, leaves).has_value());
  EXPECT_FALSE(VerifyInclusion(0, 0, leaves[0], {}, Sha256("")));
}

TEST(MerkleTest, SmallTreesMatchNaiveImplementation) {
  std::mt19937_64 random(6962);
  const std::vector<Hash> all = RandomLeaves(random, 70);
  for (uint64_t size = 1; size <= all.size(); ++size) {
    const std::vector<Hash> leaves(all.begin(), all.begin() + size);
    const Hash root = naive::Mth(leaves);
    ASSERT_EQ(RootOf(leaves), root) << "size " << size;

    for (uint64_t index = 0; index < size; ++index) {
      auto proof = InclusionProof(index, leaves);
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, naive::Path(index, leaves)) << "index " << index << " size " << size;
      ASSERT_TRUE(VerifyInclusion(index, size, leaves[index], *proof, root))
          << "index " << index << " size " << size;
    }

    for (uint64_t old_size = 1; old_size <= size; ++old_size) {
      auto proof = ConsistencyProof(old_size, leaves);
      ASSERT_TRUE(proof.has_value());
      const std::vector<Hash> old_leaves(leaves.begin(), leaves.begin() + old_size);
      ASSERT_EQ(*proof, naive::Subproof(old_size, leaves, true)) << old_size << " to " << size;
      ASSERT_TRUE(VerifyConsistency(old_size, size, naive::Mth(old_leaves), root, *proof))
          << old_size << " to " << size;
    }
  }
}

TEST(MerkleTest, LargeRandomTreesMatchNaiveImplementation) {
  std::mt19937_64 random(9162);
  for (int tree = 0; tree < 3; ++tree) {
    const uint64_t size = std::uniform_int_distribution<uint64_t>(1000, 2500)(random);
    const std::vector<Hash> leaves = RandomLeaves(random, size);
    const Hash root = naive::Mth(leaves);
    ASSERT_EQ(RootOf(leaves), root) << "size " << size;

    // Every inclusion proof.
    for (uint64_t index = 0; index < size; ++index) {
      auto proof = InclusionProof(index, leaves);
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, naive::Path(index, leaves)) << "index " << index << " size " << size;
      ASSERT_TRUE(VerifyInclusion(index, size, leaves[index], *proof, root))
          << "index " << index << " size " << size;
      ASSERT_FALSE(VerifyInclusion(index, size, leaves[(index + 1) % size], *proof, root))
          << "wrong leaf accepted at index " << index << " size " << size;
    }

    // Consistency proofs between random sizes.
    for (int pair = 0; pair < 200; ++pair) {
      const uint64_t old_size = std::uniform_int_distribution<uint64_t>(1, size)(random);
      const std::vector<Hash> old_leaves(leaves.begin(), leaves.begin() + old_size);
      auto proof = ConsistencyProof(old_size, leaves);
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, naive::Subproof(old_size, leaves, true)) << old_size << " to " << size;
      ASSERT_TRUE(VerifyConsistency(old_size, size, naive::Mth(old_leaves), root, *proof))
          << old_size << " to " << size;
    }
  }
}

TEST(MerkleTest, CompactTreeMatchesRootOfEveryPrefix) {
  std::mt19937_64 random(42);
  const std::vector<Hash> leaves = RandomLeaves(random, 1500);
  CompactTree tree;
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    tree.Append(leaves[size - 1]);
    if (size % 97 == 0 || std::has_single_bit(size) || size == leaves.size()) {
      ASSERT_EQ(tree.Root(), naive::Mth(std::vector<Hash>(leaves.begin(), leaves.begin() + size)))
          << "size " << size;
    }
  }
}

// The roots a log signs in its checkpoints come from CompactTree, so proofs must hold between
// those roots, and must fail once an entry below the older checkpoint is altered or removed.
TEST(MerkleTest, ConsistencyBetweenCompactTreeCheckpoints) {
  std::mt19937_64 random(11);
  const std::vector<Hash> leaves = RandomLeaves(random, 300);
  std::vector<Hash> roots{CompactTree().Root()};  // roots[size]
  CompactTree tree;
  for (const Hash& leaf : leaves) {
    tree.Append(leaf);
    roots.push_back(tree.Root());
  }

  for (uint64_t old_size : {0, 1, 7, 64, 100, 255}) {
    for (uint64_t new_size : {old_size, old_size + 1, uint64_t{256}, uint64_t{300}}) {
      if (new_size < old_size || new_size > leaves.size()) continue;
      const std::span<const Hash> prefix = std::span<const Hash>(leaves).first(new_size);
      auto proof = ConsistencyProof(old_size, prefix);
      ASSERT_TRUE(proof.has_value()) << proof.error().message;
      EXPECT_TRUE(VerifyConsistency(old_size, new_size, roots[old_size], roots[new_size], *proof))
          << old_size << " -> " << new_size;
    }
  }

  // A log rewritten below the old checkpoint: entry 40 altered, or entry 40 removed.
  std::vector<Hash> altered = leaves;
  altered[40] = LeafHash("altered");
  std::vector<Hash> removed = leaves;
  removed.erase(removed.begin() + 40);
  for (const std::vector<Hash>* rewritten : {&altered, &removed}) {
    const std::span<const Hash> prefix = std::span<const Hash>(*rewritten).first(256);
    auto proof = ConsistencyProof(100, prefix);
    ASSERT_TRUE(proof.has_value());
    EXPECT_FALSE(VerifyConsistency(100, 256, roots[100], RootOf(prefix), *proof));
  }

  // A good proof with one hash changed, or presented for other checkpoints.
  auto proof = ConsistencyProof(100, std::span<const Hash>(leaves).first(256));
  ASSERT_TRUE(proof.has_value());
  ASSERT_FALSE(proof->empty());
  std::vector<Hash> flipped = *proof;
  flipped.back()[0] ^= 0x01;
  EXPECT_FALSE(VerifyConsistency(100, 256, roots[100], roots[256], flipped));
  EXPECT_FALSE(VerifyConsistency(100, 256, roots[99], roots[256], *proof));
  EXPECT_FALSE(VerifyConsistency(100, 256, roots[100], roots[255], *proof));
}

TEST(MerkleTest, CompactTreeSerializeRoundTrip) {
  std::mt19937_64 random(7);
  const std::vector<Hash> leaves = RandomLeaves(random, 300);
  CompactTree tree;
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    tree.Append(leaves[size - 1]);
    auto restored = CompactTree::Deserialize(tree.size(), tree.Serialize());
    ASSERT_TRUE(restored.has_value()) << restored.error().message;
    ASSERT_EQ(restored->size(), size);
    ASSERT_EQ(restored->Root(), tree.Root()) << "size " << size;
  }

  // Appending to a restored tree continues the same tree.
  auto restored = CompactTree::Deserialize(150, [&] {
    CompactTree prefix;
    for (uint64_t i = 0; i < 150; ++i) prefix.Append(leaves[i]);
    return prefix.Serialize();
  }());
  ASSERT_TRUE(restored.has_value());
  for (uint64_t i = 150; i < leaves.size(); ++i) restored->Append(leaves[i]);
  EXPECT_EQ(restored->Root(), tree.Root());
}

TEST(MerkleTest, CompactTreeDeserializeRejectsWrongLength) {
  CompactTree tree;
  for (int i = 0; i < 5; ++i) tree.Append(LeafHash(std::to_string(i)));
  const std::string bytes = tree.Serialize();
  ASSERT_EQ(bytes.size(), 2 * sizeof(Hash));  // 5 = 0b101: two perfect subtrees
  auto short_bytes = CompactTree::Deserialize(5, bytes.substr(0, 32));
  ASSERT_FALSE(short_bytes.has_value());
  EXPECT_EQ(short_bytes.error().code, core::ErrorCode::kCorruption);
  EXPECT_FALSE(CompactTree::Deserialize(6, bytes + bytes).has_value());
}

// An append plus a root at size n must hash at most 2·log2(n) + 2 interior nodes, so appends stay
// O(log n) however long the log grows.
TEST(MerkleTest, AppendCostIsLogarithmic) {
  constexpr uint64_t kSize = 100'000;
  CompactTree tree;
  uint64_t max_hashes = 0;
  for (uint64_t size = 1; size <= kSize; ++size) {
    HashCounter counter;
    tree.Append(LeafHash(std::to_string(size)), &counter);
    const Hash root = tree.Root(&counter);
    (void)root;
    max_hashes = std::max(max_hashes, counter.node_hashes);
    if (size > kSize - 1000) {
      const double bound = 2 * std::log2(static_cast<double>(size)) + 2;
      ASSERT_LE(static_cast<double>(counter.node_hashes), bound) << "append number " << size;
    }
  }
  EXPECT_LE(static_cast<double>(max_hashes), 2 * std::log2(static_cast<double>(kSize)) + 2);
  // 65 535 -> 65 536 merges 16 subtrees, so the bound is close to tight, not vacuous.
  EXPECT_GE(max_hashes, 16u);
}

}  // namespace
}  // namespace backout::ledger
