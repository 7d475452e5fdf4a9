#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace backout::providers::git {

// Checks the form of the private key that a binding's `ssh_key` references, before libssh2 reads
// it: the text must contain an OpenSSH or PEM private key block, and an encrypted key needs a
// passphrase. Returns what is wrong and the fix, without any part of the key, or nullopt when
// the key has a usable form. The key's cryptographic content is checked only at the first
// connection.
std::optional<std::string> CheckSshPrivateKey(std::string_view key, bool has_passphrase);

}  // namespace backout::providers::git
