#include "providers/kubernetes/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace backout::providers::kubernetes {
namespace {

namespace fs = std::filesystem;

core::Error Invalid(const fs::path& path, std::string message) {
  return core::Error{core::ErrorCode::kInvalidArgument,
                     fmt::format("kubeconfig {}: {}", path.string(), message)};
}

// Finds the entry called `name` in a top-level list (clusters, contexts, users) and returns its
// inner mapping (cluster, context, user).
std::optional<YAML::Node> FindNamed(const YAML::Node& root, const char* list, const char* inner,
                                    const std::string& name, std::vector<std::string>& known) {
  const YAML::Node entries = root[list];
  if (!entries || !entries.IsSequence()) return std::nullopt;
  for (const YAML::Node& entry : entries) {
    if (!entry.IsMap() || !entry["name"]) continue;
    std::string entry_name = entry["name"].as<std::string>();
    known.push_back(entry_name);
    if (entry_name == name) {
      YAML::Node node = entry[inner];
      return node ? node : YAML::Node(YAML::NodeType::Map);
    }
  }
  return std::nullopt;
}

std::string Text(const YAML::Node& node, const char* key) {
  const YAML::Node value = node[key];
  if (!value || !value.IsScalar()) return "";
  return value.as<std::string>();
}

bool Flag(const YAML::Node& node, const char* key) {
  const YAML::Node value = node[key];
  return value && value.IsScalar() && value.as<bool>();
}

// A file path from the kubeconfig: a relative one is relative to the kubeconfig's folder.
std::string ResolvePath(const fs::path& folder, const std::string& path) {
  if (path.empty()) return "";
  fs::path given(path);
  if (given.is_relative()) given = folder / given;
  return given.lexically_normal().string();
}

core::Result<std::string> DecodeField(const fs::path& path, const std::string& where,
                                      const std::string& text) {
  auto decoded = DecodeBase64(text);
  if (!decoded) return std::unexpected(Invalid(path, fmt::format("{} is not valid base64", where)));
  return *decoded;
}

}  // namespace

bool ClusterAccess::HasCredentials() const {
  return !client_cert_pem.empty() || !client_cert_file.empty() || !token.empty() ||
         !token_file.empty() || exec.has_value();
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

core::Result<ClusterAccess> LoadKubeconfig(const fs::path& path, std::string_view context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    return std::unexpected(Invalid(path,
                                   "cannot be read; check that the file exists and that "
                                   "Backout's user may read it"));
  } catch (const YAML::Exception& error) {
    return std::unexpected(Invalid(
        path, fmt::format("is not valid YAML at line {}: {}", error.mark.line + 1, error.msg)));
  }
  if (!root.IsMap()) return std::unexpected(Invalid(path, "is not a YAML mapping"));
  fs::path folder = path.parent_path();

  try {
    ClusterAccess access;
    access.context = context.empty() ? Text(root, "current-context") : std::string(context);
    if (access.context.empty()) {
      return std::unexpected(Invalid(path,
                                     "has no current-context; set `context` in the "
                                     "provider settings"));
    }

    std::vector<std::string> known;
    auto context_node = FindNamed(root, "contexts", "context", access.context, known);
    if (!context_node) {
      return std::unexpected(
          Invalid(path, fmt::format("context \"{}\" not found; contexts there: {}", access.context,
                                    fmt::join(known, ", "))));
    }
    std::string cluster_name = Text(*context_node, "cluster");
    std::string user_name = Text(*context_node, "user");
    access.ns = Text(*context_node, "namespace");

    known.clear();
    auto cluster = FindNamed(root, "clusters", "cluster", cluster_name, known);
    if (!cluster) {
      return std::unexpected(Invalid(path, fmt::format("cluster \"{}\" of context \"{}\" not found",
                                                       cluster_name, access.context)));
    }
    access.server = Text(*cluster, "server");
    while (access.server.ends_with('/')) access.server.pop_back();
    if (access.server.empty()) {
      return std::unexpected(
          Invalid(path, fmt::format("cluster \"{}\" has no server", cluster_name)));
    }
    access.insecure_skip_tls_verify = Flag(*cluster, "insecure-skip-tls-verify");
    access.ca_file = ResolvePath(folder, Text(*cluster, "certificate-authority"));
    if (std::string data = Text(*cluster, "certificate-authority-data"); !data.empty()) {
      auto pem = DecodeField(
          path, fmt::format("cluster \"{}\" certificate-authority-data", cluster_name), data);
      if (!pem) return std::unexpected(pem.error());
      access.ca_pem = *pem;
      access.ca_file.clear();
    }
    if (!Text(*cluster, "tls-server-name").empty() || !Text(*cluster, "proxy-url").empty()) {
      return std::unexpected(Invalid(
          path, fmt::format("cluster \"{}\" sets tls-server-name or proxy-url, which Backout does "
                            "not support yet; connect to the server's own name and address",
                            cluster_name)));
    }

    known.clear();
    std::optional<YAML::Node> user;
    if (!user_name.empty()) {
      user = FindNamed(root, "users", "user", user_name, known);
      if (!user) {
        return std::unexpected(Invalid(path, fmt::format("user \"{}\" of context \"{}\" not found",
                                                         user_name, access.context)));
      }
    }
    if (user) {
      if ((*user)["auth-provider"]) {
        return std::unexpected(Invalid(
            path,
            fmt::format("user \"{}\" uses auth-provider, which kubectl itself dropped; use an "
                        "exec credential plugin instead",
                        user_name)));
      }
      if (!Text(*user, "username").empty() || !Text(*user, "password").empty()) {
        return std::unexpected(Invalid(
            path, fmt::format("user \"{}\" uses a username and password, which Backout does not "
                              "support; use a token, a client certificate or an exec plugin",
                              user_name)));
      }
      access.token = Text(*user, "token");
      access.token_file = ResolvePath(folder, Text(*user, "tokenFile"));
      access.client_cert_file = ResolvePath(folder, Text(*user, "client-certificate"));
      access.client_key_file = ResolvePath(folder, Text(*user, "client-key"));
      if (std::string data = Text(*user, "client-certificate-data"); !data.empty()) {
        auto pem =
            DecodeField(path, fmt::format("user \"{}\" client-certificate-data", user_name), data);
        if (!pem) return std::unexpected(pem.error());
        access.client_cert_pem = *pem;
        access.client_cert_file.clear();
      }
      if (std::string data = Text(*user, "client-key-data"); !data.empty()) {
        auto pem = DecodeField(path, fmt::format("user \"{}\" client-key-data", user_name), data);
        if (!pem) return std::unexpected(pem.error());
        access.client_key_pem = *pem;
        access.client_key_file.clear();
      }
      if (const YAML::Node exec = (*user)["exec"]; exec && exec.IsMap()) {
        ExecPlugin plugin;
        plugin.api_version = Text(exec, "apiVersion");
        plugin.command = Text(exec, "command");
        plugin.install_hint = Text(exec, "installHint");
        plugin.provide_cluster_info = Flag(exec, "provideClusterInfo");
        plugin.kubeconfig_dir = folder;
        if (const YAML::Node args = exec["args"]; args && args.IsSequence()) {
          for (const YAML::Node& arg : args) plugin.args.push_back(arg.as<std::string>());
        }
        if (const YAML::Node env = exec["env"]; env && env.IsSequence()) {
          for (const YAML::Node& entry : env) {
            plugin.env.emplace_back(Text(entry, "name"), Text(entry, "value"));
          }
        }
        if (plugin.command.empty()) {
          return std::unexpected(
              Invalid(path, fmt::format("user \"{}\" exec has no command", user_name)));
        }
        if (plugin.api_version != "client.authentication.k8s.io/v1" &&
            plugin.api_version != "client.authentication.k8s.io/v1beta1") {
          return std::unexpected(
              Invalid(path, fmt::format("user \"{}\" exec apiVersion \"{}\" is not supported; use "
                                        "client.authentication.k8s.io/v1 or v1beta1",
                                        user_name, plugin.api_version)));
        }
        access.exec = std::move(plugin);
      }
    }

    if (access.server.starts_with("http://") && access.HasCredentials()) {
      return std::unexpected(Invalid(
          path, fmt::format("cluster \"{}\" server {} is plain http, and credentials are only "
                            "sent over https, as kubectl does; use an https:// server",
                            cluster_name, access.server)));
    }
    if (!access.server.starts_with("https://") && !access.server.starts_with("http://")) {
      return std::unexpected(
          Invalid(path, fmt::format("cluster \"{}\" server \"{}\" is not an http(s) URL",
                                    cluster_name, access.server)));
    }
    return access;
  } catch (const YAML::Exception& error) {
    return std::unexpected(Invalid(path, fmt::format("has an unexpected value at line {}: {}",
                                                     error.mark.line + 1, error.msg)));
  }
}

}  // namespace backout::providers::kubernetes
