// Keeps the worked examples of docs/ledger.md true: the examples are rebuilt here from their
// documented inputs, and both this code's output and the page's text must match the expected
// bytes and hashes below.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "support/temp_dir.h"

namespace backout::ledger {
namespace {

// The Ed25519 keys of RFC 8032 section 7.1, TEST 1 (private, PKCS #8) and TEST 2 (public). They
// are published test keys, which makes the examples reproducible; never sign a real ledger with
// them.
constexpr std::string_view kFirstPrivateKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view kSecondPublicKey =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAPUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\n"
    "-----END PUBLIC KEY-----\n";

// The exact bytes of each encoded entry, one line each with no trailing newline.
const std::vector<std::string> kExpectedEncoded = {
    R"json({"action":"ledger.key_introduced","actor":"system","change":{"key_id":"21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9","public_key":"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"},"change_digest":"59c71410a3815b04cf755a98651c3c4352ca47e09cd37b79dc3c63910e1d6d2a","sequence":0,"subject":"ledger","time":"2026-12-04T17:05:41.000000Z"})json",
    R"json({"action":"incident.opened","actor":"alice","change":{"customer_facing":true,"reporter":"Zoë","service":"checkout","severity":2,"signals":["alertmanager/HighErrorRate"],"summary":"5xx rate > 2% after deploy \"v2.4.1\"\n"},"change_digest":"382f5d7a175cb051cae3d1fb7537294bb7b580b1d06f064895387bd14e6d55ac","sequence":1,"subject":"incident/INC-7","time":"2026-12-04T17:06:02.250000Z"})json",
    R"json({"action":"ledger.key_rotated","actor":"system","change":{"key_id":"39f713d0a644253f04529421b9f51b9b08979d08295959c4f3990ee617f5139f","previous_key_id":"21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9","public_key":"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAPUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\n-----END PUBLIC KEY-----\n","signature":"erqZHE5hf6yBYWPD93D/lrC7griH5P6BdKYauYW6vsiqDKV7nDsJu7+N51O9D6U0UWvRBWMJ5HXyWbX+Hw9FDQ=="},"change_digest":"a312fb289882d83c4cc7d3d46d34d2a075eb0712db1ed120c6fbfdf663ac0ac8","sequence":2,"subject":"ledger","time":"2026-12-05T09:00:00.000001Z"})json",
};

const std::vector<std::string> kExpectedLeafHashes = {
    "b36e016f80ebc761bc1a36383a678772318560bc3ff494e5b074e6f5d385d6bc",
    "6f4a8579750eb23cef60c1d030675552b4baa6c2c6dd50e80745e7e43d88cee1",
    "310a2b227a247f19e8ef1d7fad9b478e2eb918f4bd45d8b0e1ff417ec5d7ec00",
};

constexpr std::string_view kExpectedRootOfTwo =
    "5bf97c3f801780398bc693f1e36f9da21d7aee109490d1f713b12c129832d4c2";
constexpr std::string_view kExpectedRootOfThree =
    "a5aaccd1e8b7594289d2b37fa84521bd1e3bb9c44cb09af028ffe273dbd0666c";
constexpr std::string_view kExpectedCheckpointSignature =
    "iNouye7SbqP7ZWvxPtWXTFpwf1YPeMPQutU6JpDnr7Hpm8HPJ8Emejc970XdcJMd2SG0eBPIGsbdn1wK1j75DA==";

std::string ReadDocument() {
  std::ifstream file(std::filesystem::path(BACKOUT_SOURCE_DIR) / "docs" / "ledger.md");
  EXPECT_TRUE(file.good()) << "cannot open docs/ledger.md";
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::shared_ptr<Signer> ExampleSigner(const testing::TempDir& dir) {
  const auto path = dir.path() / "example.key";
  {
    std::ofstream file(path);
    file << kFirstPrivateKey;
  }
  EXPECT_EQ(::chmod(path.c_str(), 0600), 0);
  auto signer = Signer::LoadOrCreate(path);
  EXPECT_TRUE(signer.has_value()) << signer.error().message;
  return signer.value_or(nullptr);
}

Entry MakeEntry(uint64_t sequence, std::string_view time, std::string actor, std::string action,
                std::string subject, nlohmann::json change) {
  Entry entry;
  entry.sequence = sequence;
  entry.time = core::ParseTime(time).value();
  entry.actor = std::move(actor);
  entry.action = std::move(action);
  entry.subject = std::move(subject);
  entry.change = std::move(change);
  return entry;
}

// The inputs of the three examples, as docs/ledger.md lists them.
std::vector<Entry> ExampleEntries(const Signer& first) {
  const PublicKey second = PublicKey::FromPem(kSecondPublicKey).value();
  return {
      MakeEntry(0, "2026-12-04T17:05:41Z", "system", "ledger.key_introduced", "ledger",
                KeyIntroducedChange(first.public_key())),
      MakeEntry(1, "2026-12-04T17:06:02.25Z", "alice", "incident.opened", "incident/INC-7",
                {{"service", "checkout"},
                 {"severity", 2},
                 {"customer_facing", true},
                 {"summary", "5xx rate > 2% after deploy \"v2.4.1\"\n"},
                 {"reporter", "Zo\xc3\xab"},
                 {"signals", {"alertmanager/HighErrorRate"}}}),
      MakeEntry(2, "2026-12-05T09:00:00.000001Z", "system", "ledger.key_rotated", "ledger",
                KeyRotatedChange(first, second)),
  };
}

TEST(LedgerDocExamplesTest, CodeProducesDocumentedBytesAndLeafHashes) {
  testing::TempDir dir;
  auto signer = ExampleSigner(dir);
  ASSERT_NE(signer, nullptr);
  const std::vector<Entry> entries = ExampleEntries(*signer);
  for (size_t i = 0; i < entries.size(); ++i) {
    auto encoded = EncodeEntry(entries[i]);
    ASSERT_TRUE(encoded.has_value()) << encoded.error().message;
    EXPECT_EQ(*encoded, kExpectedEncoded[i]) << "example " << i + 1;
    EXPECT_EQ(ToHex(LeafHash(*encoded)), kExpectedLeafHashes[i]) << "example " << i + 1;
  }
}

TEST(LedgerDocExamplesTest, CodeProducesDocumentedRootsAndCheckpoint) {
  testing::TempDir dir;
  auto signer = ExampleSigner(dir);
  ASSERT_NE(signer, nullptr);
  std::vector<Hash> leaves;
  for (const std::string& hex : kExpectedLeafHashes) leaves.push_back(HashFromHex(hex).value());
  const Hash root_of_two = RootOf(std::span<const Hash>(leaves).first(2));
  EXPECT_EQ(ToHex(root_of_two), kExpectedRootOfTwo);
  EXPECT_EQ(ToHex(RootOf(leaves)), kExpectedRootOfThree);

  const Checkpoint checkpoint =
      signer->Sign(2, root_of_two, core::ParseTime("2026-12-04T17:06:02.3Z").value());
  EXPECT_EQ(checkpoint.signature, kExpectedCheckpointSignature);

  // The documented proofs: entry 1 in the tree of 3, and from tree size 2 to 3.
  EXPECT_EQ(InclusionProof(1, leaves).value(), (std::vector<Hash>{leaves[0], leaves[2]}));
  EXPECT_EQ(ConsistencyProof(2, leaves).value(), (std::vector<Hash>{leaves[2]}));
}

TEST(LedgerDocExamplesTest, DocumentShowsTheSameBytesAndHashes) {
  const std::string document = ReadDocument();
  for (size_t i = 0; i < kExpectedEncoded.size(); ++i) {
    EXPECT_NE(document.find(kExpectedEncoded[i]), std::string::npos)
        << "docs/ledger.md lacks the encoded bytes of example " << i + 1;
    EXPECT_NE(document.find(kExpectedLeafHashes[i]), std::string::npos)
        << "docs/ledger.md lacks the leaf hash of example " << i + 1;
  }
  EXPECT_NE(document.find(kExpectedRootOfTwo), std::string::npos);
  EXPECT_NE(document.find(kExpectedRootOfThree), std::string::npos);
  EXPECT_NE(document.find(kExpectedCheckpointSignature), std::string::npos);
}

}  // namespace
}  // namespace backout::ledger
