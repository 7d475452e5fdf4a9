#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace backout::providers::kubernetes {

// A `users[].user.exec` credential plugin, as EKS, GKE and AKS configure one.
struct ExecPlugin {
  std::string api_version;  // client.authentication.k8s.io/v1 or v1beta1
  std::string command;      // as written; resolved against PATH or the kubeconfig's folder
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool provide_cluster_info = false;
  std::string install_hint;
  std::filesystem::path kubeconfig_dir;  // for a relative command path
};

// How to reach and authenticate to one cluster, from one context of a kubeconfig. PEM texts are
// decoded from the *-data fields; file paths are absolute. At most one credential kind is set.
struct ClusterAccess {
  std::string context;
  std::string server;  // https://host[:port][/prefix], without a trailing slash
  std::string ca_pem;
  std::string ca_file;
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;
  std::string client_cert_file;
  std::string client_key_pem;
  std::string client_key_file;
  std::string token;
  std::string token_file;
  std::optional<ExecPlugin> exec;
  std::string ns;  // the context's namespace, empty when it sets none

  bool HasCredentials() const;
};

// Reads the kubeconfig at `path` and resolves `context`, or its current-context when empty.
// Fails with kInvalidArgument naming the file and the field: an unreadable file, a missing
// context, cluster or user, a server that is not https:// while credentials are set, or a
// credential kind Backout does not support (auth-provider, username and password). Messages
// never quote a credential.
core::Result<ClusterAccess> LoadKubeconfig(const std::filesystem::path& path,
                                           std::string_view context);

// Decodes standard base64 (with or without padding, whitespace ignored).
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace backout::providers::kubernetes
