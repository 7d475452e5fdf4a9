#include "providers/git/known_hosts.h"

#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <string>

#include <fmt/format.h>

namespace backout::providers::git {
namespace {

// Keys and lines made with OpenSSH 9.2's ssh-keygen. kHashedLine is `[git.example.com]:2222`
// with kKeyA, hashed by `ssh-keygen -H`.
constexpr char kKeyA[] = "AAAAC3NzaC1lZDI1NTE5AAAAINrS+7CLXRid3UOKY2/BUiFR3o0904QqE/XfCQyBpjOw";
constexpr char kKeyAFingerprint[] = "SHA256:ZQLoIBH+6L7GJzrTF7LQaR0y79eo7GqZP/stf8O7JKo";
constexpr char kKeyB[] = "AAAAC3NzaC1lZDI1NTE5AAAAINemBwYPi/iDewbCAMeklK4QNPOBC5co4c+HCqfScUHc";
constexpr char kEcdsaKey[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJ9IcnWj1j/1k+hiOgJgIKt6V+tNaSrVrxDNvk"
    "nTRbpqfJZr5p9iDGzZW6ya3WH+/ORo+9pwQzeoP2Gn3reeZdE=";
constexpr char kEcdsaFingerprint[] = "SHA256:YxygU/ZEBB3UkQIguaffj4GiHa71ioedegvoiuqJi5Y";
constexpr char kHashedLine[] =
    "|1|YI/cJ9BgSbq7lyq96YZUR0lu4eE=|pS57iFydBONHh4IdJkOnwFxShhM= ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAINrS+7CLXRid3UOKY2/BUiFR3o0904QqE/XfCQyBpjOw";

// Decodes a key as it appears in a known_hosts line into the blob an ssh server sends.
std::string Blob(const std::string& base64) {
  std::string blob(base64.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(blob.data()),
                               reinterpret_cast<const unsigned char*>(base64.data()),
                               static_cast<int>(base64.size()));
  EXPECT_GE(length, 0) << base64;
  size_t padding = 0;
  while (padding < base64.size() && base64[base64.size() - 1 - padding] == '=') ++padding;
  blob.resize(static_cast<size_t>(length) - padding);
  return blob;
}

// Returns one known_hosts line. fmt::format avoids GCC 12's false -Warray-bounds warnings on
// chains of std::string concatenation.
std::string Line(std::string_view hosts, std::string_view type, std::string_view key) {
  return fmt::format("{} {} {}\n", hosts, type, key);
}

KnownHosts Parse(const std::string& text) {
  auto parsed = KnownHosts::Parse(text, "/etc/backout/known_hosts");
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message;
  return parsed ? *parsed : KnownHosts();
}

TEST(KnownHosts, FingerprintMatchesSshKeygen) {
  EXPECT_EQ(KeyFingerprint(Blob(kKeyA)), kKeyAFingerprint);
  EXPECT_EQ(KeyFingerprint(Blob(kEcdsaKey)), kEcdsaFingerprint);
  EXPECT_EQ(KeyTypeName(Blob(kKeyA)), "ssh-ed25519");
  EXPECT_EQ(KeyTypeName(Blob(kEcdsaKey)), "ecdsa-sha2-nistp256");
  // The length field claims 9 bytes of type name, but only 3 follow.
  EXPECT_EQ(KeyTypeName(std::string_view("\0\0\0\x09ssh", 7)), "");
}

TEST(KnownHosts, HostNameAddsNonDefaultPort) {
  EXPECT_EQ(KnownHostName("Git.Example.com", 22), "git.example.com");
  EXPECT_EQ(KnownHostName("127.0.0.1", 2222), "[127.0.0.1]:2222");
}

TEST(KnownHosts, PlainEntryOnDefaultPort) {
  KnownHosts hosts = Parse("# deploy hosts\n\n" + Line("git.example.com,10.0.0.5", "ssh-ed25519",
                                                       kKeyA + std::string(" ops@example")));
  EXPECT_EQ(hosts.size(), 1u);
  HostKeyCheck check = hosts.Check("git.example.com", 22, Blob(kKeyA));
  EXPECT_EQ(check.status, HostKeyStatus::kTrusted);
  EXPECT_EQ(check.line, 3);
  EXPECT_EQ(hosts.Check("GIT.example.COM", 22, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  EXPECT_EQ(hosts.Check("10.0.0.5", 22, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  // A plain name stands for port 22 only.
  EXPECT_EQ(hosts.Check("git.example.com", 2222, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  EXPECT_EQ(hosts.Check("other.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
}

TEST(KnownHosts, BracketedEntryNamesPort) {
  KnownHosts hosts = Parse(Line("[git.example.com]:2222", "ssh-ed25519", kKeyA));
  EXPECT_EQ(hosts.Check("git.example.com", 2222, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  EXPECT_EQ(hosts.Check("git.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  EXPECT_EQ(hosts.Check("git.example.com", 2223, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
}

TEST(KnownHosts, HashedEntryFromSshKeygen) {
  KnownHosts hosts = Parse(fmt::format("{}\n", kHashedLine));
  EXPECT_EQ(hosts.Check("git.example.com", 2222, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  EXPECT_EQ(hosts.Check("git.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  EXPECT_EQ(hosts.Check("git.example.org", 2222, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  HostKeyCheck changed = hosts.Check("git.example.com", 2222, Blob(kKeyB));
  EXPECT_EQ(changed.status, HostKeyStatus::kChanged);
  EXPECT_EQ(changed.line, 1);
}

TEST(KnownHosts, WildcardsAndNegation) {
  KnownHosts hosts =
      Parse(Line("*.example.com,!untrusted.example.com,git?.example.org", "ssh-ed25519", kKeyA));
  EXPECT_EQ(hosts.Check("git.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  EXPECT_EQ(hosts.Check("git1.example.org", 22, Blob(kKeyA)).status, HostKeyStatus::kTrusted);
  EXPECT_EQ(hosts.Check("git12.example.org", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  EXPECT_EQ(hosts.Check("untrusted.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
  EXPECT_EQ(hosts.Check("example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
}

TEST(KnownHosts, OtherKeyOfSameTypeIsChange) {
  KnownHosts hosts = Parse(Line("other.example.com", "ssh-ed25519", kKeyA) +
                           Line("git.example.com", "ssh-ed25519", kKeyB));
  HostKeyCheck check = hosts.Check("git.example.com", 22, Blob(kKeyA));
  EXPECT_EQ(check.status, HostKeyStatus::kChanged);
  EXPECT_EQ(check.line, 2);
}

TEST(KnownHosts, SecondKeyOfHostIsTrusted) {
  KnownHosts hosts = Parse(Line("git.example.com", "ssh-ed25519", kKeyB) +
                           Line("git.example.com", "ssh-ed25519", kKeyA));
  HostKeyCheck check = hosts.Check("git.example.com", 22, Blob(kKeyA));
  EXPECT_EQ(check.status, HostKeyStatus::kTrusted);
  EXPECT_EQ(check.line, 2);
}

TEST(KnownHosts, OnlyOtherTypesListed) {
  KnownHosts hosts = Parse(Line("git.example.com", "ecdsa-sha2-nistp256", kEcdsaKey));
  HostKeyCheck check = hosts.Check("git.example.com", 22, Blob(kKeyA));
  EXPECT_EQ(check.status, HostKeyStatus::kUnknown);
  ASSERT_EQ(check.other_key_types.size(), 1u);
  EXPECT_EQ(check.other_key_types[0], "ecdsa-sha2-nistp256");
}

TEST(KnownHosts, RevokedKeyWinsOverListedKey) {
  KnownHosts hosts = Parse(Line("git.example.com", "ssh-ed25519", kKeyA) +
                           Line("@revoked *", "ssh-ed25519", kKeyA));
  HostKeyCheck check = hosts.Check("git.example.com", 22, Blob(kKeyA));
  EXPECT_EQ(check.status, HostKeyStatus::kRevoked);
  EXPECT_EQ(check.line, 2);
  // A revoked entry does not cover other keys.
  EXPECT_EQ(hosts.Check("git.example.com", 22, Blob(kKeyB)).status, HostKeyStatus::kChanged);
}

TEST(KnownHosts, CertAuthorityIsNeverMatch) {
  KnownHosts hosts = Parse(Line("@cert-authority *.example.com", "ssh-ed25519", kKeyA));
  EXPECT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts.Check("git.example.com", 22, Blob(kKeyA)).status, HostKeyStatus::kUnknown);
}

TEST(KnownHosts, MalformedLinesNameLineAndFormat) {
  struct Case {
    std::string text;
    std::string reason;
  };
  const std::string good = Line("git.example.com", "ssh-ed25519", kKeyA);
  const Case cases[] = {
      {good + "git.example.com ssh-ed25519\n", "fewer than three fields"},
      {good + "git.example.com ssh-ed25519 not*base64\n", "not valid base64"},
      {good + Line("git.example.com", "ssh-rsa", kKeyA),
       "holds a ssh-ed25519 key, not the ssh-rsa"},
      {good + Line("@trusted git.example.com", "ssh-ed25519", kKeyA), "unknown marker @trusted"},
      {good + Line("|1|bm90|c2FsdA==", "ssh-ed25519", kKeyA), "hashed host name"},
      {good + "git.example.com 2048 65537 1234567\n", "not valid base64"},
  };
  for (const Case& c : cases) {
    auto parsed = KnownHosts::Parse(c.text, "/etc/backout/known_hosts");
    ASSERT_FALSE(parsed.has_value()) << c.text;
    const std::string& error = parsed.error().message;
    EXPECT_NE(error.find("/etc/backout/known_hosts line 2: "), std::string::npos) << error;
    EXPECT_NE(error.find(c.reason), std::string::npos) << error;
    EXPECT_NE(error.find("hosts key-type base64-key"), std::string::npos) << error;
  }
}

TEST(KnownHosts, EmptyTextHasNoEntries) {
  auto parsed = KnownHosts::Parse("# nothing yet\n\n", "/etc/backout/known_hosts");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->size(), 0u);
}

}  // namespace
}  // namespace backout::providers::git
