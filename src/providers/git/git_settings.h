#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/git/known_hosts.h"
#include "providers/health_probe.h"
#include "providers/provider.h"

namespace backout::providers::git {

// The settings of one `git` provider binding, as written in the service's `provider` block:
//
//   kind: git
//   repository: https://git.example.com/deploy/prod.git  # or ssh://, a local path, file://
//   branch: main                                  # default main
//   path: apps/checkout/values.yaml               # the file that names the service's version
//   version_pattern: 'tag: "?([A-Za-z0-9._-]+)'   # a regular expression with one group, or
//   version_key: image.tag                        # a dotted YAML key (exactly one of the two)
//   work_dir: /var/lib/backout/git/checkout       # required; the provider's own bare clone
//   author_name: Backout                          # identity of the revert commits
//   author_email: backout@localhost
//   suspend_automation: [clusters/prod/checkout-image-automation.yaml]  # optional manifests
//   push_attempts: 3                              # pushes tried when the remote moves, 1 to 10
//   verify_for: 0s                                # how long Execute watches the branch after
//   verify_interval: 10s                          #   the push for a revert undone by automation
//   credentials: {username: env:GIT_USER, password: env:GIT_TOKEN}  # or ssh_key, ssh_passphrase
//   ca_file: /etc/backout/git-ca.pem              # optional; CA certificates (PEM) trusted for
//                                                 #   an https remote besides the system's
//   known_hosts: /etc/backout/git-known-hosts     # optional; OpenSSH known_hosts file that
//                                                 #   lists an ssh remote's host key
//   health: [/opt/checks/checkout]                # optional; exit code 0 means healthy
//   health_url: http://127.0.0.1:8080/healthz     # optional; a 2xx status means healthy
//   health_timeout: 10s
//   controller_url: http://127.0.0.1:9000/api/v1/applications/checkout  # optional
//   controller_revision_pointer: /status/sync/revision   # JSON pointer; absent: the whole body
//
// `credentials` maps a role (username, password, ssh_key, ssh_passphrase) to a secret
// reference. The config loader resolves the references, and the binding's secret values hold
// each value under its role's name.
struct GitSettings {
  std::string repository;
  std::string branch = "main";
  std::string path;
  std::string version_pattern;  // exactly one of version_pattern and version_key is set
  std::string version_key;
  std::string work_dir;
  std::string author_name = "Backout";
  std::string author_email = "backout@localhost";
  std::vector<std::string> suspend_automation;
  int push_attempts = 3;
  std::chrono::milliseconds verify_for{0};
  std::chrono::milliseconds verify_interval{10'000};
  std::string username;  // resolved secrets; never logged
  std::string password;
  std::string ssh_key;
  std::string ssh_passphrase;
  std::string ca_file;  // absolute path, or empty
  std::string ca_pem;   // its content, read when the settings are parsed
  // Absolute path, or empty: libgit2 then checks the host key against ~/.ssh/known_hosts.
  std::string known_hosts;
  KnownHosts known_host_keys;  // its entries, read when the settings are parsed
  int ssh_port = 22;           // the port of an ssh repository, for known_hosts lookups
  HealthProbeSettings health;
  std::string controller_url;
  std::string controller_revision_pointer;
};

// Validates `settings` for `service`. Errors name the service and the field, and reject
// repository URLs that carry a password, paths that leave the repository, patterns without
// exactly one group and credentials whose secret was not resolved.
core::Result<GitSettings> ParseGitSettings(std::string_view service, const nlohmann::json& settings,
                                           const SecretValues& secrets);

// Returns the repository URL with any user name removed, for plans, messages and logs.
std::string DisplayUrl(std::string_view repository);

}  // namespace backout::providers::git
