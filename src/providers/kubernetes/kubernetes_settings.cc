#include "providers/kubernetes/kubernetes_settings.h"

#include <algorithm>
#include <array>
#include <tuple>

#include <fmt/format.h>

#include "core/time.h"

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 13> kKnownFields = {
    "kind",          "kubeconfig",      "context",           "namespace",
    "deployment",    "impersonate",     "readiness_timeout", "soak",
    "poll_interval", "request_timeout", "restart_limit",     "gitops",
    "gitops_grace",
};

// A DNS-1123 label, the form of namespace names; Deployment names may also contain dots.
bool IsDnsName(std::string_view name, bool allow_dots) {
  if (name.empty() || name.size() > 253) return false;
  if (!allow_dots && name.size() > 63) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (allow_dots && c == '.');
    if (!ok) return false;
  }
  return name.front() != '-' && name.back() != '-' && name.front() != '.' && name.back() != '.';
}

core::Error Invalid(std::string_view service, std::string_view field, std::string message) {
  return core::Error{core::ErrorCode::kInvalidArgument,
                     fmt::format("service {}: provider field '{}': {}", service, field, message)};
}

core::Result<std::string> ReadString(std::string_view service, const json& settings,
                                     std::string_view field) {
  auto it = settings.find(field);
  if (it == settings.end()) return std::string();
  if (!it->is_string()) return std::unexpected(Invalid(service, field, "must be a string"));
  return it->get<std::string>();
}

core::Result<void> ReadDuration(std::string_view service, const json& settings,
                                std::string_view field, std::chrono::milliseconds& out,
                                bool allow_zero) {
  auto text = ReadString(service, settings, field);
  if (!text) return std::unexpected(text.error());
  if (text->empty()) return {};
  auto parsed = core::ParseDuration(*text);
  if (!parsed || parsed->count() < 0 || (parsed->count() == 0 && !allow_zero)) {
    return std::unexpected(Invalid(service, field,
                                   fmt::format("\"{}\" is not a duration {} such as 30s", *text,
                                               allow_zero ? "of zero or more" : "above zero")));
  }
  out = std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
  return {};
}

}  // namespace

core::Result<KubernetesSettings> ParseKubernetesSettings(std::string_view service,
                                                         const json& settings) {
  if (!settings.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the kubernetes provider settings must be an object",
                           service);
  }
  for (const auto& [field, value] : settings.items()) {
    if (field == "statefulset" || field == "daemonset") {
      return std::unexpected(
          Invalid(service, field,
                  "StatefulSets and DaemonSets are not supported yet: their rollback uses "
                  "ControllerRevisions; only `deployment` is supported"));
    }
    if (std::find(kKnownFields.begin(), kKnownFields.end(), field) == kKnownFields.end()) {
      return std::unexpected(Invalid(service, field, "unknown field"));
    }
  }

  KubernetesSettings parsed;
  auto kubeconfig = ReadString(service, settings, "kubeconfig");
  if (!kubeconfig) return std::unexpected(kubeconfig.error());
  if (kubeconfig->empty() || !std::filesystem::path(*kubeconfig).is_absolute()) {
    return std::unexpected(
        Invalid(service, "kubeconfig", "required: the absolute path of the kubeconfig file"));
  }
  parsed.kubeconfig = *kubeconfig;

  auto deployment = ReadString(service, settings, "deployment");
  if (!deployment) return std::unexpected(deployment.error());
  if (!IsDnsName(*deployment, true)) {
    return std::unexpected(Invalid(
        service, "deployment",
        deployment->empty() ? std::string("required: the name of the Deployment")
                            : fmt::format("\"{}\" is not a valid Deployment name", *deployment)));
  }
  parsed.deployment = *deployment;

  auto ns = ReadString(service, settings, "namespace");
  if (!ns) return std::unexpected(ns.error());
  if (!ns->empty() && !IsDnsName(*ns, false)) {
    return std::unexpected(
        Invalid(service, "namespace", fmt::format("\"{}\" is not a valid namespace name", *ns)));
  }
  parsed.ns = *ns;

  auto context = ReadString(service, settings, "context");
  if (!context) return std::unexpected(context.error());
  parsed.context = *context;
  auto impersonate = ReadString(service, settings, "impersonate");
  if (!impersonate) return std::unexpected(impersonate.error());
  parsed.impersonate = *impersonate;

  // A soak of zero means success as soon as kubectl's rules pass.
  for (auto [field, out, allow_zero] :
       {std::tuple{"readiness_timeout", &parsed.readiness_timeout, false},
        std::tuple{"soak", &parsed.soak, true},
        std::tuple{"poll_interval", &parsed.poll_interval, false},
        std::tuple{"request_timeout", &parsed.request_timeout, false},
        std::tuple{"gitops_grace", &parsed.gitops_grace, true}}) {
    if (auto read = ReadDuration(service, settings, field, *out, allow_zero); !read) {
      return std::unexpected(read.error());
    }
  }

  if (auto it = settings.find("restart_limit"); it != settings.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000) {
      return std::unexpected(
          Invalid(service, "restart_limit", "must be a whole number from 1 to 1000"));
    }
    parsed.restart_limit = static_cast<int>(it->get<int64_t>());
  }

  auto gitops = ReadString(service, settings, "gitops");
  if (!gitops) return std::unexpected(gitops.error());
  if (*gitops == "allow") {
    parsed.gitops = GitOpsPolicy::kAllow;
  } else if (!gitops->empty() && *gitops != "refuse") {
    return std::unexpected(
        Invalid(service, "gitops", fmt::format("\"{}\" must be refuse or allow", *gitops)));
  }
  return parsed;
}

}  // namespace backout::providers::kubernetes
