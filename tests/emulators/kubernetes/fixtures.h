#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "emulator.h"

// Manifests and set-up steps shared by the tests that use the emulator.
namespace backout::emulators::kubernetes {

struct DeploymentSpec {
  std::string name = "web";
  std::vector<std::string> images = {"example/web:v1"};  // one container per image: app, app2…
  int replicas = 3;
  std::optional<int> revision_history_limit;
  std::optional<int> progress_deadline_seconds;
  std::string change_cause;  // kubernetes.io/change-cause when not empty
  nlohmann::json extra_labels = nlohmann::json::object();       // on the Deployment
  nlohmann::json extra_annotations = nlohmann::json::object();  // on the Deployment
  nlohmann::json env = nlohmann::json::array();                 // env of the first container
  std::string strategy = "RollingUpdate";
};

nlohmann::json DeploymentManifest(const DeploymentSpec& spec);

// Applies `spec` and waits for its rollout. Returns false when the apply fails or the rollout
// does not finish within `timeout`.
bool ApplyRevision(Emulator& emulator, const std::string& ns, const DeploymentSpec& spec,
                   bool record_last_applied = false,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Waits until the Deployment `name` owns exactly `count` ReplicaSets, as it does once the
// controller has pruned its history. Returns false on timeout.
bool WaitForReplicaSetCount(Emulator& emulator, const std::string& ns, const std::string& name,
                            size_t count,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The emulator settings tests use: short ticks and pod start times so rollouts take well under a
// second.
EmulatorOptions FastEmulatorOptions();

}  // namespace backout::emulators::kubernetes
