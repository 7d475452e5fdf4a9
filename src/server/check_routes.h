#pragma once

#include "app/control_plane.h"
#include "server/router.h"

namespace backout::server {

// Adds the routes of validation checks: POST /api/v1/incidents/{id}/checks/{name}/confirm.
void AddCheckRoutes(Router& router, app::ControlPlane& plane);

}  // namespace backout::server
