#include "ledger/hash.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <memory>
#include <utility>

namespace backout::ledger {
namespace {

// OpenSSL 3 resolves EVP_sha256() through a provider lookup on every EVP_DigestInit_ex. Fetching
// the implementation once and reusing one context per thread saves that cost on short messages,
// such as the 65 bytes of a node hash.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) std::abort();  // no default provider: nothing in the ledger can work
  return md;
}

struct ContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

EVP_MD_CTX* ThreadContext() {
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  if (context == nullptr) std::abort();
  return context.get();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Hash Sha256(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* context = ThreadContext();
  Hash hash;
  unsigned int length = 0;
  bool ok = EVP_DigestInit_ex(context, Sha256Md(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(context, part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(context, hash.data(), &length) == 1;
  // With a fetched SHA-256 and a live context, OpenSSL fails here only on a library fault.
  if (!ok || length != hash.size()) std::abort();
  return hash;
}

Hash Sha256(std::string_view bytes) { return Sha256({bytes}); }

// OpenSSL fails these calls only on allocation failure or a library fault, which nothing here
// can recover from, as in Sha256 above.
Sha256Hasher::Sha256Hasher() : context_(EVP_MD_CTX_new()) {
  if (context_ == nullptr || EVP_DigestInit_ex(context_, Sha256Md(), nullptr) != 1) std::abort();
}

Sha256Hasher::Sha256Hasher(const Sha256Hasher& other) : context_(EVP_MD_CTX_new()) {
  if (context_ == nullptr || other.context_ == nullptr ||
      EVP_MD_CTX_copy_ex(context_, other.context_) != 1) {
    std::abort();
  }
}

Sha256Hasher& Sha256Hasher::operator=(const Sha256Hasher& other) {
  if (this != &other) *this = Sha256Hasher(other);
  return *this;
}

Sha256Hasher::Sha256Hasher(Sha256Hasher&& other) noexcept : context_(other.context_) {
  other.context_ = nullptr;
}

Sha256Hasher& Sha256Hasher::operator=(Sha256Hasher&& other) noexcept {
  std::swap(context_, other.context_);
  return *this;
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(context_); }

void Sha256Hasher::Update(std::string_view bytes) {
  if (context_ == nullptr || EVP_DigestUpdate(context_, bytes.data(), bytes.size()) != 1) {
    std::abort();
  }
}

Hash Sha256Hasher::Digest() const {
  // Finishing a digest ends its context, so it finishes a copy in this thread's context.
  EVP_MD_CTX* copy = ThreadContext();
  Hash hash;
  unsigned int length = 0;
  if (context_ == nullptr || EVP_MD_CTX_copy_ex(copy, context_) != 1 ||
      EVP_DigestFinal_ex(copy, hash.data(), &length) != 1 || length != hash.size()) {
    std::abort();
  }
  return hash;
}

std::string ToHex(const Hash& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(hash.size() * 2, '0');
  for (size_t i = 0; i < hash.size(); ++i) {
    hex[2 * i] = kDigits[hash[i] >> 4];
    hex[2 * i + 1] = kDigits[hash[i] & 0x0f];
  }
  return hex;
}

core::Result<Hash> HashFromHex(std::string_view hex) {
  Hash hash;
  if (hex.size() != hash.size() * 2) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid SHA-256 digest '{}': expected 64 hexadecimal digits, got {}",
                           hex, hex.size());
  }
  for (size_t i = 0; i < hash.size(); ++i) {
    const int high = HexValue(hex[2 * i]);
    const int low = HexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "invalid SHA-256 digest '{}': character {} is not hexadecimal", hex,
                             high < 0 ? 2 * i : 2 * i + 1);
    }
    hash[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return hash;
}

}  // namespace backout::ledger
