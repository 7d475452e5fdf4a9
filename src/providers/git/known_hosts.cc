#include "providers/git/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include <fmt/format.h>

namespace backout::providers::git {
namespace {

constexpr std::string_view kHashedPrefix = "|1|";
constexpr size_t kSha1Bytes = 20;

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// Decodes padded standard base64, or returns nullopt for any other text.
std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      if (i + 2 < text.size()) return std::nullopt;
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return std::nullopt;
  }
  std::string decoded(text.size() / 4 * 3, '\0');
  const int length =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                      reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
  if (length < 0) return std::nullopt;
  decoded.resize(static_cast<size_t>(length) - padding);
  return decoded;
}

std::string EncodeBase64Unpadded(std::string_view bytes) {
  std::string encoded((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()));
  encoded.resize(static_cast<size_t>(length));
  while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
  return encoded;
}

// Matches `name` against a pattern with the wildcards * (any run of characters) and ? (one
// character), by backtracking to the last * on a mismatch.
bool WildcardMatch(std::string_view pattern, std::string_view name) {
  size_t p = 0;
  size_t n = 0;
  size_t star = std::string_view::npos;
  size_t star_name = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_name = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++star_name;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Checks a hashed host field |1|salt|hash: the hash is HMAC-SHA1 of the name keyed with the salt.
bool HashedHostMatches(std::string_view field, std::string_view name) {
  std::string_view rest = field.substr(kHashedPrefix.size());
  const size_t separator = rest.find('|');
  if (separator == std::string_view::npos) return false;
  auto salt = DecodeBase64(rest.substr(0, separator));
  auto hash = DecodeBase64(rest.substr(separator + 1));
  if (!salt || !hash || hash->size() != kSha1Bytes) return false;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
           reinterpret_cast<const unsigned char*>(name.data()), name.size(), digest,
           &digest_length) == nullptr) {
    return false;
  }
  return digest_length == kSha1Bytes &&
         std::equal(hash->begin(), hash->end(), digest,
                    [](char a, unsigned char b) { return static_cast<unsigned char>(a) == b; });
}

// Returns whether the host field lists `name`: a hashed name equal to it, or a pattern list in
// which a pattern matches it and no negated pattern does.
bool HostsMatch(std::string_view field, std::string_view name) {
  if (field.starts_with(kHashedPrefix)) return HashedHostMatches(field, name);
  bool matched = false;
  size_t start = 0;
  while (start <= field.size()) {
    size_t end = field.find(',', start);
    if (end == std::string_view::npos) end = field.size();
    std::string_view pattern = field.substr(start, end - start);
    const bool negated = pattern.starts_with('!');
    if (negated) pattern.remove_prefix(1);
    if (!pattern.empty() && WildcardMatch(Lower(pattern), name)) {
      if (negated) return false;
      matched = true;
    }
    start = end + 1;
  }
  return matched;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

std::string KeyTypeName(std::string_view key) {
  // RFC 4253 section 6.6: the blob starts with the key type as a uint32 length and its bytes.
  if (key.size() < 4) return "";
  const auto* bytes = reinterpret_cast<const unsigned char*>(key.data());
  const size_t length = (size_t{bytes[0]} << 24) | (size_t{bytes[1]} << 16) |
                        (size_t{bytes[2]} << 8) | size_t{bytes[3]};
  if (length == 0 || length > key.size() - 4) return "";
  return std::string(key.substr(4, length));
}

std::string KeyFingerprint(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  EVP_Digest(key.data(), key.size(), digest, &digest_length, EVP_sha256(), nullptr);
  return "SHA256:" + EncodeBase64Unpadded(
                         std::string_view(reinterpret_cast<const char*>(digest), digest_length));
}

std::string KnownHostName(std::string_view host, int port) {
  if (port == 22) return Lower(host);
  return fmt::format("[{}]:{}", Lower(host), port);
}

core::Result<KnownHosts> KnownHosts::Parse(std::string_view text, std::string_view source) {
  KnownHosts parsed;
  int line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.ends_with('\r')) line.remove_suffix(1);

    std::vector<std::string_view> fields = SplitFields(line);
    if (fields.empty() || fields.front().starts_with('#')) continue;
    auto invalid = [&](std::string reason) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{} line {}: {}; each line must read `[@cert-authority|@revoked] "
                             "hosts key-type base64-key [comment]`, as ssh-keyscan prints it",
                             source, line_number, reason);
    };

    Entry entry;
    entry.line = line_number;
    size_t next = 0;
    if (fields[0].starts_with('@')) {
      if (fields[0] == "@cert-authority") {
        entry.cert_authority = true;
      } else if (fields[0] == "@revoked") {
        entry.revoked = true;
      } else {
        return invalid(fmt::format("unknown marker {}", fields[0]));
      }
      next = 1;
    }
    if (fields.size() < next + 3) return invalid("the line has fewer than three fields");
    entry.hosts = std::string(fields[next]);
    entry.key_type = std::string(fields[next + 1]);
    if (entry.hosts.starts_with(kHashedPrefix)) {
      std::string_view rest = std::string_view(entry.hosts).substr(kHashedPrefix.size());
      const size_t separator = rest.find('|');
      auto hash = separator == std::string_view::npos ? std::nullopt
                                                      : DecodeBase64(rest.substr(separator + 1));
      if (!hash || !DecodeBase64(rest.substr(0, separator)) || hash->size() != kSha1Bytes) {
        return invalid("the hashed host name is not |1|base64-salt|base64-hash");
      }
    }
    auto key = DecodeBase64(fields[next + 2]);
    if (!key) return invalid("the key is not valid base64");
    const std::string named_type = KeyTypeName(*key);
    if (named_type != entry.key_type) {
      return invalid(fmt::format("the key field holds a {} key, not the {} that the line names",
                                 named_type.empty() ? "malformed" : named_type, entry.key_type));
    }
    entry.key = std::move(*key);
    parsed.entries_.push_back(std::move(entry));
  }
  return parsed;
}

HostKeyCheck KnownHosts::Check(std::string_view host, int port, std::string_view key) const {
  const std::string name = KnownHostName(host, port);
  const std::string key_type = KeyTypeName(key);
  HostKeyCheck check;
  int trusted_line = 0;
  int changed_line = 0;
  for (const Entry& entry : entries_) {
    if (entry.cert_authority || !HostsMatch(entry.hosts, name)) continue;
    if (entry.revoked) {
      if (entry.key == key) return HostKeyCheck{HostKeyStatus::kRevoked, entry.line, {}};
      continue;
    }
    if (entry.key == key) {
      if (trusted_line == 0) trusted_line = entry.line;
    } else if (entry.key_type == key_type) {
      if (changed_line == 0) changed_line = entry.line;
    } else if (std::find(check.other_key_types.begin(), check.other_key_types.end(),
                         entry.key_type) == check.other_key_types.end()) {
      check.other_key_types.push_back(entry.key_type);
    }
  }
  if (trusted_line != 0) return HostKeyCheck{HostKeyStatus::kTrusted, trusted_line, {}};
  if (changed_line != 0) return HostKeyCheck{HostKeyStatus::kChanged, changed_line, {}};
  return check;
}

}  // namespace backout::providers::git
