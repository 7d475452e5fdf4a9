#include "providers/git/ssh_key.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstdint>

namespace backout::providers::git {
namespace {

constexpr std::string_view kOpenSshBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kOpenSshEnd = "-----END OPENSSH PRIVATE KEY-----";
// The bytes that start a decoded OpenSSH private key, as ssh-keygen writes it.
constexpr std::string_view kOpenSshMagic{"openssh-key-v1\0", 15};

// Returns the cipher name of an OpenSSH private key block ("none" when it is not encrypted), or
// nullopt when the block cannot be decoded.
std::optional<std::string> OpenSshCipher(std::string_view key, size_t begin) {
  const size_t body_start = begin + kOpenSshBegin.size();
  const size_t end = key.find(kOpenSshEnd, body_start);
  if (end == std::string_view::npos) return std::nullopt;
  std::string base64;
  for (char c : key.substr(body_start, end - body_start)) {
    if (!std::isspace(static_cast<unsigned char>(c))) base64 += c;
  }
  if (base64.empty() || base64.size() % 4 != 0) return std::nullopt;
  std::string decoded(base64.size() / 4 * 3, '\0');
  const int length =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                      reinterpret_cast<const unsigned char*>(base64.data()), int(base64.size()));
  if (length < 0) return std::nullopt;
  decoded.resize(static_cast<size_t>(length));

  // The magic is followed by the cipher name as an SSH string: a big-endian uint32 length and
  // the bytes.
  if (!std::string_view(decoded).starts_with(kOpenSshMagic)) return std::nullopt;
  const size_t at = kOpenSshMagic.size();
  if (decoded.size() < at + 4) return std::nullopt;
  uint32_t name_length = 0;
  for (size_t i = 0; i < 4; ++i) {
    name_length = (name_length << 8) | static_cast<unsigned char>(decoded[at + i]);
  }
  if (name_length == 0 || name_length > 64 || decoded.size() < at + 4 + name_length) {
    return std::nullopt;
  }
  return decoded.substr(at + 4, name_length);
}

// Returns whether `key` looks like a public key: an OpenSSH public key line or a PEM or RFC 4716
// public key block.
bool IsPublicKey(std::string_view key) {
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) {
    key.remove_prefix(1);
  }
  return key.starts_with("ssh-") || key.starts_with("ecdsa-sha2-") || key.starts_with("sk-ssh-") ||
         key.starts_with("sk-ecdsa-") || key.find("PUBLIC KEY-----") != std::string_view::npos;
}

}  // namespace

std::optional<std::string> CheckSshPrivateKey(std::string_view key, bool has_passphrase) {
  constexpr std::string_view kNoPassphrase =
      "the private key that ssh_key references is encrypted, but `credentials` give no "
      "ssh_passphrase; add ssh_passphrase with a reference to the key's passphrase, such as "
      "env:GIT_SSH_PASSPHRASE, or reference an unencrypted key";

  if (const size_t begin = key.find(kOpenSshBegin); begin != std::string_view::npos) {
    const auto cipher = OpenSshCipher(key, begin);
    if (!cipher) {
      return "the OpenSSH private key that ssh_key references is damaged or cut short; reference "
             "the whole key file as ssh-keygen wrote it";
    }
    if (*cipher != "none" && !has_passphrase) return std::string(kNoPassphrase);
    return std::nullopt;
  }

  // A PEM private key: PKCS#1 (RSA, EC, DSA) or PKCS#8, whose encrypted form has its own label
  // or a Proc-Type header.
  const size_t begin = key.find("-----BEGIN ");
  const size_t label_end = begin == std::string_view::npos ? begin : key.find("-----", begin + 11);
  const bool pem_private = label_end != std::string_view::npos &&
                           key.substr(begin, label_end - begin).ends_with("PRIVATE KEY") &&
                           key.find("-----END ", label_end) != std::string_view::npos;
  if (pem_private) {
    const bool encrypted =
        key.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
        key.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
    if (encrypted && !has_passphrase) return std::string(kNoPassphrase);
    return std::nullopt;
  }

  if (IsPublicKey(key)) {
    return "the secret that ssh_key references is a public key; reference the private key "
           "file instead, which is usually the same name without .pub";
  }
  return "the secret that ssh_key references contains no private key block (-----BEGIN OPENSSH "
         "PRIVATE KEY----- or a PEM private key); reference the private key file as ssh-keygen "
         "wrote it";
}

}  // namespace backout::providers::git
