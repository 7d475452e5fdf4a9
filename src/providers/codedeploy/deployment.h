#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"

// CodeDeploy's records as the provider reads them: deployments, their revisions and the
// per-instance results.
namespace backout::providers::codedeploy {

// Whether a deployment in `status` is finished: Succeeded, Failed or Stopped. Any other status,
// including one this code does not know, counts as still running.
bool IsTerminalStatus(std::string_view status);

// The statuses of a running deployment, for ListDeployments' includeOnlyStatuses.
inline constexpr std::string_view kActiveStatuses[] = {"Created", "Queued", "InProgress", "Ready",
                                                       "Baking"};

// Names a RevisionLocation as Backout names versions: s3://BUCKET/KEY (with ?versionId=V when
// the revision pins an S3 object version), github:REPOSITORY@COMMIT, string:sha256:HEX or
// appspec:sha256:HEX for inline content.
std::string RevisionName(const nlohmann::json& revision);

// One DeploymentInfo.
struct DeploymentRecord {
  std::string id;
  std::string application;
  std::string group;
  std::string status;
  std::string creator;  // user, autoscaling, codeDeployRollback…
  std::string description;
  nlohmann::json revision;
  std::string version;  // RevisionName(revision)
  std::optional<core::Time> create_time;
  std::optional<core::Time> start_time;
  std::optional<core::Time> complete_time;
  std::string rollback_deployment_id;    // the rollback CodeDeploy started for this deployment
  std::string triggering_deployment_id;  // for a rollback: the deployment it rolls back
  std::string rollback_message;
  std::string error_code;
  std::string error_message;
  nlohmann::json raw;  // the DeploymentInfo as received

  bool IsTerminal() const { return IsTerminalStatus(status); }
  bool IsCodeDeployRollback() const { return creator == "codeDeployRollback"; }
};

// Parses a DeploymentInfo object. Fails with kUnavailable naming the missing field, because a
// malformed response is the tool's fault, not the caller's.
core::Result<DeploymentRecord> ParseDeployment(const nlohmann::json& info);

// Returns `value` with every fractional number replaced by text: the protocol's timestamps
// (seconds since the epoch, with a fraction) as RFC 3339 UTC, any other fraction as written.
// Backout's ledger records integers only, so tool records must pass through this.
nlohmann::json WithTimesAsText(const nlohmann::json& value);

// The JSON protocol's timestamps: seconds since the epoch, with a fraction.
core::Time TimeFromEpochSeconds(double seconds);
double EpochSecondsFromTime(core::Time time);

// The end state of one instance in a deployment, from BatchGetDeploymentTargets.
struct InstanceResult {
  std::string instance_id;
  std::string status;        // Pending, InProgress, Succeeded, Failed, Skipped, Unknown, Ready
  std::string failed_event;  // the lifecycle event that failed, or empty
  std::string message;       // that event's diagnostics message
};

// Parses one DeploymentTarget (an InstanceTarget). Other target types give an empty id.
InstanceResult ParseInstanceTarget(const nlohmann::json& target);

}  // namespace backout::providers::codedeploy
