#include "providers/kubernetes/assessment.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

std::string MetadataValue(const json& object, const char* map, const std::string& key) {
  json::json_pointer path("/metadata/" + std::string(map));
  if (!object.contains(path)) return "";
  const json& values = object.at(path);
  auto it = values.find(key);
  if (it == values.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

void AddName(std::set<std::string>& names, const json& object, const char* key) {
  if (object.is_object() && object.contains(key) && object[key].is_string()) {
    names.insert(object[key].get<std::string>());
  }
}

}  // namespace

std::optional<GitOpsOwner> DetectGitOpsOwner(const json& deployment) {
  if (std::string id = MetadataValue(deployment, "annotations", "argocd.argoproj.io/tracking-id");
      !id.empty()) {
    return GitOpsOwner{"Argo CD", fmt::format("annotation argocd.argoproj.io/tracking-id={}", id)};
  }
  if (std::string app = MetadataValue(deployment, "labels", "argocd.argoproj.io/instance");
      !app.empty()) {
    return GitOpsOwner{"Argo CD", fmt::format("label argocd.argoproj.io/instance={}", app)};
  }
  for (const char* key : {"kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name"}) {
    if (std::string name = MetadataValue(deployment, "labels", key); !name.empty()) {
      return GitOpsOwner{"Flux", fmt::format("label {}={}", key, name)};
    }
  }
  if (deployment.contains("/metadata/managedFields"_json_pointer)) {
    for (const json& entry : deployment.at("/metadata/managedFields"_json_pointer)) {
      std::string manager = entry.value("manager", "");
      if (manager.starts_with("argocd")) {
        return GitOpsOwner{"Argo CD", fmt::format("field manager {}", manager)};
      }
      if (manager == "kustomize-controller" || manager == "helm-controller") {
        return GitOpsOwner{"Flux", fmt::format("field manager {}", manager)};
      }
    }
  }
  // Argo CD's default tracking label. Helm sets it too, so it counts only without Helm's mark.
  if (std::string instance = MetadataValue(deployment, "labels", "app.kubernetes.io/instance");
      !instance.empty() &&
      MetadataValue(deployment, "labels", "app.kubernetes.io/managed-by") != "Helm") {
    return GitOpsOwner{
        "Argo CD", fmt::format("label app.kubernetes.io/instance={} (Argo CD's default tracking "
                               "label)",
                               instance)};
  }
  return std::nullopt;
}

ConfigReferences ReferencedConfig(const json& template_spec) {
  std::set<std::string> config_maps;
  std::set<std::string> secrets;
  if (!template_spec.contains("spec")) return {};
  const json& spec = template_spec["spec"];

  if (spec.contains("volumes") && spec["volumes"].is_array()) {
    for (const json& volume : spec["volumes"]) {
      AddName(config_maps, volume.value("configMap", json::object()), "name");
      AddName(secrets, volume.value("secret", json::object()), "secretName");
      if (volume.contains("/projected/sources"_json_pointer)) {
        for (const json& source : volume.at("/projected/sources"_json_pointer)) {
          AddName(config_maps, source.value("configMap", json::object()), "name");
          AddName(secrets, source.value("secret", json::object()), "name");
        }
      }
    }
  }
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (const json& container : spec[list]) {
      for (const json& env : container.value("env", json::array())) {
        if (env.contains("/valueFrom/configMapKeyRef"_json_pointer)) {
          AddName(config_maps, env.at("/valueFrom/configMapKeyRef"_json_pointer), "name");
        }
        if (env.contains("/valueFrom/secretKeyRef"_json_pointer)) {
          AddName(secrets, env.at("/valueFrom/secretKeyRef"_json_pointer), "name");
        }
      }
      for (const json& source : container.value("envFrom", json::array())) {
        AddName(config_maps, source.value("configMapRef", json::object()), "name");
        AddName(secrets, source.value("secretRef", json::object()), "name");
      }
    }
  }
  return ConfigReferences{{config_maps.begin(), config_maps.end()},
                          {secrets.begin(), secrets.end()}};
}

std::vector<std::string> ApplyManagers(const json& deployment) {
  std::set<std::string> managers;
  if (deployment.contains("/metadata/managedFields"_json_pointer)) {
    for (const json& entry : deployment.at("/metadata/managedFields"_json_pointer)) {
      if (entry.value("operation", "") == "Apply") managers.insert(entry.value("manager", ""));
    }
  }
  return {managers.begin(), managers.end()};
}

std::string ResumeCommand(const std::string& ns, const std::string& deployment) {
  return fmt::format("kubectl rollout resume deployment/{} -n {}", deployment, ns);
}

}  // namespace backout::providers::kubernetes
