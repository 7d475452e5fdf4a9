#pragma once

#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace backout::testing {

// The OpenSSH server that SshServer runs, installed by the Debian package openssh-server.
inline constexpr char kSshdPath[] = "/usr/sbin/sshd";

// Generates an ed25519 key pair with ssh-keygen: the private key at `path` (mode 0600), in
// OpenSSH's format and encrypted when `passphrase` is not empty, and the public key at
// `path`.pub.
std::expected<void, std::string> GenerateSshKey(const std::filesystem::path& path,
                                                const std::string& passphrase = "");

struct SshServerOptions {
  std::filesystem::path dir;  // an empty folder for the configuration, keys and log
  std::vector<std::filesystem::path> authorized_keys;  // public key files that may log in
};

// An OpenSSH server for one test: `/usr/sbin/sshd -D -e -f <dir>/sshd_config`, listening only on
// a free port of 127.0.0.1, with a freshly generated ed25519 host key, its own authorized_keys
// file and public key authentication only. The configuration names every file sshd needs, so
// nothing under /etc/ssh is read. It lets in only the user who runs the test, because sshd
// started by another user than root can only run sessions as that user. Destroying the object
// stops sshd by its PID.
class SshServer {
 public:
  static std::expected<std::unique_ptr<SshServer>, std::string> Start(SshServerOptions options);

  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;
  ~SshServer();

  // Logs in with the ssh command and the private key `key`, checking the host key against
  // KnownHostsLine(), and runs `true`. Returns the command's output and sshd's log on failure.
  std::expected<void, std::string> CheckLogin(const std::filesystem::path& key) const;

  int port() const { return port_; }
  const std::string& user() const { return user_; }
  // The URL of a repository on this server: ssh://USER@127.0.0.1:PORT/ABSOLUTE-PATH.
  std::string Url(const std::filesystem::path& repository) const;
  // The known_hosts line for this server's host key: [127.0.0.1]:PORT ssh-ed25519 BASE64.
  std::string KnownHostsLine() const;
  const std::filesystem::path& log_file() const { return log_file_; }
  // Counts the logins sshd accepted so far, from its log.
  int AcceptedLogins() const;

 private:
  SshServer() = default;

  std::filesystem::path dir_;
  std::filesystem::path log_file_;
  std::string user_;
  std::string host_public_key_;  // "ssh-ed25519 BASE64"
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace backout::testing
