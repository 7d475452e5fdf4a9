#pragma once

#include "app/control_plane.h"
#include "server/metrics.h"
#include "server/router.h"

namespace backout::server {

// Names of the receiver's metrics.
inline constexpr char kSignalAlertsTotal[] = "backout_signals_alerts_total";
inline constexpr char kSignalWebhooksRejectedTotal[] = "backout_signals_webhooks_rejected_total";

// Adds POST /api/v1/signals/alertmanager (Alertmanager's webhook, authenticated by the
// receiver's own bearer token or HMAC signature) and GET /api/v1/signals. The body limit is the
// receiver's max_body_bytes from the config in force when the routes are added.
void AddSignalRoutes(Router& router, app::ControlPlane& plane, Metrics& metrics);

}  // namespace backout::server
