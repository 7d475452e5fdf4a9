#include "providers/kubernetes/exec_credential.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "providers/command/process.h"

extern char** environ;

namespace backout::providers::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string EncodeBase64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < data.size()) {
    uint32_t n = static_cast<uint8_t>(data[i]) << 16;
    if (i + 1 < data.size()) n |= static_cast<uint8_t>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Finds the plugin's program: a path with a slash is taken as is (relative to the kubeconfig's
// folder), a bare name is searched on PATH.
std::optional<std::string> ResolveCommand(const ExecPlugin& plugin) {
  if (plugin.command.find('/') != std::string::npos) {
    fs::path path(plugin.command);
    if (path.is_relative()) path = plugin.kubeconfig_dir / path;
    return path.lexically_normal().string();
  }
  const char* search = std::getenv("PATH");
  std::string_view paths = search != nullptr ? search : "/usr/local/bin:/usr/bin:/bin";
  while (!paths.empty()) {
    size_t end = paths.find(':');
    std::string_view folder = paths.substr(0, end);
    paths = end == std::string_view::npos ? std::string_view() : paths.substr(end + 1);
    if (folder.empty()) continue;
    fs::path candidate = fs::path(folder) / plugin.command;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

core::Error Unauthenticated(std::string message) {
  return core::Error{core::ErrorCode::kUnauthenticated, std::move(message)};
}

}  // namespace

core::Result<ExecCredential> RunExecPlugin(const ExecPlugin& plugin, const ClusterAccess& cluster,
                                           std::chrono::milliseconds timeout) {
  auto program = ResolveCommand(plugin);
  if (!program) {
    std::string hint = plugin.install_hint.empty() ? "install it or fix the kubeconfig's exec "
                                                     "command"
                                                   : plugin.install_hint;
    return std::unexpected(Unauthenticated(fmt::format(
        "exec credential plugin \"{}\" was not found on PATH: {}", plugin.command, hint)));
  }

  json info{{"apiVersion", plugin.api_version},
            {"kind", "ExecCredential"},
            {"spec", {{"interactive", false}}}};
  if (plugin.provide_cluster_info) {
    json cluster_info{{"server", cluster.server},
                      {"insecure-skip-tls-verify", cluster.insecure_skip_tls_verify}};
    if (!cluster.ca_pem.empty())
      cluster_info["certificate-authority-data"] = EncodeBase64(cluster.ca_pem);
    info["spec"]["cluster"] = cluster_info;
  }

  command::ProcessSpec spec;
  spec.argv.push_back(*program);
  spec.argv.insert(spec.argv.end(), plugin.args.begin(), plugin.args.end());
  for (char** entry = environ; *entry != nullptr; ++entry) spec.env.emplace_back(*entry);
  for (const auto& [name, value] : plugin.env) spec.env.push_back(name + "=" + value);
  spec.env.push_back("KUBERNETES_EXEC_INFO=" + info.dump());
  spec.working_dir = "/";
  spec.output_dir = fs::temp_directory_path();
  command::ProcessLimits limits{timeout, std::chrono::milliseconds(2000), 256 * 1024};

  auto run = command::RunProcess(spec, limits, {}, nullptr);
  if (!run) {
    return std::unexpected(Unauthenticated(fmt::format(
        "exec credential plugin {} could not start: {}", *program, run.error().message)));
  }
  if (run->timed_out) {
    return std::unexpected(Unauthenticated(
        fmt::format("exec credential plugin {} timed out after {} ms", *program, timeout.count())));
  }
  if (!run->exit.Succeeded()) {
    std::string stderr_text = run->stderr_output.tail;
    if (stderr_text.size() > 300) stderr_text = stderr_text.substr(stderr_text.size() - 300);
    return std::unexpected(
        Unauthenticated(fmt::format("exec credential plugin {} ended with {}: {}", *program,
                                    run->exit.Describe(), stderr_text)));
  }

  json output;
  try {
    output = json::parse(run->stdout_output.tail);
  } catch (const json::parse_error&) {
    return std::unexpected(Unauthenticated(fmt::format(
        "exec credential plugin {} did not print an ExecCredential in JSON", *program)));
  }
  if (!output.is_object() || output.value("kind", "") != "ExecCredential" ||
      !output.contains("status") || !output["status"].is_object()) {
    return std::unexpected(Unauthenticated(fmt::format(
        "exec credential plugin {} printed JSON without an ExecCredential status", *program)));
  }
  const json& status = output["status"];
  ExecCredential credential;
  credential.token = status.value("token", "");
  credential.client_cert_pem = status.value("clientCertificateData", "");
  credential.client_key_pem = status.value("clientKeyData", "");
  if (credential.token.empty() &&
      (credential.client_cert_pem.empty() || credential.client_key_pem.empty())) {
    return std::unexpected(Unauthenticated(fmt::format(
        "exec credential plugin {} returned neither a token nor a client certificate and key",
        *program)));
  }
  if (std::string expiry = status.value("expirationTimestamp", ""); !expiry.empty()) {
    auto parsed = core::ParseTime(expiry);
    if (!parsed) {
      return std::unexpected(Unauthenticated(fmt::format(
          "exec credential plugin {} returned an invalid expirationTimestamp", *program)));
    }
    credential.expires_at = *parsed;
  }
  return credential;
}

}  // namespace backout::providers::kubernetes
