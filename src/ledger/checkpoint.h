#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "ledger/hash.h"

// OpenSSL's EVP_PKEY, declared here so this header does not pull in OpenSSL's.
struct evp_pkey_st;

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
  // The parsed key, shared by copies and only read after FromPem, so Verify may run on several
  // threads at once. Parsing once matters because a log contains a checkpoint per committed batch.
  std::shared_ptr<evp_pkey_st> key_;
};

// Signs checkpoints with an Ed25519 private key. Thread-safe after creation.
class Signer {
 public:
  // Loads the PEM private key at `path`, or creates a new key there when the file does not exist.
  // A new key is written to a temporary file opened with O_CREAT | O_EXCL and mode 0600, synced,
  // and linked to `path`. If another process creates `path` first, its key is loaded instead.
  // Fails with kFailedPrecondition when the file grants any permission to group or others (the
  // message names the chmod fix), and with kInvalidArgument when it has no Ed25519 key.
  static core::Result<std::shared_ptr<Signer>> LoadOrCreate(const std::filesystem::path& path);
  // A new key held in memory only, for tests and one-off signing.
  static core::Result<std::shared_ptr<Signer>> Generate();

  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  // Padded base64 of the Ed25519 signature over `message`. Aborts the process if OpenSSL fails to
  // sign (in practice only when memory runs out), so no unsigned checkpoint is ever written.
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
