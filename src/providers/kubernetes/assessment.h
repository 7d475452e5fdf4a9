#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// Facts about a Deployment that an undo does not handle, for the assessment's warnings.
namespace backout::providers::kubernetes {

// A GitOps controller that owns the Deployment, and the label, annotation or field manager
// that shows it.
struct GitOpsOwner {
  std::string tool;  // "Argo CD" or "Flux"
  std::string
      evidence;  // e.g. "annotation argocd.argoproj.io/tracking-id=shop:apps/Deployment:shop/web"
};

// Looks for Argo CD's tracking annotation and labels (argocd.argoproj.io/tracking-id,
// argocd.argoproj.io/instance, or app.kubernetes.io/instance on an object Helm does not manage),
// Flux's kustomize.toolkit.fluxcd.io/* and helm.toolkit.fluxcd.io/* labels, and their
// controllers' field managers.
std::optional<GitOpsOwner> DetectGitOpsOwner(const nlohmann::json& deployment);

// ConfigMaps and Secrets a pod template refers to (volumes, projected volumes, env and envFrom),
// sorted and without repeats.
struct ConfigReferences {
  std::vector<std::string> config_maps;
  std::vector<std::string> secrets;
};
ConfigReferences ReferencedConfig(const nlohmann::json& template_spec);

// Field managers that wrote the object with server-side apply.
std::vector<std::string> ApplyManagers(const nlohmann::json& deployment);

// The command that resumes the Deployment, with its namespace, so it can be pasted as is.
std::string ResumeCommand(const std::string& ns, const std::string& deployment);

}  // namespace backout::providers::kubernetes
