#include "ledger/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace backout::ledger {
namespace {

core::Time At(std::string_view text) { return core::ParseTime(text).value(); }

std::shared_ptr<Signer> NewSigner() {
  auto signer = Signer::Generate();
  EXPECT_TRUE(signer.has_value()) << signer.error().message;
  return signer.value_or(nullptr);
}

mode_t FileMode(const std::filesystem::path& path) {
  struct stat status {};
  EXPECT_EQ(::stat(path.c_str(), &status), 0) << path;
  return status.st_mode & 07777;
}

TEST(SignerTest, SignatureVerifies) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const std::string signature = signer->SignBase64("hello ledger");
  EXPECT_EQ(signature.size(), 88u);  // 64 bytes in padded base64
  EXPECT_TRUE(signer->public_key().Verify("hello ledger", signature));
}

TEST(SignerTest, TamperedMessageFails) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const std::string signature = signer->SignBase64("hello ledger");
  EXPECT_FALSE(signer->public_key().Verify("hello ledgeR", signature));
}

TEST(SignerTest, TamperedOrMalformedSignatureFails) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  std::string signature = signer->SignBase64("message");
  signature[10] = signature[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(signer->public_key().Verify("message", signature));
  EXPECT_FALSE(signer->public_key().Verify("message", ""));
  EXPECT_FALSE(signer->public_key().Verify("message", "not base64!"));
  EXPECT_FALSE(signer->public_key().Verify("message", signer->SignBase64("message") + "===="));
}

TEST(SignerTest, OtherKeyFails) {
  auto signer = NewSigner();
  auto other = NewSigner();
  ASSERT_NE(signer, nullptr);
  ASSERT_NE(other, nullptr);
  EXPECT_FALSE(other->public_key().Verify("message", signer->SignBase64("message")));
}

TEST(SignerTest, KeyIdIsSha256OfRawKey) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const std::string& pem = signer->public_key().pem();
  // An Ed25519 SubjectPublicKeyInfo is a 12-byte DER header then the 32 raw key bytes, 44 bytes
  // in all, so its base64 body is one 60-character line.
  const size_t begin = pem.find('\n') + 1;
  const std::string body = pem.substr(begin, pem.find('\n', begin) - begin);
  ASSERT_EQ(body.size(), 60u) << pem;
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string der;
  for (size_t i = 0; i < body.size(); i += 4) {
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      group = group << 6 | (body[i + k] == '=' ? 0 : kAlphabet.find(body[i + k]));
    }
    der += static_cast<char>(group >> 16);
    der += static_cast<char>(group >> 8);
    der += static_cast<char>(group);
  }
  ASSERT_EQ(der.size(), 45u);  // 44 bytes plus one from the '=' padding
  EXPECT_EQ(signer->public_key().key_id(), ToHex(Sha256(der.substr(12, 32))));
}

TEST(SignerTest, PublicKeyPemRoundTrips) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  auto key = PublicKey::FromPem(signer->public_key().pem());
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(key->key_id(), signer->public_key().key_id());
  EXPECT_EQ(key->pem(), signer->public_key().pem());
  EXPECT_TRUE(key->Verify("m", signer->SignBase64("m")));
}

TEST(SignerTest, PublicKeyRejectsGarbageAndOtherKeyTypes) {
  EXPECT_FALSE(PublicKey::FromPem("").has_value());
  EXPECT_FALSE(PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                   .has_value());
  // An X25519 key is a valid SubjectPublicKeyInfo, but not a signing key.
  auto x25519 = PublicKey::FromPem(
      "-----BEGIN PUBLIC KEY-----\n"
      "MCowBQYDK2VuAyEAKHC4sa0dpqFmYtfUMCAxCtGRwXNCZwDyFaBymqhc8Fo=\n"
      "-----END PUBLIC KEY-----\n");
  ASSERT_FALSE(x25519.has_value());
  EXPECT_NE(x25519.error().message.find("Ed25519"), std::string::npos) << x25519.error().message;
}

TEST(SignerTest, CreatesKeyFileWithMode0600) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger.key";
  auto created = Signer::LoadOrCreate(path);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(FileMode(path), 0600u);

  // The temporary file the key was written to is gone.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);

  auto loaded = Signer::LoadOrCreate(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ((*loaded)->public_key().key_id(), (*created)->public_key().key_id());
  EXPECT_TRUE((*created)->public_key().Verify("m", (*loaded)->SignBase64("m")));
}

TEST(SignerTest, ConcurrentCreationYieldsOneKey) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger.key";
  std::vector<std::string> key_ids(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < key_ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto signer = Signer::LoadOrCreate(path);
      key_ids[i] = signer ? (*signer)->public_key().key_id() : signer.error().message;
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& key_id : key_ids) EXPECT_EQ(key_id, key_ids[0]);
  EXPECT_EQ(key_ids[0].size(), 64u) << key_ids[0];
}

TEST(SignerTest, RejectsGroupReadableKey) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger.key";
  ASSERT_TRUE(Signer::LoadOrCreate(path).has_value());
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);

  auto loaded = Signer::LoadOrCreate(path);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(loaded.error().message.find(path.string()), std::string::npos);
  EXPECT_NE(loaded.error().message.find("chmod 600 " + path.string()), std::string::npos)
      << loaded.error().message;
}

TEST(SignerTest, RejectsWorldReadableKey) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger.key";
  ASSERT_TRUE(Signer::LoadOrCreate(path).has_value());
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_FALSE(Signer::LoadOrCreate(path).has_value());
}

TEST(SignerTest, RejectsKeyFileWithoutPrivateKey) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger.key";
  {
    std::ofstream file(path);
    file << "not a key\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto loaded = Signer::LoadOrCreate(path);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_NE(loaded.error().message.find(path.string()), std::string::npos);
}

TEST(SignerTest, MissingFolderFailsWithPath) {
  testing::TempDir dir;
  const auto path = dir.path() / "absent" / "ledger.key";
  auto created = Signer::LoadOrCreate(path);
  ASSERT_FALSE(created.has_value());
  EXPECT_NE(created.error().message.find(path.string()), std::string::npos);
}

TEST(CheckpointTest, SignedBytesFormat) {
  Checkpoint checkpoint;
  checkpoint.tree_size = 42;
  checkpoint.root = Sha256("root");
  checkpoint.time = At("2026-12-04T17:05:41.5Z");
  checkpoint.key_id = std::string(64, 'a');
  EXPECT_EQ(checkpoint.SignedBytes(), "backout-checkpoint/v1\n42\n" + ToHex(Sha256("root")) +
                                          "\n2026-12-04T17:05:41.500000Z\n" + std::string(64, 'a') +
                                          "\n");
}

TEST(CheckpointTest, SignedCheckpointVerifies) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const Checkpoint checkpoint = signer->Sign(10, Sha256("root"), At("2026-12-04T17:05:41Z"));
  EXPECT_EQ(checkpoint.key_id, signer->public_key().key_id());
  EXPECT_TRUE(signer->public_key().Verify(checkpoint));
}

TEST(CheckpointTest, AlteredFieldsFailVerification) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const Checkpoint original = signer->Sign(10, Sha256("root"), At("2026-12-04T17:05:41Z"));

  Checkpoint size = original;
  size.tree_size = 11;
  EXPECT_FALSE(signer->public_key().Verify(size));
  Checkpoint root = original;
  root.root[0] ^= 1;
  EXPECT_FALSE(signer->public_key().Verify(root));
  Checkpoint time = original;
  time.time += core::Duration(1);
  EXPECT_FALSE(signer->public_key().Verify(time));
  Checkpoint key_id = original;
  key_id.key_id = std::string(64, '0');
  EXPECT_FALSE(signer->public_key().Verify(key_id));
}

TEST(CheckpointTest, JsonRoundTrips) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const Checkpoint original = signer->Sign(10, Sha256("root"), At("2026-12-04T17:05:41.000001Z"));
  auto parsed = Checkpoint::FromJson(nlohmann::json::parse(original.ToJson().dump()));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->SignedBytes(), original.SignedBytes());
  EXPECT_EQ(parsed->signature, original.signature);
  EXPECT_TRUE(signer->public_key().Verify(*parsed));
}

TEST(CheckpointTest, FromJsonNamesTheFieldAtFault) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const nlohmann::json good = signer->Sign(1, Sha256("r"), At("2026-12-04T17:05:41Z")).ToJson();
  struct Case {
    std::string field;
    nlohmann::json value;
  };
  for (const Case& test_case : std::vector<Case>{{"tree_size", -1},
                                                 {"tree_size", "1"},
                                                 {"root", "abc"},
                                                 {"time", "yesterday"},
                                                 {"key_id", "k"},
                                                 {"signature", 5}}) {
    nlohmann::json bad = good;
    bad[test_case.field] = test_case.value;
    auto parsed = Checkpoint::FromJson(bad);
    ASSERT_FALSE(parsed.has_value()) << bad.dump();
    EXPECT_NE(parsed.error().message.find("'" + test_case.field + "'"), std::string::npos)
        << parsed.error().message;
  }
  nlohmann::json missing = good;
  missing.erase("root");
  EXPECT_FALSE(Checkpoint::FromJson(missing).has_value());
}

TEST(KeyRotationTest, RotationChangeVerifiesWithOldKey) {
  auto old_signer = NewSigner();
  auto new_signer = NewSigner();
  ASSERT_NE(old_signer, nullptr);
  ASSERT_NE(new_signer, nullptr);
  const nlohmann::json change = KeyRotatedChange(*old_signer, new_signer->public_key());
  EXPECT_EQ(change.at("public_key"), new_signer->public_key().pem());
  EXPECT_EQ(change.at("key_id"), new_signer->public_key().key_id());
  EXPECT_EQ(change.at("previous_key_id"), old_signer->public_key().key_id());
  const std::string signature = change.at("signature");
  EXPECT_TRUE(old_signer->public_key().Verify(new_signer->public_key().pem(), signature));
  EXPECT_FALSE(new_signer->public_key().Verify(new_signer->public_key().pem(), signature));
}

TEST(KeyRotationTest, IntroducedChangeCarriesKey) {
  auto signer = NewSigner();
  ASSERT_NE(signer, nullptr);
  const nlohmann::json change = KeyIntroducedChange(signer->public_key());
  EXPECT_EQ(change.at("public_key"), signer->public_key().pem());
  EXPECT_EQ(change.at("key_id"), signer->public_key().key_id());
}

}  // namespace
}  // namespace backout::ledger
