#pragma once

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/codedeploy/api_client.h"
#include "providers/codedeploy/codedeploy_settings.h"
#include "providers/codedeploy/deployment.h"
#include "providers/provider.h"

namespace backout::providers::codedeploy {

// Rolls a service back through AWS CodeDeploy (EC2/on-premises deployment groups). A version is
// a revision named by RevisionName, such as s3://releases/shop-1.4.2.zip; a target may also be
// given as the id of a deployment whose revision to restore. An empty target asks for
// CodeDeploy's own rule: the revision of the latest successful deployment that differs from the
// live one.
//
// The plan depends on what the deployment group is doing:
// - a rollback CodeDeploy started itself (creator codeDeployRollback) still runs: wait for it
//   instead of racing it (`attach`);
// - another deployment runs: StopDeployment, then follow CodeDeploy's own rollback when the
//   target is the revision that rollback restores (`stop_and_rollback`), or else wait for the
//   stop and deploy the target (`stop_then_deploy`);
// - nothing runs: CreateDeployment of the target (`redeploy`), or nothing when the target is
//   already live (`noop`);
// - no earlier good revision exists: `no_rollback_target`, quoting CodeDeploy's own message.
//
// Rollback deployments set the configured fileExistsBehavior and disable CodeDeploy's automatic
// rollback, which would otherwise restore the bad revision when the rollback fails. Their
// description carries the idempotency key, so a CreateDeployment whose response was lost is found
// before it is tried again. The outcome is `partial` when some instances failed, naming them.
class CodeDeployProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);
  // As Create, with the environment read through `environment`.
  static core::Result<std::unique_ptr<Provider>> CreateWithEnvironment(
      std::string_view service, const nlohmann::json& settings, const SecretValues& secrets,
      core::Clock& clock, const EnvironmentLookup& environment);

  std::string_view Kind() const override { return "codedeploy"; }
  std::string_view Service() const override { return service_; }
  ProviderCapabilities Capabilities() const override;

  core::Result<LiveState> ReadLiveState() const override;
  core::Result<std::vector<HistoryEntry>> History(core::Time since) const override;
  core::Result<std::vector<Precondition>> Preconditions() const override;
  core::Result<Plan> MakePlan(std::string_view target_version) const override;
  core::Result<ExecutionResult> Execute(const Plan& plan, std::string_view idempotency_key,
                                        const ExecutionContext& context) const override;
  core::Result<ExecutionResult> Resume(const ResumeRequest& request,
                                       const ExecutionContext& context) const override;
  core::Result<Readiness> CheckReadiness() const override;
  core::Result<ToolRecord> ReadBack(const ExecutionResult& execution) const override;

  // The text that marks a deployment Backout created for `idempotency_key`.
  static std::string Marker(std::string_view idempotency_key);

 private:
  // The deployment group's state, read in one go.
  struct GroupState {
    nlohmann::json group_info;
    std::optional<DeploymentRecord> latest;           // the newest deployment of any status
    std::vector<DeploymentRecord> active;             // running deployments, newest first
    std::optional<DeploymentRecord> last_successful;  // as the deployment group reports it
    std::string LiveVersion() const;
  };

  // One run of Execute or Resume: its inputs and the result it fills.
  struct Run {
    const Plan& plan;
    std::string key;
    const ExecutionContext& context;
    ExecutionResult& result;
    core::Time deadline;
  };

  CodeDeployProvider(std::string service, CodeDeploySettings settings,
                     std::unique_ptr<ApiClient> api, core::Clock& clock);

  // API reads, each failing with the mapped core error.
  core::Result<nlohmann::json> Call(std::string_view action, const nlohmann::json& input,
                                    Transcript* transcript) const;
  core::Result<DeploymentRecord> GetDeployment(const std::string& id, Transcript* transcript) const;
  core::Result<std::vector<std::string>> ListDeploymentIds(nlohmann::json filters,
                                                           Transcript* transcript) const;
  core::Result<std::vector<DeploymentRecord>> GetDeployments(const std::vector<std::string>& ids,
                                                             Transcript* transcript) const;
  core::Result<std::vector<InstanceResult>> GetInstances(const std::string& deployment_id,
                                                         Transcript* transcript) const;
  core::Result<GroupState> ReadGroupState(Transcript* transcript) const;
  // The newest succeeded deployment whose version differs from `live_version`.
  core::Result<std::optional<DeploymentRecord>> FindKnownGood(std::string_view live_version) const;
  // The deployment that best names `target`: a deployment id, else the newest succeeded
  // deployment of that version, else the newest of any status. Fails with kNotFound.
  core::Result<DeploymentRecord> FindTarget(std::string_view target) const;
  core::Result<std::optional<DeploymentRecord>> FindByMarker(const std::string& marker,
                                                             Transcript* transcript) const;

  // Execution steps.
  core::Result<void> ValidatePlan(const Plan& plan) const;
  ExecutionResult Finish(Run& run, RollbackOutcome outcome, std::string message) const;
  ExecutionResult Redeploy(Run& run) const;
  ExecutionResult StopAndFollow(Run& run) const;
  ExecutionResult StopThenDeploy(Run& run) const;
  ExecutionResult Follow(Run& run, const std::string& deployment_id) const;
  // Starts the rollback deployment, or finds the one an earlier attempt started.
  core::Result<std::string> StartDeployment(Run& run) const;
  // Polls until the deployment ends, the deadline passes (nothing) or a stop is requested (then
  // it stops the deployment and keeps polling).
  core::Result<std::optional<DeploymentRecord>> WaitFinished(
      Run& run, const std::string& deployment_id) const;
  ExecutionResult Conclude(Run& run, const DeploymentRecord& deployment) const;
  bool RecordStart(Run& run, nlohmann::json tool) const;
  // Sleeps `delay` unless a stop is requested first; returns whether it slept all of it.
  bool Sleep(std::chrono::milliseconds delay, const std::stop_token& stop) const;

  nlohmann::json CreateInput(const Plan& plan, const std::string& description) const;
  nlohmann::json DeploymentDetails(const DeploymentRecord& deployment) const;

  std::string service_;
  CodeDeploySettings settings_;
  std::unique_ptr<ApiClient> api_;
  core::Clock& clock_;
};

}  // namespace backout::providers::codedeploy
