#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

// Host key checks for ssh remotes against an OpenSSH known_hosts file, in the format that
// sshd(8) describes under "SSH_KNOWN_HOSTS FILE FORMAT":
//
//   [@cert-authority|@revoked] host-patterns key-type base64-key [comment]
//
// Host patterns are comma-separated names with the wildcards * and ?, a leading ! negates one,
// and a name hashed by `ssh-keygen -H` is written |1|base64-salt|base64-HMAC-SHA1. A server on a
// port other than 22 is listed as [host]:port.
namespace backout::providers::git {

enum class HostKeyStatus {
  kTrusted,  // an entry for the host lists the key
  kUnknown,  // no entry for the host lists a key of the key's type
  kChanged,  // an entry for the host lists another key of the same type
  kRevoked,  // an @revoked entry for the host lists the key
};

struct HostKeyCheck {
  HostKeyStatus status = HostKeyStatus::kUnknown;
  int line = 0;  // the deciding entry's line, for every status but kUnknown
  // For kUnknown: the key types that entries for the host list, which all differ from the key's.
  std::vector<std::string> other_key_types;
};

// The parsed entries of one known_hosts file.
class KnownHosts {
 public:
  // Parses the text of a known_hosts file. An error names `source` and the line that is not an
  // entry. Empty lines and lines starting with # are skipped.
  static core::Result<KnownHosts> Parse(std::string_view text, std::string_view source);

  // Looks up the host key `key` (the SSH wire-format public key blob) of `host` on `port`.
  // @cert-authority entries are never a match, because libgit2 1.5 passes no host certificates.
  HostKeyCheck Check(std::string_view host, int port, std::string_view key) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    bool cert_authority = false;
    bool revoked = false;
    std::string hosts;     // the host field as written
    std::string key_type;  // such as ssh-ed25519
    std::string key;       // the decoded public key blob
    int line = 0;
  };
  std::vector<Entry> entries_;
};

// Returns the name under which known_hosts lists `host` on `port`: the lower-case host for port
// 22, [host]:port otherwise.
std::string KnownHostName(std::string_view host, int port);

// Returns the SHA-256 fingerprint of a public key blob as OpenSSH prints it (SHA256:base64).
std::string KeyFingerprint(std::string_view key);

// Returns the key type that a public key blob names in its first field, or "" when the blob is
// malformed.
std::string KeyTypeName(std::string_view key);

}  // namespace backout::providers::git
