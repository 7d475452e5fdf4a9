#include "ledger/checkpoint.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace backout::ledger {
namespace {

using core::ErrorCode;
using core::MakeError;

constexpr size_t kRawKeySize = 32;
constexpr size_t kSignatureSize = 64;

// ---- OpenSSL helpers ----

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdContextPtr = std::unique_ptr<EVP_MD_CTX, MdContextDeleter>;

// Returns OpenSSL's queued error text and clears the queue.
std::string OpenSslError() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error queued" : text;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, length > 0 ? static_cast<size_t>(length) : 0);
}

std::string PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) std::abort();  // out of memory
  return BioContents(bio.get());
}

// ---- Base64 (RFC 4648 section 4, with padding) ----

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t chunk = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k) {
      group = group << 8 | (k < chunk ? static_cast<uint8_t>(bytes[i + k]) : 0);
    }
    for (size_t k = 0; k < 4; ++k) {
      out += k <= chunk ? kBase64Alphabet[(group >> (18 - 6 * k)) & 0x3f] : '=';
    }
  }
  return out;
}

int Base64Value(char c) {
  const char* at = std::strchr(kBase64Alphabet, c);
  return (c != '\0' && at != nullptr) ? static_cast<int>(at - kBase64Alphabet) : -1;
}

// Decodes canonical padded base64 only, so one signature has exactly one text form.
std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    size_t padding = 0;
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        ++padding;
        group <<= 6;
        continue;
      }
      const int value = Base64Value(c);
      if (value < 0 || padding > 0) return std::nullopt;
      group = group << 6 | static_cast<uint32_t>(value);
    }
    const size_t produced = 3 - padding;
    // Bits below the last full byte must be zero in the canonical form.
    if ((padding == 1 && (group & 0xff) != 0) || (padding == 2 && (group & 0xffff) != 0)) {
      return std::nullopt;
    }
    for (size_t k = 0; k < produced; ++k) out += static_cast<char>((group >> (16 - 8 * k)) & 0xff);
  }
  return out;
}

// ---- Key files ----

core::Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return MakeError(ErrorCode::kUnavailable, "failed to read key file {}: {}", path.string(),
                     std::strerror(errno));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Writes `contents` to a new file at `path` with mode 0600. Fails with kAlreadyExists, leaving
// the existing file alone, when `path` exists. The file is written in full under a temporary name
// created with O_CREAT | O_EXCL and then linked into place, so a crash never leaves a partial key
// at `path`.
core::Result<void> WriteNewPrivateFile(const std::filesystem::path& path,
                                       std::string_view contents) {
  // The process id and a counter keep concurrent writers, in this process or others, apart.
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path temporary =
      path.string() + fmt::format(".tmp-{}-{}", static_cast<long>(::getpid()), counter++);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError(ErrorCode::kUnavailable,
                     "failed to create key file {}: {}; check that its folder exists and is "
                     "writable, and remove {} if a crash left it behind",
                     temporary.string(), std::strerror(errno), temporary.string());
  }

  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t result = ::write(fd, contents.data() + written, contents.size() - written);
    if (result < 0 && errno == EINTR) continue;
    if (result <= 0) break;
    written += static_cast<size_t>(result);
  }
  const bool synced = written == contents.size() && ::fsync(fd) == 0;
  const int write_error = errno;
  ::close(fd);
  if (!synced) {
    ::unlink(temporary.c_str());
    return MakeError(ErrorCode::kUnavailable, "failed to write key file {}: {}", temporary.string(),
                     std::strerror(write_error));
  }

  // link() fails with EEXIST instead of replacing a key another process created meanwhile.
  const int linked = ::link(temporary.c_str(), path.c_str());
  const int link_error = errno;
  ::unlink(temporary.c_str());
  if (linked != 0) {
    return MakeError(link_error == EEXIST ? ErrorCode::kAlreadyExists : ErrorCode::kUnavailable,
                     "failed to create key file {}: {}", path.string(), std::strerror(link_error));
  }

  // Make the new directory entry durable too, so a crash cannot lose the key after use.
  const std::filesystem::path folder = path.parent_path().empty() ? "." : path.parent_path();
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd >= 0) {
    ::fsync(folder_fd);
    ::close(folder_fd);
  }
  return {};
}

core::Result<PkeyPtr> ParsePrivateKey(const std::filesystem::path& path, std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key file {} does not contain a PEM private key ({}); restore the file "
                     "from a backup, because checkpoints need the key that the ledger introduced "
                     "or rotated in",
                     path.string(), OpenSslError());
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key file {} contains a {} key, but checkpoints are signed with Ed25519 "
                     "only",
                     path.string(), OBJ_nid2sn(EVP_PKEY_get_id(key.get())));
  }
  return key;
}

core::Result<PkeyPtr> GenerateKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) {
    return MakeError(ErrorCode::kInternal, "failed to generate an Ed25519 key: {}", OpenSslError());
  }
  return key;
}

}  // namespace

// ---- Checkpoint ----

std::string Checkpoint::SignedBytes() const {
  return fmt::format("backout-checkpoint/v1\n{}\n{}\n{}\n{}\n", tree_size, ToHex(root),
                     core::FormatTime(time), key_id);
}

nlohmann::json Checkpoint::ToJson() const {
  return {{"tree_size", tree_size},
          {"root", ToHex(root)},
          {"time", core::FormatTime(time)},
          {"key_id", key_id},
          {"signature", signature}};
}

core::Result<Checkpoint> Checkpoint::FromJson(const nlohmann::json& json) {
  auto invalid = [](std::string_view field, std::string_view problem) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid checkpoint: field '{}' {}", field,
                     problem);
  };
  if (!json.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid checkpoint: expected a JSON object with tree_size, root, time, "
                     "key_id and signature, got {}",
                     json.type_name());
  }
  for (const char* field : {"tree_size", "root", "time", "key_id", "signature"}) {
    if (!json.contains(field)) return invalid(field, "is missing");
  }
  Checkpoint checkpoint;

  const auto& tree_size = json.at("tree_size");
  if (!tree_size.is_number_unsigned()) return invalid("tree_size", "must be an integer >= 0");
  checkpoint.tree_size = tree_size.get<uint64_t>();

  const auto& root = json.at("root");
  if (!root.is_string()) return invalid("root", "must be a hex string");
  auto root_hash = HashFromHex(root.get<std::string>());
  if (!root_hash) return invalid("root", root_hash.error().message);
  checkpoint.root = *root_hash;

  const auto& time = json.at("time");
  if (!time.is_string()) return invalid("time", "must be an RFC 3339 string");
  auto parsed_time = core::ParseTime(time.get<std::string>());
  if (!parsed_time) return invalid("time", parsed_time.error().message);
  checkpoint.time = *parsed_time;

  const auto& key_id = json.at("key_id");
  if (!key_id.is_string() || !HashFromHex(key_id.get<std::string>())) {
    return invalid("key_id", "must be the 64-digit hex SHA-256 of the public key");
  }
  checkpoint.key_id = key_id.get<std::string>();

  const auto& signature = json.at("signature");
  if (!signature.is_string()) return invalid("signature", "must be a base64 string");
  checkpoint.signature = signature.get<std::string>();
  return checkpoint;
}

// ---- PublicKey ----

core::Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "not a PEM public key (expected '-----BEGIN PUBLIC KEY-----'): {}",
                     OpenSslError());
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "public key is {}, but ledger checkpoints use Ed25519 keys",
                     OBJ_nid2sn(EVP_PKEY_get_id(key.get())));
  }
  std::string raw(kRawKeySize, '\0');
  size_t raw_size = raw.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(raw.data()),
                                  &raw_size) != 1 ||
      raw_size != kRawKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "failed to read the raw Ed25519 public key: {}",
                     OpenSslError());
  }

  PublicKey public_key;
  public_key.pem_ = PublicKeyPem(key.get());
  public_key.key_id_ = ToHex(Sha256(raw));
  public_key.key_ = std::shared_ptr<EVP_PKEY>(key.release(), PkeyDeleter());
  return public_key;
}

bool PublicKey::Verify(std::string_view message, std::string_view signature_base64) const {
  const std::optional<std::string> signature = Base64Decode(signature_base64);
  if (!signature || signature->size() != kSignatureSize || key_ == nullptr) return false;
  MdContextPtr context(EVP_MD_CTX_new());
  const bool valid =
      context && EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
      EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                       signature->size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  // A failed verification leaves an error on OpenSSL's queue. Clear it so that a later error
  // report does not show it.
  ERR_clear_error();
  return valid;
}

bool PublicKey::Verify(const Checkpoint& checkpoint) const {
  return checkpoint.key_id == key_id_ && Verify(checkpoint.SignedBytes(), checkpoint.signature);
}

// ---- Signer ----

struct Signer::KeyHandle {
  PkeyPtr key;
};

Signer::~Signer() = default;

core::Result<std::shared_ptr<Signer>> Signer::LoadOrCreate(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    if (errno != ENOENT) {
      return MakeError(ErrorCode::kUnavailable, "failed to read key file {}: {}", path.string(),
                       std::strerror(errno));
    }

    // First start: create the key. Another process may win the race to create the file, and
    // then its key is the one to load.
    auto key = GenerateKey();
    if (!key) return std::unexpected(key.error());
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key->get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) != 1) {
      return MakeError(ErrorCode::kInternal, "failed to encode the new key as PEM: {}",
                       OpenSslError());
    }
    std::string pem = BioContents(bio.get());
    auto written = WriteNewPrivateFile(path, pem);
    OPENSSL_cleanse(pem.data(), pem.size());
    if (written) return FromKey(std::make_unique<KeyHandle>(KeyHandle{std::move(*key)}));
    if (written.error().code != ErrorCode::kAlreadyExists) return std::unexpected(written.error());
    if (::stat(path.c_str(), &status) != 0) {
      return MakeError(ErrorCode::kUnavailable, "failed to read key file {}: {}", path.string(),
                       std::strerror(errno));
    }
  }

  if (!S_ISREG(status.st_mode)) {
    return MakeError(ErrorCode::kFailedPrecondition, "key file {} is not a regular file",
                     path.string());
  }
  if ((status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "key file {} has mode {:04o}, so users other than its owner can use it; "
                     "run 'chmod 600 {}' (and rotate the key if someone else may have read it)",
                     path.string(), status.st_mode & 07777, path.string());
  }
  auto pem = ReadFile(path);
  if (!pem) return std::unexpected(pem.error());
  auto key = ParsePrivateKey(path, *pem);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!key) return std::unexpected(key.error());
  return FromKey(std::make_unique<KeyHandle>(KeyHandle{std::move(*key)}));
}

core::Result<std::shared_ptr<Signer>> Signer::Generate() {
  auto key = GenerateKey();
  if (!key) return std::unexpected(key.error());
  return FromKey(std::make_unique<KeyHandle>(KeyHandle{std::move(*key)}));
}

core::Result<std::shared_ptr<Signer>> Signer::FromKey(std::unique_ptr<KeyHandle> key) {
  std::string pem = PublicKeyPem(key->key.get());
  auto public_key = PublicKey::FromPem(pem);
  if (!public_key) return std::unexpected(public_key.error());
  std::shared_ptr<Signer> signer(new Signer());
  signer->key_ = std::move(key);
  signer->public_key_ = std::move(*public_key);
  return signer;
}

std::string Signer::SignBase64(std::string_view message) const {
  std::string signature(kSignatureSize, '\0');
  size_t signature_size = signature.size();
  MdContextPtr context(EVP_MD_CTX_new());
  const bool signed_ok =
      context &&
      EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key_->key.get()) == 1 &&
      EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()),
                     &signature_size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) == 1;
  // With a key that loaded, Ed25519 signing fails in practice only when OpenSSL cannot allocate
  // memory. Abort rather than return a checkpoint without a valid signature.
  if (!signed_ok || signature_size != kSignatureSize) std::abort();
  return Base64Encode(signature);
}

Checkpoint Signer::Sign(uint64_t tree_size, const Hash& root, core::Time time) const {
  Checkpoint checkpoint;
  checkpoint.tree_size = tree_size;
  checkpoint.root = root;
  checkpoint.time = time;
  checkpoint.key_id = public_key_.key_id();
  checkpoint.signature = SignBase64(checkpoint.SignedBytes());
  return checkpoint;
}

// ---- Key entries ----

nlohmann::json KeyIntroducedChange(const PublicKey& key) {
  return {{"public_key", key.pem()}, {"key_id", key.key_id()}};
}

nlohmann::json KeyRotatedChange(const Signer& old_signer, const PublicKey& new_key) {
  return {{"public_key", new_key.pem()},
          {"key_id", new_key.key_id()},
          {"previous_key_id", old_signer.public_key().key_id()},
          {"signature", old_signer.SignBase64(new_key.pem())}};
}

}  // namespace backout::ledger
