#include "fixtures.h"

namespace backout::emulators::kubernetes {

using nlohmann::json;

json DeploymentManifest(const DeploymentSpec& spec) {
  json containers = json::array();
  for (size_t i = 0; i < spec.images.size(); ++i) {
    json container{{"name", i == 0 ? std::string("app") : "app" + std::to_string(i + 1)},
                   {"image", spec.images[i]}};
    if (i == 0 && !spec.env.empty()) container["env"] = spec.env;
    containers.push_back(container);
  }
  json labels{{"app", spec.name}};
  json manifest{{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", spec.name}, {"labels", labels}}},
                {"spec",
                 {{"replicas", spec.replicas},
                  {"selector", {{"matchLabels", labels}}},
                  {"strategy", {{"type", spec.strategy}}},
                  {"template",
                   {{"metadata", {{"labels", labels}}}, {"spec", {{"containers", containers}}}}}}}};
  for (const auto& [key, value] : spec.extra_labels.items()) {
    manifest["metadata"]["labels"][key] = value;
  }
  for (const auto& [key, value] : spec.extra_annotations.items()) {
    manifest["metadata"]["annotations"][key] = value;
  }
  if (!spec.change_cause.empty()) {
    manifest["metadata"]["annotations"]["kubernetes.io/change-cause"] = spec.change_cause;
  }
  if (spec.revision_history_limit) {
    manifest["spec"]["revisionHistoryLimit"] = *spec.revision_history_limit;
  }
  if (spec.progress_deadline_seconds) {
    manifest["spec"]["progressDeadlineSeconds"] = *spec.progress_deadline_seconds;
  }
  return manifest;
}

bool ApplyRevision(Emulator& emulator, const std::string& ns, const DeploymentSpec& spec,
                   bool record_last_applied, std::chrono::milliseconds timeout) {
  ApiResult result = emulator.cluster().Apply(ns, DeploymentManifest(spec), record_last_applied);
  if (result.status >= 300) return false;
  return emulator.WaitForRollout(ns, spec.name, timeout);
}

bool WaitForReplicaSetCount(Emulator& emulator, const std::string& ns, const std::string& name,
                            size_t count, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t version = emulator.cluster().ResourceVersion();
    ApiResult deployment = emulator.cluster().Get(Resource::kDeployments, ns, name);
    ApiResult sets =
        emulator.cluster().List(Resource::kReplicaSets, ns, LabelSelector(), FieldSelector());
    size_t owned = 0;
    for (const json& rs : sets.body["items"]) {
      for (const json& owner : rs["metadata"].value("ownerReferences", json::array())) {
        if (owner.value("uid", "") == deployment.body["metadata"].value("uid", "")) ++owned;
      }
    }
    if (deployment.status == 200 && owned == count) return true;
    emulator.cluster().WaitForEvent(version, std::chrono::milliseconds(100));
  }
  return false;
}

EmulatorOptions FastEmulatorOptions() {
  EmulatorOptions options;
  options.tick = std::chrono::milliseconds(20);
  options.cluster.pod_start_delay = std::chrono::milliseconds(40);
  options.cluster.crash_interval = std::chrono::milliseconds(300);
  return options;
}

}  // namespace backout::emulators::kubernetes
