#include "providers/git/git_settings.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>

#include "core/time.h"
#include "providers/git/ssh_key.h"
#include "providers/settings_reader.h"

namespace backout::providers::git {
namespace {

constexpr std::array<std::string_view, 20> kKnownFields = {
    "repository",      "branch",         "path",
    "version_pattern", "version_key",    "work_dir",
    "author_name",     "author_email",   "suspend_automation",
    "push_attempts",   "verify_for",     "verify_interval",
    "credentials",     "health",         "health_url",
    "health_timeout",  "controller_url", "controller_revision_pointer",
    "ca_file",         "known_hosts"};

// The largest CA file read; a bundle of every public CA is about 200 KiB.
constexpr size_t kCaFileMaxBytes = 4 * 1024 * 1024;

// The largest known_hosts file read. An Ed25519 line is about 100 bytes and an RSA line about
// 550, so this allows thousands of keys.
constexpr size_t kKnownHostsMaxBytes = 4 * 1024 * 1024;

constexpr std::array<std::string_view, 4> kCredentialRoles = {"username", "password", "ssh_key",
                                                              "ssh_passphrase"};

// Checks a path inside the repository: relative, normal, without "..".
core::Result<std::string> RepositoryPath(const SettingsReader& reader, std::string_view field,
                                         const std::string& text) {
  std::filesystem::path path(text);
  if (path.is_absolute()) {
    return reader.Invalid(field, "'{}' must be relative to the repository's top folder", text);
  }
  std::string normal = path.lexically_normal().string();
  if (normal != text || normal == "." || normal.starts_with("../") || normal == "..") {
    return reader.Invalid(field,
                          "'{}' must be a normal path inside the repository, such as "
                          "apps/checkout/values.yaml",
                          text);
  }
  return normal;
}

core::Result<void> CheckRepository(const SettingsReader& reader, const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    // A local path or scp-like syntax (git@host:path).
    if (url.starts_with("/") || url.find(':') != std::string::npos) return {};
    return reader.Invalid("repository",
                          "'{}' must be an absolute path or a URL such as "
                          "https://git.example.com/deploy.git",
                          url);
  }
  std::string scheme_name = url.substr(0, scheme);
  if (scheme_name != "https" && scheme_name != "http" && scheme_name != "ssh" &&
      scheme_name != "file" && scheme_name != "git") {
    return reader.Invalid("repository", "unsupported scheme {}; use https, ssh or file",
                          scheme_name);
  }
  size_t host_end = url.find('/', scheme + 3);
  std::string authority = url.substr(scheme + 3, host_end - (scheme + 3));
  size_t at = authority.rfind('@');
  if (at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos) {
    return reader.Invalid("repository",
                          "the URL contains a password; remove it and give it in `credentials` "
                          "as a secret reference");
  }
  return {};
}

// Returns whether libgit2 reaches `url` over ssh: an ssh:// URL or scp-like syntax (host:path).
bool IsSshRepository(std::string_view url) {
  if (url.starts_with("ssh://")) return true;
  return url.find("://") == std::string_view::npos && !url.starts_with("/") &&
         url.find(':') != std::string_view::npos;
}

std::optional<int> ParsePort(std::string_view text) {
  int port = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) {
    return std::nullopt;
  }
  return port;
}

// Returns the port of an ssh repository, as libgit2 1.5 reads it: the port of an ssh:// URL, or
// of scp-like syntax with a bracketed [host:port]:path, else 22. Returns nullopt when the port
// is not a number from 1 to 65535.
std::optional<int> SshPort(std::string_view url) {
  std::string_view authority;
  if (url.starts_with("ssh://")) {
    authority = url.substr(6, url.find('/', 6) - 6);
  } else if (url.starts_with("[")) {
    const size_t close = url.find(']');
    if (close == std::string_view::npos) return 22;
    std::string_view inside = url.substr(1, close - 1);
    // An IPv6 address has several colons and no port.
    if (std::count(inside.begin(), inside.end(), ':') != 1) return 22;
    authority = inside;
  } else {
    return 22;
  }
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  size_t colon = std::string_view::npos;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close != std::string_view::npos && close + 1 < authority.size() &&
        authority[close + 1] == ':') {
      colon = close + 1;
    }
  } else {
    colon = authority.find(':');
  }
  if (colon == std::string_view::npos) return 22;
  return ParsePort(authority.substr(colon + 1));
}

core::Result<void> ParseKnownHosts(const SettingsReader& reader, GitSettings& out) {
  auto path = reader.AbsolutePath("known_hosts", false);
  if (!path) return std::unexpected(path.error());
  if (path->empty()) return {};

  if (!IsSshRepository(out.repository)) {
    return reader.Invalid("known_hosts", "applies only to an ssh repository, not {}",
                          DisplayUrl(out.repository));
  }

  std::error_code size_error;
  const auto size = std::filesystem::file_size(*path, size_error);
  if (!size_error && size > kKnownHostsMaxBytes) {
    return reader.Invalid("known_hosts",
                          "{} is larger than {} bytes; list only the hosts of "
                          "the provider's repositories",
                          *path, kKnownHostsMaxBytes);
  }
  std::ifstream file(*path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file.is_open() || (!file.good() && !file.eof())) {
    return reader.Invalid("known_hosts",
                          "{} cannot be read; give a file that the server's user can read, in "
                          "the format of ~/.ssh/known_hosts",
                          *path);
  }

  auto parsed = KnownHosts::Parse(text, *path);
  if (!parsed) return reader.Invalid("known_hosts", "{}", parsed.error().message);
  if (parsed->size() == 0) {
    return reader.Invalid("known_hosts",
                          "{} lists no host key; add the remote's key, as `ssh-keyscan HOST` "
                          "prints it, after checking its fingerprint with the server's "
                          "administrator",
                          *path);
  }

  out.known_hosts = *path;
  out.known_host_keys = std::move(*parsed);
  return {};
}

core::Result<void> ParseCredentials(const SettingsReader& reader, const nlohmann::json& settings,
                                    const SecretValues& secrets, GitSettings& out) {
  auto it = settings.find("credentials");
  if (it == settings.end() || it->is_null()) return {};
  if (!it->is_object()) {
    return reader.Invalid("credentials",
                          "must map username, password, ssh_key or ssh_passphrase to secret "
                          "references such as env:NAME or file:PATH");
  }
  for (const auto& [role, reference] : it->items()) {
    if (std::find(kCredentialRoles.begin(), kCredentialRoles.end(), role) ==
        kCredentialRoles.end()) {
      return reader.Invalid("credentials",
                            "unknown role '{}'; use username, password, ssh_key or "
                            "ssh_passphrase",
                            role);
    }
    if (!reference.is_string()) {
      return reader.Invalid("credentials", "the reference of '{}' must be a string", role);
    }
    auto value = secrets.find(role);
    if (value == secrets.end()) {
      return reader.Invalid("credentials",
                            "the secret for '{}' was not resolved; check its reference in the "
                            "configuration",
                            role);
    }
    if (role == "username") out.username = value->second;
    if (role == "password") out.password = value->second;
    if (role == "ssh_key") out.ssh_key = value->second;
    if (role == "ssh_passphrase") out.ssh_passphrase = value->second;
  }
  if (!out.password.empty() && out.username.empty()) {
    return reader.Invalid("credentials", "a password needs a username");
  }
  if (!out.ssh_key.empty()) {
    if (auto problem = CheckSshPrivateKey(out.ssh_key, !out.ssh_passphrase.empty())) {
      return reader.Invalid("credentials", "{}", *problem);
    }
  }
  return {};
}

}  // namespace

std::string DisplayUrl(std::string_view repository) {
  size_t scheme = repository.find("://");
  if (scheme == std::string_view::npos) return std::string(repository);
  size_t host_start = scheme + 3;
  size_t host_end = repository.find('/', host_start);
  std::string_view authority = repository.substr(host_start, host_end - host_start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(repository);
  return fmt::format("{}{}", repository.substr(0, host_start),
                     repository.substr(host_start + at + 1));
}

core::Result<GitSettings> ParseGitSettings(std::string_view service, const nlohmann::json& settings,
                                           const SecretValues& secrets) {
  SettingsReader reader(service, "git", settings);
  if (auto fields = reader.CheckFields(kKnownFields); !fields) {
    return std::unexpected(fields.error());
  }

  GitSettings out;
  auto repository = reader.String("repository", true);
  if (!repository) return std::unexpected(repository.error());
  if (auto valid = CheckRepository(reader, *repository); !valid) {
    return std::unexpected(valid.error());
  }
  out.repository = *repository;
  if (IsSshRepository(out.repository)) {
    auto port = SshPort(out.repository);
    if (!port) {
      return reader.Invalid("repository",
                            "'{}' has an invalid port; give a number from 1 to "
                            "65535, as in ssh://git@git.example.com:2222/deploy.git",
                            DisplayUrl(out.repository));
    }
    out.ssh_port = *port;
  }

  auto branch = reader.String("branch", false, out.branch);
  if (!branch) return std::unexpected(branch.error());
  if (branch->starts_with("refs/") || branch->find("..") != std::string::npos ||
      branch->find(' ') != std::string::npos || branch->find(':') != std::string::npos) {
    return reader.Invalid("branch", "'{}' must be a branch name such as main", *branch);
  }
  out.branch = *branch;

  auto path = reader.String("path", true);
  if (!path) return std::unexpected(path.error());
  auto normal_path = RepositoryPath(reader, "path", *path);
  if (!normal_path) return std::unexpected(normal_path.error());
  out.path = *normal_path;

  auto pattern = reader.String("version_pattern", false);
  if (!pattern) return std::unexpected(pattern.error());
  auto key = reader.String("version_key", false);
  if (!key) return std::unexpected(key.error());
  if (pattern->empty() == key->empty()) {
    return reader.Invalid("version_pattern",
                          "give exactly one of version_pattern (a regular expression with one "
                          "group) and version_key (a dotted YAML key such as image.tag)");
  }
  if (!pattern->empty()) {
    try {
      std::regex compiled(*pattern);
      if (compiled.mark_count() != 1) {
        return reader.Invalid("version_pattern",
                              "must have exactly one group, the version; '{}' has {}", *pattern,
                              compiled.mark_count());
      }
    } catch (const std::regex_error& error) {
      return reader.Invalid("version_pattern", "'{}' is not a valid regular expression: {}",
                            *pattern, error.what());
    }
  }
  out.version_pattern = *pattern;
  out.version_key = *key;

  auto work_dir = reader.AbsolutePath("work_dir", true);
  if (!work_dir) return std::unexpected(work_dir.error());
  out.work_dir = *work_dir;

  auto author_name = reader.String("author_name", false, out.author_name);
  if (!author_name) return std::unexpected(author_name.error());
  out.author_name = *author_name;
  auto author_email = reader.String("author_email", false, out.author_email);
  if (!author_email) return std::unexpected(author_email.error());
  out.author_email = *author_email;

  auto suspend = reader.StringList("suspend_automation");
  if (!suspend) return std::unexpected(suspend.error());
  for (const std::string& manifest : *suspend) {
    auto normal = RepositoryPath(reader, "suspend_automation", manifest);
    if (!normal) return std::unexpected(normal.error());
    if (*normal == out.path) {
      return reader.Invalid("suspend_automation", "'{}' is the service's own path", manifest);
    }
    out.suspend_automation.push_back(*normal);
  }

  auto attempts = reader.Integer("push_attempts", out.push_attempts, 1, 10);
  if (!attempts) return std::unexpected(attempts.error());
  out.push_attempts = static_cast<int>(*attempts);
  // verify_for accepts 0s, which turns the watch off.
  bool verify_off =
      reader.Has("verify_for") && settings.at("verify_for").is_string() &&
      core::ParseDuration(settings.at("verify_for").get<std::string>()) == core::Duration::zero();
  if (!verify_off) {
    auto verify_for = reader.Duration("verify_for", out.verify_for);
    if (!verify_for) return std::unexpected(verify_for.error());
    out.verify_for = *verify_for;
  }
  auto verify_interval = reader.Duration("verify_interval", out.verify_interval);
  if (!verify_interval) return std::unexpected(verify_interval.error());
  out.verify_interval = *verify_interval;

  if (auto credentials = ParseCredentials(reader, settings, secrets, out); !credentials) {
    return std::unexpected(credentials.error());
  }

  auto ca_file = reader.AbsolutePath("ca_file", false);
  if (!ca_file) return std::unexpected(ca_file.error());
  if (!ca_file->empty()) {
    std::ifstream file(*ca_file, std::ios::binary);
    std::string pem((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!file.good() && !file.eof()) pem.clear();
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos ||
        pem.size() > kCaFileMaxBytes) {
      return reader.Invalid("ca_file",
                            "{} cannot be read or holds no PEM certificate; give a readable "
                            "file of at most {} bytes with the CA certificates that sign the "
                            "remote's certificate",
                            *ca_file, kCaFileMaxBytes);
    }
    if (!out.repository.starts_with("https://")) {
      return reader.Invalid("ca_file", "applies only to an https:// repository, not {}",
                            DisplayUrl(out.repository));
    }
    out.ca_file = *ca_file;
    out.ca_pem = std::move(pem);
  }

  if (auto known_hosts = ParseKnownHosts(reader, out); !known_hosts) {
    return std::unexpected(known_hosts.error());
  }

  auto health = reader.Command("health");
  if (!health) return std::unexpected(health.error());
  out.health.command = std::move(*health);
  auto health_url = reader.HttpUrl("health_url");
  if (!health_url) return std::unexpected(health_url.error());
  out.health.url = std::move(*health_url);
  auto health_timeout = reader.Duration("health_timeout", out.health.timeout);
  if (!health_timeout) return std::unexpected(health_timeout.error());
  out.health.timeout = *health_timeout;

  auto controller_url = reader.HttpUrl("controller_url");
  if (!controller_url) return std::unexpected(controller_url.error());
  out.controller_url = *controller_url;
  auto pointer = reader.String("controller_revision_pointer", false);
  if (!pointer) return std::unexpected(pointer.error());
  if (!pointer->empty()) {
    try {
      nlohmann::json::json_pointer parsed(*pointer);
      (void)parsed;
    } catch (const nlohmann::json::exception& error) {
      return reader.Invalid("controller_revision_pointer",
                            "'{}' is not a JSON pointer such as /status/sync/revision: {}",
                            *pointer, error.what());
    }
    if (out.controller_url.empty()) {
      return reader.Invalid("controller_revision_pointer", "needs controller_url");
    }
  }
  out.controller_revision_pointer = *pointer;
  return out;
}

}  // namespace backout::providers::git
