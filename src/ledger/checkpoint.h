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

  // The exact bytes the signature covers, with the size in decimal, the root in lower-case hex
  // and the time as RFC 3339 UTC with six fractional digits and 'Z':
  //   "backout-checkpoint/v1\n<tree_size>\n<root hex>\n<time>\n<key_id>\n"
  std::string SignedBytes() const;

  // {"key_id": …, "root": "<hex>", "signature": …, "time": …, "tree_size": N}
  nlohmann::json ToJson() const;
  // Parses ToJson's form, checking each field's type and format (kInvalidArgument names the
  // field). It does not check the signature: PublicKey::Verify does.
  static core::Result<Checkpoint> FromJson(const nlohmann::json& json);
};

// An Ed25519 public key that checks checkpoint and rotation signatures.
class PublicKey {
 public:
  // Parses a SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"). Fails (kInvalidArgument)
  // for anything that is not an Ed25519 public key.
  static core::Result<PublicKey> FromPem(std::string_view pem);

  // The key re-encoded by OpenSSL, so equal keys have equal PEM text whatever the input's layout.
  const std::string& pem() const { return pem_; }
  const std::string& key_id() const { return key_id_; }

  // True when `signature_base64` (padded RFC 4648 base64 of 64 bytes) is this key's Ed25519
  // signature over `message`.
  bool Verify(std::string_view message, std::string_view signature_base64) const;
  // True when the checkpoint names this key's id and its signature covers SignedBytes().
  bool Verify(const Checkpoint& checkpoint) const;

 private:
  std::string pem_;
  std::string key_id_;
  std::string raw_;  // 32 raw key bytes
};

// Signs checkpoints with an Ed25519 private key. Thread-safe after creation.
class Signer {
 public:
  // Loads the PEM private key at `path`, or creates a new key there when the file does not exist:
  // the file is created with open(O_CREAT | O_EXCL) and mode 0600, then synced with its folder,
  // and if another process creates it first, that key is loaded. Fails with kFailedPrecondition
  // when the file grants any permission to group or others (the message names the chmod fix),
  // and with kInvalidArgument when it does not hold an Ed25519 key.
  static core::Result<std::shared_ptr<Signer>> LoadOrCreate(const std::filesystem::path& path);
  // A new key held in memory only, for tests and one-off signing.
  static core::Result<std::shared_ptr<Signer>> Generate();

  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  // Padded base64 of the Ed25519 signature over `message`. Aborts the process if OpenSSL cannot
  // sign, which happens only when memory runs out, so no unsigned checkpoint is ever written.
  std::string SignBase64(std::string_view message) const;
  // A checkpoint for the tree of `tree_size` leaves with `root`, signed with this key.
  Checkpoint Sign(uint64_t tree_size, const Hash& root, core::Time time) const;

 private:
  struct KeyHandle;
  Signer() = default;
  static core::Result<std::shared_ptr<Signer>> FromKey(std::unique_ptr<KeyHandle> key);

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
