#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "ledger/hash.h"

namespace backout::ledger {

// A signed statement that the log had `tree_size` entries with Merkle root `root` at `time`.
struct Checkpoint {
  uint64_t tree_size = 0;
  Hash root{};
  core::Time time;
  std::string key_id;     // hex SHA-256 of the raw 32-byte Ed25519 public key
  std::string signature;  // base64 of the 64-byte Ed25519 signature over SignedBytes()

  // The exact bytes the signature covers:
  //   "backout-checkpoint/v1\n<tree_size>\n<root hex>\n<time RFC 3339>\n<key_id>\n"
  std::string SignedBytes() const;

  nlohmann::json ToJson() const;
  static core::Result<Checkpoint> FromJson(const nlohmann::json& json);
};

// An Ed25519 public key that checks checkpoint and rotation signatures.
class PublicKey {
 public:
  static core::Result<PublicKey> FromPem(std::string_view pem);
  const std::string& pem() const { return pem_; }
  const std::string& key_id() const { return key_id_; }
  bool Verify(std::string_view message, std::string_view signature_base64) const;
  bool Verify(const Checkpoint& checkpoint) const;

 private:
  std::string pem_;
  std::string key_id_;
  std::string raw_;  // 32 raw key bytes
};

// Signs checkpoints with an Ed25519 private key. Thread-safe after creation.
class Signer {
 public:
  // Loads `path`, or creates a new key there with mode 0600 when the file does not exist.
  // Refuses a key file readable by group or others.
  static core::Result<std::shared_ptr<Signer>> LoadOrCreate(const std::filesystem::path& path);
  static core::Result<std::shared_ptr<Signer>> Generate();

  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  std::string SignBase64(std::string_view message) const;
  Checkpoint Sign(uint64_t tree_size, const Hash& root, core::Time time) const;

 private:
  Signer() = default;
  struct KeyHandle;
  std::unique_ptr<KeyHandle> key_;
  PublicKey public_key_;
};

// Change recorded by the "ledger.key_introduced" entry at the start of a log:
//   {"public_key": "<PEM>", "key_id": "<hex>"}
nlohmann::json KeyIntroducedChange(const PublicKey& key);

// Change recorded by a "ledger.key_rotated" entry: the new key, signed by the old one:
//   {"public_key": "<new PEM>", "key_id": "<new id>", "previous_key_id": "<old id>",
//    "signature": "<base64 signature by the old key over the new PEM>"}
nlohmann::json KeyRotatedChange(const Signer& old_signer, const PublicKey& new_key);

}  // namespace backout::ledger
