#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace backout::providers::kubernetes {

// Policy for a Deployment that Argo CD or Flux manages, whose self-heal would revert an
// undo made in the cluster.
enum class GitOpsPolicy {
  kRefuse,  // the rollback ends precondition_failed: revert the change in Git instead
  kAllow,   // roll back anyway, then check after gitops_grace whether the controller reverted it
};

// The settings of one `kubernetes` provider binding, as written in the service's `provider`
// block:
//
//   kind: kubernetes                       # accepted and ignored here
//   kubeconfig: /etc/backout/kubeconfig     # required; absolute path
//   context: prod-eu                       # optional; default the kubeconfig's current-context
//   namespace: shop                        # optional; default the context's, else "default"
//   deployment: checkout                   # required; the Deployment to roll back
//   impersonate: executor                  # optional; "executor" or a user name, sent as
//                                          #   Impersonate-User on the rollback's patch
//   readiness_timeout: 10m                 # overall limit of the readiness wait, default 10m
//   soak: 30s                              # time without restarts after rollout, default 30s
//   poll_interval: 2s                      # readiness poll period, default 2s
//   request_timeout: 30s                   # one API call, default 30s
//   restart_limit: 3                       # container restarts that fail readiness, default 3
//   gitops: refuse                         # refuse (default) or allow, see GitOpsPolicy
//   gitops_grace: 30s                      # with allow: wait before checking for a revert
//
// Only Deployments are supported: StatefulSets and DaemonSets roll back through
// ControllerRevisions, which this provider does not handle yet.
struct KubernetesSettings {
  std::filesystem::path kubeconfig;
  std::string context;
  std::string ns;
  std::string deployment;
  std::string impersonate;
  std::chrono::milliseconds readiness_timeout{600'000};
  std::chrono::milliseconds soak{30'000};
  std::chrono::milliseconds poll_interval{2'000};
  std::chrono::milliseconds request_timeout{30'000};
  int restart_limit = 3;
  GitOpsPolicy gitops = GitOpsPolicy::kRefuse;
  std::chrono::milliseconds gitops_grace{30'000};
};

// Validates `settings` for `service`. Errors name the service and the field.
core::Result<KubernetesSettings> ParseKubernetesSettings(std::string_view service,
                                                         const nlohmann::json& settings);

}  // namespace backout::providers::kubernetes
