#pragma once

#include "app/control_plane.h"
#include "server/router.h"

namespace backout::server {

// Adds the routes of post-incident reviews (text, owner, status, HTML), the action item report
// across incidents, and access reviews with their attestations.
void AddReviewAndAccessRoutes(Router& router, app::ControlPlane& plane);

}  // namespace backout::server
