#pragma once

#include "app/control_plane.h"
#include "server/router.h"

namespace backout::server {

// Adds the routes of reconciliation (discovered rollbacks, running a service's reconciliation,
// its timeline) and of notification deliveries, each calling one use case of `plane`.
void AddReconciliationAndNotificationRoutes(Router& router, app::ControlPlane& plane);

}  // namespace backout::server
