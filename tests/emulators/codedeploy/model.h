#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

// The state and behaviour of an emulated AWS CodeDeploy account in one region, for EC2/on-premises
// in-place deployments. Requests are answered as the CodeDeploy API (2014-10-06, JSON 1.1) shapes
// them, with error types from the API model shipped in botocore. Time is passed in by the caller,
// so the model itself is deterministic; the server passes the system clock.
//
// NOTE: Error messages are the emulator's own wording; only the error types follow AWS.
namespace backout::emulators::codedeploy {

using Time = std::chrono::sys_time<std::chrono::milliseconds>;
using std::chrono::milliseconds;

// An error as the JSON 1.1 protocol returns it: HTTP status, `__type` and `message`.
struct ApiError {
  int status = 400;
  std::string type;
  std::string message;
};

using ApiResult = std::expected<nlohmann::json, ApiError>;

// How long simulated work takes.
struct Timing {
  milliseconds queue{50};            // Created to InProgress, and a stop request to Stopped
  milliseconds lifecycle_event{50};  // each lifecycle event on each instance
};

// The in-place lifecycle events, in the order the CodeDeploy agent runs them without a load
// balancer.
inline constexpr std::string_view kLifecycleEvents[] = {
    "ApplicationStop", "DownloadBundle",   "BeforeInstall",  "Install",
    "AfterInstall",    "ApplicationStart", "ValidateService"};

struct LifecycleEventRun {
  std::string name;
  std::string status = "Pending";  // Pending, InProgress, Succeeded, Failed, Skipped
  std::optional<Time> start;
  std::optional<Time> end;
  nlohmann::json diagnostics;  // null unless the event ran
};

struct InstanceRun {
  std::string instance_id;
  std::string status = "Pending";  // Pending, InProgress, Succeeded, Failed, Skipped
  std::vector<LifecycleEventRun> events;
  size_t current = 0;  // index of the running event
  Time event_started{};
  Time last_updated{};
};

struct Deployment {
  std::string id;
  std::string application;
  std::string group;
  std::string config_name;
  nlohmann::json revision;
  nlohmann::json previous_revision;  // null when the group had no successful deployment
  std::string status = "Created";
  std::string creator = "user";
  std::string description;
  Time create_time{};
  Time queued_until{};  // when Created turns InProgress
  std::optional<Time> start_time;
  std::optional<Time> complete_time;
  nlohmann::json error_information;  // null or {code, message}
  nlohmann::json rollback_info;      // null or RollbackInfo
  nlohmann::json auto_rollback;      // null or AutoRollbackConfiguration
  std::string file_exists_behavior = "DISALLOW";
  bool ignore_application_stop_failures = false;
  bool update_outdated_instances_only = false;
  std::vector<InstanceRun> instances;
  size_t next_instance = 0;      // first instance not yet started
  std::optional<Time> stop_at;   // when a requested stop takes effect
  bool stop_rolls_back = false;  // whether that stop starts a rollback
  bool stalled = false;

  bool IsActive() const;
};

// What happens when a revision is deployed.
struct RevisionBehavior {
  std::string fails_at;                  // lifecycle event that fails on every instance, or empty
  std::string message;                   // the script's failure message for fails_at
  bool broken_application_stop = false;  // its ApplicationStop script fails on later deployments
  std::string install_path = "/var/www/app/index.html";  // where a failed Install leaves files
};

// A failure injected for the next deployments that reach an event on an instance.
struct InjectedFailure {
  std::string event;
  std::string deployment_id;  // empty for any deployment
  int remaining = 1;
  std::string message;
};

struct Instance {
  std::string id;
  nlohmann::json revision;    // the revision it runs now (its last successful), or null
  std::string leftover_file;  // a file a failed Install left behind, or empty
  std::vector<InjectedFailure> failures;
};

struct DeploymentGroup {
  std::string application;
  std::string name;
  std::string id;
  std::string config_name = "CodeDeployDefault.OneAtATime";
  std::string service_role_arn;
  nlohmann::json auto_rollback;  // AutoRollbackConfiguration or null
  nlohmann::json alarm_configuration;
  std::vector<std::string> instance_ids;
  std::string last_successful;  // deployment ids, or empty
  std::string last_attempted;
  bool stalled = false;  // every deployment of the group stalls until released
};

class Model {
 public:
  // Builds the state from the document described in README.md: applications, deploymentGroups,
  // revisions and deployments (finished ones only). Returns a message naming the bad field.
  static std::expected<Model, std::string> FromJson(const nlohmann::json& state, Time now);

  // Runs the API action `action` (such as "GetDeployment") on `input`, after bringing every
  // deployment up to `now`.
  ApiResult Call(std::string_view action, const nlohmann::json& input, Time now);

  // Test hooks, each returning a message on bad input.
  std::expected<void, std::string> InjectInstanceFailure(const nlohmann::json& request);
  std::expected<void, std::string> SetRevisionBehavior(const nlohmann::json& request);
  std::expected<void, std::string> SetStalled(const nlohmann::json& request, bool stalled,
                                              Time now);

  // Everything the model holds, for tests to inspect.
  nlohmann::json Dump(Time now);

  void set_timing(Timing timing) { timing_ = timing; }
  void set_list_page_size(size_t size) { list_page_size_ = size; }
  void set_region(std::string region) { region_ = std::move(region); }

 private:
  Model();

  // Simulation.
  void Advance(Time now);
  void AdvanceDeployment(Deployment& deployment, Time now);
  void StartNextBatch(Deployment& deployment, Time at);
  void StartEvent(Deployment& deployment, InstanceRun& run, Time at);
  void FinishEvent(Deployment& deployment, InstanceRun& run, Time at);
  void FinishInstance(Deployment& deployment, InstanceRun& run, bool succeeded, Time at);
  void AfterInstanceEnded(Deployment& deployment, Time at);
  void Complete(Deployment& deployment, const std::string& status, Time at);
  void CompleteStop(Deployment& deployment, Time at);
  void StartAutomaticRollback(Deployment& deployment, Time at);
  std::optional<std::string> EventFailure(Deployment& deployment, InstanceRun& run,
                                          const LifecycleEventRun& event, nlohmann::json& out);
  size_t MinHealthy(const Deployment& deployment) const;
  size_t BatchSize(const Deployment& deployment) const;

  // Actions.
  ApiResult GetDeployment(const nlohmann::json& input);
  ApiResult BatchGetDeployments(const nlohmann::json& input);
  ApiResult ListDeployments(const nlohmann::json& input);
  ApiResult GetDeploymentGroup(const nlohmann::json& input);
  ApiResult CreateDeployment(const nlohmann::json& input, Time now);
  ApiResult StopDeployment(const nlohmann::json& input, Time now);
  ApiResult ListDeploymentTargets(const nlohmann::json& input);
  ApiResult BatchGetDeploymentTargets(const nlohmann::json& input);

  // Helpers.
  std::expected<Deployment*, ApiError> FindDeployment(const nlohmann::json& input);
  std::expected<DeploymentGroup*, ApiError> FindGroup(const nlohmann::json& input);
  Deployment& NewDeployment(const DeploymentGroup& group, Time now);
  std::string NewDeploymentId();
  RevisionBehavior BehaviorOf(const nlohmann::json& revision) const;
  nlohmann::json DeploymentInfo(const Deployment& deployment) const;
  nlohmann::json TargetInfo(const Deployment& deployment, const InstanceRun& run) const;
  nlohmann::json LastDeploymentInfo(const std::string& id) const;

  Timing timing_;
  size_t list_page_size_ = 100;
  std::string region_ = "us-east-1";
  std::string account_ = "123456789012";
  std::map<std::string, std::string> applications_;  // name to application id
  std::vector<DeploymentGroup> groups_;
  std::map<std::string, Instance> instances_;
  std::vector<nlohmann::json> revisions_;              // registered revisions
  std::map<std::string, RevisionBehavior> behaviors_;  // by revision.dump()
  std::deque<Deployment> deployments_;                 // in creation order; references stay valid
  std::mt19937_64 random_;
};

// Time in the JSON protocol: seconds since the epoch as a number with milliseconds.
nlohmann::json EpochSeconds(Time time);

}  // namespace backout::emulators::codedeploy
