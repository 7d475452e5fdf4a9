#pragma once

#include "app/control_plane.h"
#include "server/router.h"

namespace backout::server {

// Adds the route that shows a service's release manifest beside its release folder.
void AddReleaseRoutes(Router& router, app::ControlPlane& plane);

}  // namespace backout::server
