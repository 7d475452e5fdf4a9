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
};

// Builds the route table of API v1 (and /healthz, /readyz, /metrics), each route calling one
// use case of `plane`. The OpenAPI route renders the router it is added to, so `router` must stay
// where it is while the server runs.
void AddApiRoutes(Router& router, app::ControlPlane& plane, ApiEnvironment environment);

}  // namespace backout::server
