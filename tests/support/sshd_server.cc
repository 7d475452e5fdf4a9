#include "support/sshd_server.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace backout::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttemptsMax = 5;
constexpr auto kStartTimeout = std::chrono::seconds(10);

std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

struct CommandResult {
  int status = -1;
  std::string output;  // standard output and error
};

CommandResult Run(const std::vector<std::string>& argv) {
  std::string command;
  for (const std::string& arg : argv) command += Quote(arg) + " ";
  command += "2>&1 </dev/null";
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    result.output = "cannot run " + command;
    return result;
  }
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  result.status = ::pclose(pipe);
  return result;
}

std::string ReadText(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Writes the configuration of a server on `port`. Password and keyboard-interactive login are
// off, and only public keys listed in the test's authorized_keys let the test's user in.
void WriteConfig(const fs::path& dir, int port, const std::string& user) {
  std::ofstream config(dir / "sshd_config");
  config << "ListenAddress 127.0.0.1:" << port << "\n"
         << "AddressFamily inet\n"
         << "HostKey \"" << (dir / "ssh_host_ed25519_key").string() << "\"\n"
         << "PidFile none\n"
         << "AuthorizedKeysFile \"" << (dir / "authorized_keys").string() << "\"\n"
         << "AllowUsers " << user << "\n"
         << "AuthenticationMethods publickey\n"
         << "PubkeyAuthentication yes\n"
         << "PasswordAuthentication no\n"
         << "KbdInteractiveAuthentication no\n"
         << "HostbasedAuthentication no\n"
         << "PermitRootLogin prohibit-password\n"
         // The folder lives under the build tree, whose parent folders may be group-writable
         // on a developer's machine. StrictModes would reject authorized_keys there, and the
         // files themselves are still created with mode 0600.
         << "StrictModes no\n"
         // PAM needs root, and the tests may run as any user.
         // NOTE: without PAM, OpenSSH 9.2 rejects an account whose /etc/shadow password starts
         // with '!', as locked. sshd run by another user than root cannot read /etc/shadow and
         // skips the check, but the tests fail as root when root's password is locked that way.
         << "UsePAM no\n"
         // Key exchanges without Diffie-Hellman group exchange, which would read /etc/ssh/moduli.
         << "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
            "diffie-hellman-group14-sha256\n"
         << "PermitUserEnvironment no\n"
         << "AllowTcpForwarding no\n"
         << "AllowAgentForwarding no\n"
         << "X11Forwarding no\n"
         << "PermitTTY no\n"
         << "PrintMotd no\n"
         << "LoginGraceTime 30\n"
         << "LogLevel VERBOSE\n";
}

// Waits until sshd logs that it listens on `port`. Returns false when it exited or timed out.
bool WaitUntilListening(ChildProcess& process, const fs::path& log_file, int port) {
  const std::string ready = fmt::format("Server listening on 127.0.0.1 port {}.", port);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadText(log_file).find(ready) != std::string::npos) return true;
    if (!process.Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

std::expected<void, std::string> GenerateSshKey(const fs::path& path,
                                                const std::string& passphrase) {
  CommandResult result = Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C",
                              "backout-test", "-f", path.string()});
  if (result.status != 0) {
    return std::unexpected(
        fmt::format("ssh-keygen could not write {}: {}", path.string(), result.output));
  }
  return {};
}

std::expected<std::unique_ptr<SshServer>, std::string> SshServer::Start(SshServerOptions options) {
  if (!fs::exists(kSshdPath)) {
    return std::unexpected(fmt::format("{} is missing; install openssh-server", kSshdPath));
  }
  // sshd started by root drops privileges into this empty folder and exits when it is missing.
  // Debian's ssh service creates it when the service starts, so a machine whose ssh service
  // never ran lacks it.
  if (::geteuid() == 0 && !fs::exists("/run/sshd")) {
    std::error_code error;
    fs::create_directories("/run/sshd", error);
    ::chmod("/run/sshd", 0755);
  }
  const passwd* account = ::getpwuid(::geteuid());
  if (account == nullptr) {
    return std::unexpected("the test's user has no account entry, which sshd needs to log in");
  }

  std::unique_ptr<SshServer> server(new SshServer());
  server->dir_ = options.dir;
  server->log_file_ = options.dir / "sshd.log";
  server->user_ = account->pw_name;

  const fs::path host_key = options.dir / "ssh_host_ed25519_key";
  if (auto generated = GenerateSshKey(host_key); !generated) {
    return std::unexpected(generated.error());
  }
  server->host_public_key_ = ReadText(fs::path(host_key.string() + ".pub"));
  // Keep "type base64" and drop the comment and the newline.
  if (size_t second_space =
          server->host_public_key_.find(' ', server->host_public_key_.find(' ') + 1);
      second_space != std::string::npos) {
    server->host_public_key_.resize(second_space);
  }

  {
    std::ofstream authorized(options.dir / "authorized_keys");
    for (const fs::path& key : options.authorized_keys) authorized << ReadText(key);
  }
  ::chmod((options.dir / "authorized_keys").c_str(), 0600);

  for (int attempt = 1; attempt <= kStartAttemptsMax; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port) return std::unexpected(port.error());
    WriteConfig(options.dir, *port, server->user_);
    auto process = ChildProcess::Spawn(
        {kSshdPath, "-D", "-e", "-f", (options.dir / "sshd_config").string()}, server->log_file_);
    if (!process) return std::unexpected(process.error());
    if (WaitUntilListening(*process, server->log_file_, *port)) {
      server->port_ = *port;
      server->process_ = std::move(*process);
      return server;
    }
    process->Stop();
    // Another process may have taken the port between FreeLoopbackPort and sshd's bind.
    if (ReadText(server->log_file_).find("Address already in use") == std::string::npos) break;
  }
  return std::unexpected(fmt::format("sshd did not start; the end of {}:\n{}",
                                     server->log_file_.string(),
                                     TailOfFile(server->log_file_, 20)));
}

SshServer::~SshServer() { process_.Stop(); }

std::expected<void, std::string> SshServer::CheckLogin(const fs::path& key) const {
  const fs::path known_hosts = dir_ / "client_known_hosts";
  std::ofstream(known_hosts) << KnownHostsLine() << "\n";
  // -F /dev/null keeps the system's and the user's ssh_config out of the check.
  CommandResult result = Run({"ssh",
                              "-F",
                              "/dev/null",
                              "-o",
                              "BatchMode=yes",
                              "-o",
                              "IdentitiesOnly=yes",
                              "-o",
                              "IdentityAgent=none",
                              "-o",
                              "UserKnownHostsFile=" + known_hosts.string(),
                              "-o",
                              "GlobalKnownHostsFile=/dev/null",
                              "-o",
                              "StrictHostKeyChecking=yes",
                              "-o",
                              "ConnectTimeout=10",
                              "-i",
                              key.string(),
                              "-p",
                              std::to_string(port_),
                              user_ + "@127.0.0.1",
                              "true"});
  if (result.status != 0) {
    return std::unexpected(fmt::format("ssh could not log in to 127.0.0.1:{}: {}\nsshd's log:\n{}",
                                       port_, result.output, TailOfFile(log_file_, 20)));
  }
  return {};
}

std::string SshServer::Url(const fs::path& repository) const {
  return fmt::format("ssh://{}@127.0.0.1:{}{}", user_, port_, repository.string());
}

std::string SshServer::KnownHostsLine() const {
  return fmt::format("[127.0.0.1]:{} {}", port_, host_public_key_);
}

int SshServer::AcceptedLogins() const {
  const std::string log = ReadText(log_file_);
  int count = 0;
  for (size_t at = log.find("Accepted publickey"); at != std::string::npos;
       at = log.find("Accepted publickey", at + 1)) {
    ++count;
  }
  return count;
}

}  // namespace backout::testing
