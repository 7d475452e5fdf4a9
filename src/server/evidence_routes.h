#pragma once

#include "app/control_plane.h"
#include "server/router.h"

namespace backout::server {

// Adds the evidence and audit routes: GET /api/v1/incidents/{id}/evidence (a tar.gz bundle),
// GET /api/v1/evidence (a period's tar.gz bundle), GET /api/v1/evidence/population and
// GET /api/v1/audit/findings.
void AddEvidenceRoutes(Router& router, app::ControlPlane& plane);

}  // namespace backout::server
