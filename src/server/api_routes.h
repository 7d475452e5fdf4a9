#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "app/control_plane.h"
#include "server/metrics.h"
#include "server/router.h"

namespace backout::server {

// What the public routes need besides the use cases.
struct ApiEnvironment {
  Metrics* metrics = nullptr;
  // Set while the server shuts down, so /readyz turns 503 before the listener closes.
  const std::atomic<bool>* stopping = nullptr;
  std::string version;
  // Loads the config file again on behalf of the named user; empty when reloading is not offered.
  std::function<core::Result<std::string>(std::string_view loaded_by)> reload;
};

// Builds the route table of API v1 (and /healthz, /readyz, /metrics), each route calling one
// use case of `plane`. The OpenAPI route renders the router it is added to, so `router` must stay
// where it is while the server runs.
void AddApiRoutes(Router& router, app::ControlPlane& plane, ApiEnvironment environment);

}  // namespace backout::server
