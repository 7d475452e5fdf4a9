#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/transcript.h"
#include "providers/kubernetes/api_client.h"
#include "providers/kubernetes/kubernetes_settings.h"
#include "providers/kubernetes/readiness.h"
#include "providers/kubernetes/rollout_rules.h"
#include "providers/provider.h"

namespace backout::providers::kubernetes {

// Rolls a Deployment back through the Kubernetes API exactly as `kubectl rollout undo` does:
// the same choice of ReplicaSet, the same refusals (no history, a paused Deployment, a template
// that already matches) and the same JSON patch. Beyond kubectl it records the target by
// ReplicaSet name, pod-template-hash and images, and warns in Preconditions about what an undo
// does not revert. It rejects Deployments that Argo CD or Flux manages unless allowed, and it
// judges readiness with a deadline, fail-fast pod checks and a soak (see readiness.h).
//
// Versions: ReadLiveState reports the template's version as VersionOf writes it (the image, or
// NAME=IMAGE pairs). MakePlan takes such a version, `revision:N`, `replicaset:NAME`,
// `hash:HASH`, a ReplicaSet name or a pod-template-hash; an empty target requests kubectl's own
// rule (the second-highest revision), and the plan says so. The plan's target_version is the
// version of the chosen ReplicaSet.
//
// Only Deployments are supported; StatefulSets and DaemonSets are not yet.
class KubernetesProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "kubernetes"; }
  std::string_view Service() const override { return service_; }
  ProviderCapabilities Capabilities() const override;

  core::Result<LiveState> ReadLiveState() const override;
  // ReplicaSet revisions, oldest first: each ReplicaSet's creation is a deploy, and each later
  // revision a reused ReplicaSet received (its revision-history) is a rollback, made by any client.
  // Kubernetes keeps no time for a revision bump, so such entries carry an estimate and
  // details.time_estimated.
  core::Result<std::vector<HistoryEntry>> History(core::Time since) const override;
  core::Result<std::vector<Precondition>> Preconditions() const override;
  // Fails with kNotFound when there is no rollback target (kubectl's "no rollout history
  // found", with whether revisionHistoryLimit pruned it), which the job records as
  // no_rollback_target.
  core::Result<Plan> MakePlan(std::string_view target_version) const override;
  // Sends the plan's JSON patch once, after checking that the live state still gives the same
  // plan. Does not wait for the rollout: WaitForRollout does.
  core::Result<ExecutionResult> Execute(const Plan& plan, std::string_view idempotency_key,
                                        const ExecutionContext& context) const override;
  core::Result<ExecutionResult> Resume(const ResumeRequest& request,
                                       const ExecutionContext& context) const override;
  // One check: kubectl's rollout-status rules, fatal pod states, and the soak read from pod
  // timestamps.
  core::Result<Readiness> CheckReadiness() const override;
  core::Result<ToolRecord> ReadBack(const ExecutionResult& execution) const override;

  // Options of WaitForRollout.
  struct RolloutWait {
    std::optional<core::Time> since;                          // when the rollback was sent
    std::optional<nlohmann::json> expected_template;          // the template it wrote
    std::function<void(const ReadinessReport&)> on_progress;  // on every change of message
    std::stop_token stop;
  };

  // Polls the Deployment, its ReplicaSets and pods until the rollout is ready, fails, or
  // readiness_timeout passes (then it fails, saying which limit fired). A failed API call is
  // retried on the next poll until the deadline.
  core::Result<ReadinessReport> WaitForRollout(const RolloutWait& wait) const;

  // WaitForRollout for an execution of this provider: since its start, for its template.
  core::Result<ReadinessReport> WaitForRollout(
      const ExecutionResult& execution,
      std::function<void(const ReadinessReport&)> on_progress = {},
      std::stop_token stop = {}) const;

 private:
  KubernetesProvider(std::string service, KubernetesSettings settings, std::string ns,
                     std::unique_ptr<ApiClient> client, core::Clock& clock);

  // The Deployment and the ReplicaSets it controls.
  struct Snapshot {
    nlohmann::json deployment;
    std::vector<nlohmann::json> owned;
  };
  core::Result<Snapshot> ReadSnapshot(const CallContext& call) const;
  core::Result<ClusterView> ReadView() const;

  // The plan's action for rolling `snapshot` back to the ReplicaSet `target`. It contains what the
  // rollback does, not how the target was named, so planning again by the plan's
  // target_version gives the same digest while the live state stays the same.
  nlohmann::json BuildAction(const Snapshot& snapshot, const nlohmann::json& target) const;
  core::Result<void> ValidatePlan(const Plan& plan) const;
  std::string DeploymentPath() const;
  std::string NoHistoryExplanation(const Snapshot& snapshot) const;
  std::string ReadImpersonation() const;

  std::string service_;
  KubernetesSettings settings_;
  std::string ns_;
  std::unique_ptr<ApiClient> client_;
  core::Clock& clock_;
};

}  // namespace backout::providers::kubernetes
