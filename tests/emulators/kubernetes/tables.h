#pragma once

#include <nlohmann/json.hpp>

#include "cluster.h"

namespace backout::emulators::kubernetes {

// Converts objects into a meta.k8s.io/v1 Table, the form `kubectl get` asks for, with the columns
// the API server prints for Deployments, ReplicaSets and Pods.
nlohmann::json BuildTable(Resource resource, const nlohmann::json& items,
                          const std::string& resource_version, SystemClock::time_point now);

}  // namespace backout::emulators::kubernetes
