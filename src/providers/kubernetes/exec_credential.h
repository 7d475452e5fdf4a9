#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/time.h"
#include "providers/kubernetes/kubeconfig.h"

namespace backout::providers::kubernetes {

// The credential an exec plugin returned: a bearer token, or a client certificate and key.
struct ExecCredential {
  std::string token;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::optional<core::Time> expires_at;
};

// Runs the plugin as client-go does: the server's environment plus the plugin's `env`, and
// KUBERNETES_EXEC_INFO describing the request (with the cluster when provideClusterInfo is
// set). Fails with kUnauthenticated when the plugin is missing, fails, times out or prints
// something other than an ExecCredential; the message names the command and never quotes its
// standard output, which holds the credential.
core::Result<ExecCredential> RunExecPlugin(const ExecPlugin& plugin, const ClusterAccess& cluster,
                                           std::chrono::milliseconds timeout);

}  // namespace backout::providers::kubernetes
