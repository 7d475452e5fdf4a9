#include "app/tokens.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "ledger/hash.h"

namespace backout::app {
namespace {

constexpr std::string_view kPrefix = "bkt_";
constexpr size_t kSecretBytes = 32;  // 256 bits

std::string Base64Url(const unsigned char* bytes, size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | bytes[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3f];
  return out;
}

}  // namespace

core::Result<IssuedToken> IssueToken(int64_t number) {
  std::array<unsigned char, kSecretBytes> secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    return core::MakeError(core::ErrorCode::kInternal,
                           "OpenSSL could not produce random bytes for a new token; check the "
                           "system's entropy source and retry");
  }
  IssuedToken token;
  token.token_id = fmt::format("tok-{}", number);
  token.text = fmt::format("{}{}_{}", kPrefix, number, Base64Url(secret.data(), secret.size()));
  token.sha256 = HashToken(token.text);
  OPENSSL_cleanse(secret.data(), secret.size());
  return token;
}

std::optional<std::string> TokenIdOf(std::string_view text) {
  if (!text.starts_with(kPrefix)) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  const size_t separator = text.find('_');
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + separator, number);
  if (error != std::errc() || end != text.data() + separator || number <= 0) return std::nullopt;
  return fmt::format("tok-{}", number);
}

std::string HashToken(std::string_view text) { return ledger::ToHex(ledger::Sha256(text)); }

bool TokenMatches(std::string_view text, std::string_view stored_sha256) {
  const std::string actual = HashToken(text);
  if (actual.size() != stored_sha256.size()) return false;
  return CRYPTO_memcmp(actual.data(), stored_sha256.data(), actual.size()) == 0;
}

}  // namespace backout::app
