#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/git/git_repository.h"
#include "providers/git/git_settings.h"
#include "providers/git/manifest_text.h"
#include "providers/git/revert_planner.h"
#include "providers/health_probe.h"
#include "providers/provider.h"

namespace backout::providers::git {

// Rolls a service back in its GitOps repository (Argo CD, Flux): a revert commit on the
// configured branch that restores the target version in the service's file, pushed without
// force. The GitOps controller then deploys it. A version is what version_pattern or
// version_key finds in that file.
//
// - MakePlan finds the commits that moved the version away from the target (the newest one
//   introduced the suspected version) and builds their revert in memory. It refuses a target the
//   file never declared (kNotFound) and a revert that conflicts, naming the files
//   (kFailedPrecondition). An empty target requests the version before the suspected commit.
// - Execute fetches, plans again on the current head and requires the same action, makes the
//   revert commit (its message names the incident, the versions, the approver and the executor,
//   and carries the idempotency key), records the commit's id through on_started, and pushes.
//   When the remote moved meanwhile, the push is rejected, and Execute fetches, plans and commits
//   again, up to push_attempts times. Before every push it looks for a commit with its key on
//   the branch, so a retried job never pushes a second revert.
// - Resume pushes the commit recorded before the crash when the branch has not moved, and
//   otherwise plans and commits again as Execute does, never pushing when the key is already on
//   the branch. Without a recorded commit nothing was pushed, and Resume ends `failed`.
// - After the push, and during Readiness and ReadBack, a later commit that moved the version
//   away from the target (image automation, a parent Kustomization) is reported: Execute ends
//   `reverted_by_controller` when it sees one within verify_for.
//
// All git work for one binding is serialized on one work folder; the other methods wait.
class GitProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "git"; }
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

 private:
  GitProvider(std::string service, std::unique_ptr<GitSettings> settings,
              std::unique_ptr<HealthProbe> probe, core::Clock& clock);

  core::Result<void> ValidatePlan(const Plan& plan) const;
  // Opens the work clone and fetches; returns the branch head. Call with mutex_ held.
  core::Result<std::string> OpenAndFetch(std::optional<GitRepository>& repository) const;

  std::string CommitMessage(const RevertPlan& plan, const ExecutionContext& context,
                            std::string_view key) const;

  // Pushes the plan's revert, trying up to push_attempts times. `recorded` is the commit a
  // crashed execution made; `record_start` is whether to call on_started for new commits.
  void PushRevert(const Plan& plan, std::string_view key, const ExecutionContext& context,
                  const std::optional<std::string>& recorded, bool record_start,
                  ExecutionResult& result) const;
  // Finishes a Resume whose job recorded no commit.
  void ResumeUnrecorded(const Plan& plan, std::string_view key, const ExecutionContext& context,
                        ExecutionResult& result) const;
  // Reads the branch after `commit` landed and sets the outcome, watching for verify_for.
  void ConcludeAfterPush(std::string_view commit, const ExecutionContext& context,
                         ExecutionResult& result) const;

  std::string service_;
  std::unique_ptr<GitSettings> settings_;  // on the heap: readers keep references to it
  VersionReader reader_;
  RevertPlanner planner_;
  std::unique_ptr<HealthProbe> probe_;
  core::Clock& clock_;
  mutable std::mutex mutex_;  // serializes the use of the work folder
};

}  // namespace backout::providers::git
