#include "emulators/codedeploy/model.h"

#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>

namespace backout::emulators::codedeploy {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 8> kStatuses = {
    "Created", "Queued", "InProgress", "Baking", "Succeeded", "Failed", "Stopped", "Ready"};
constexpr std::array<std::string_view, 3> kConfigs = {
    "CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce"};
constexpr std::array<std::string_view, 3> kFileExistsBehaviors = {"DISALLOW", "OVERWRITE",
                                                                  "RETAIN"};
constexpr std::array<std::string_view, 3> kRollbackEvents = {
    "DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"};
constexpr size_t kBatchLimit = 25;

// The message AWS gives for a deployment that lost too many instances.
constexpr std::string_view kHealthConstraintsMessage =
    "The overall deployment failed because too many individual instances failed deployment, too "
    "few healthy instances are available for deployment, or some instances in your deployment "
    "group are experiencing problems.";

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool IsLifecycleEvent(std::string_view name) {
  return std::find(std::begin(kLifecycleEvents), std::end(kLifecycleEvents), name) !=
         std::end(kLifecycleEvents);
}

bool IsTerminal(std::string_view status) {
  return status == "Succeeded" || status == "Failed" || status == "Stopped";
}

std::unexpected<ApiError> Error(std::string type, std::string message) {
  return std::unexpected(ApiError{400, std::move(type), std::move(message)});
}

std::string StringField(const json& input, std::string_view key) {
  auto it = input.find(key);
  return it != input.end() && it->is_string() ? it->get<std::string>() : "";
}

bool IsDeploymentId(std::string_view id) {
  if (id.size() != 11 || !id.starts_with("d-")) return false;
  return std::all_of(id.begin() + 2, id.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

Time FromEpochSeconds(const json& value) {
  return Time(milliseconds(static_cast<int64_t>(value.get<double>() * 1000.0)));
}

// Whether `candidate` names the same revision as `registered`: the same S3 object (and version,
// when the registered one has a version), the same GitHub commit, or the same inline content.
bool SameRevision(const json& registered, const json& candidate) {
  if (StringField(registered, "revisionType") != StringField(candidate, "revisionType")) {
    return false;
  }
  std::string type = StringField(registered, "revisionType");
  if (type == "S3") {
    const json& a = registered.value("s3Location", json::object());
    const json& b = candidate.value("s3Location", json::object());
    if (StringField(a, "bucket") != StringField(b, "bucket")) return false;
    if (StringField(a, "key") != StringField(b, "key")) return false;
    return StringField(a, "version").empty() ||
           StringField(a, "version") == StringField(b, "version");
  }
  if (type == "GitHub") {
    const json& a = registered.value("gitHubLocation", json::object());
    const json& b = candidate.value("gitHubLocation", json::object());
    return StringField(a, "repository") == StringField(b, "repository") &&
           StringField(a, "commitId") == StringField(b, "commitId");
  }
  return registered == candidate;
}

// Checks the shape of a RevisionLocation; returns a message when it is invalid.
std::optional<std::string> RevisionProblem(const json& revision) {
  if (!revision.is_object()) return "the revision must be an object";
  std::string type = StringField(revision, "revisionType");
  if (type == "S3") {
    const json& s3 = revision.value("s3Location", json::object());
    if (StringField(s3, "bucket").empty() || StringField(s3, "key").empty()) {
      return "an S3 revision needs s3Location.bucket and s3Location.key";
    }
    std::string bundle = StringField(s3, "bundleType");
    if (!bundle.empty() && bundle != "tar" && bundle != "tgz" && bundle != "zip" &&
        bundle != "YAML" && bundle != "JSON") {
      return fmt::format("bundleType {} is not one of tar, tgz, zip, YAML, JSON", bundle);
    }
    return std::nullopt;
  }
  if (type == "GitHub") {
    const json& github = revision.value("gitHubLocation", json::object());
    if (StringField(github, "repository").empty() || StringField(github, "commitId").empty()) {
      return "a GitHub revision needs gitHubLocation.repository and gitHubLocation.commitId";
    }
    return std::nullopt;
  }
  if (type == "String" || type == "AppSpecContent") {
    const json& content = revision.value(type == "String" ? "string" : "appSpecContent", json());
    if (!content.is_object() || StringField(content, "content").empty()) {
      return "an inline revision needs its content";
    }
    return std::nullopt;
  }
  return fmt::format("revisionType '{}' is not one of S3, GitHub, String, AppSpecContent", type);
}

std::string ScriptName(std::string_view event) {
  std::string name = "scripts/";
  for (char c : event) name.push_back(static_cast<char>(std::tolower(c)));
  return name + ".sh";
}

json ScriptFailure(std::string_view event, std::string message) {
  return json{{"errorCode", "ScriptFailed"},
              {"scriptName", ScriptName(event)},
              {"message", std::move(message)},
              {"logTail", fmt::format("[stderr]{} exited with status 1", ScriptName(event))}};
}

std::string DefaultScriptMessage(std::string_view event) {
  return fmt::format("Script at specified location: {} run as user root failed with exit code 1",
                     ScriptName(event));
}

}  // namespace

json EpochSeconds(Time time) {
  return static_cast<double>(time.time_since_epoch().count()) / 1000.0;
}

bool Deployment::IsActive() const { return !IsTerminal(status); }

Model::Model() : random_(std::random_device{}()) {}

// ---- State document ---------------------------------------------------------------------------

std::expected<Model, std::string> Model::FromJson(const json& state, Time now) {
  Model model;
  if (!state.is_object()) return std::unexpected("the state must be a JSON object");

  if (state.contains("region")) model.region_ = state["region"].get<std::string>();
  if (state.contains("listPageSize")) {
    model.list_page_size_ = std::max<size_t>(1, state["listPageSize"].get<size_t>());
  }
  if (state.contains("timing")) {
    const json& timing = state["timing"];
    model.timing_.queue = milliseconds(timing.value("queueMs", model.timing_.queue.count()));
    model.timing_.lifecycle_event =
        milliseconds(timing.value("lifecycleEventMs", model.timing_.lifecycle_event.count()));
  }

  for (const json& application : state.value("applications", json::array())) {
    std::string name =
        application.is_string() ? application.get<std::string>() : StringField(application, "name");
    if (name.empty()) return std::unexpected("applications: each needs a name");
    model.applications_[name] = fmt::format("{:08x}-app", model.random_() & 0xffffffff);
  }

  for (const json& group_json : state.value("deploymentGroups", json::array())) {
    DeploymentGroup group;
    group.application = StringField(group_json, "applicationName");
    group.name = StringField(group_json, "deploymentGroupName");
    if (!model.applications_.contains(group.application)) {
      return std::unexpected(fmt::format(
          "deploymentGroups: application '{}' is not in applications", group.application));
    }
    if (group.name.empty()) return std::unexpected("deploymentGroups: a group has no name");
    group.id = fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", model.random_() & 0xffffffff,
                           model.random_() & 0xffff, model.random_() & 0xffff,
                           model.random_() & 0xffff, model.random_() & 0xffffffffffff);
    group.config_name = group_json.value("deploymentConfigName", group.config_name);
    if (!OneOf(kConfigs, group.config_name)) {
      return std::unexpected(
          fmt::format("deploymentGroups: deployment config {} is not emulated", group.config_name));
    }
    group.service_role_arn =
        group_json.value("serviceRoleArn",
                         fmt::format("arn:aws:iam::{}:role/CodeDeployServiceRole", model.account_));
    group.auto_rollback = group_json.value("autoRollbackConfiguration", json());
    group.alarm_configuration = group_json.value(
        "alarmConfiguration",
        json{{"enabled", false}, {"ignorePollAlarmFailure", false}, {"alarms", json::array()}});
    for (const json& instance : group_json.value("instances", json::array())) {
      std::string id = instance.get<std::string>();
      group.instance_ids.push_back(id);
      model.instances_[id].id = id;
    }
    model.groups_.push_back(std::move(group));
  }

  for (const json& entry : state.value("revisions", json::array())) {
    auto set = model.SetRevisionBehavior(entry);
    if (!set) return std::unexpected("revisions: " + set.error());
  }

  // Finished deployments, applied oldest first so that the groups and instances end up with the
  // revisions the history implies.
  json seeded_json = state.value("deployments", json::array());
  std::vector<json> seeded(seeded_json.begin(), seeded_json.end());
  std::stable_sort(seeded.begin(), seeded.end(), [](const json& a, const json& b) {
    return a.value("createTime", 0.0) < b.value("createTime", 0.0);
  });
  for (const json& entry : seeded) {
    DeploymentGroup* group = nullptr;
    for (DeploymentGroup& candidate : model.groups_) {
      if (candidate.application == StringField(entry, "applicationName") &&
          candidate.name == StringField(entry, "deploymentGroupName")) {
        group = &candidate;
      }
    }
    if (group == nullptr) {
      return std::unexpected(fmt::format("deployments: no deployment group {}/{}",
                                         StringField(entry, "applicationName"),
                                         StringField(entry, "deploymentGroupName")));
    }
    std::string status = entry.value("status", "Succeeded");
    if (!IsTerminal(status)) {
      return std::unexpected(fmt::format(
          "deployments: seeded deployments must be finished (Succeeded, Failed or Stopped), got "
          "{}; create running ones through CreateDeployment",
          status));
    }
    if (auto problem = RevisionProblem(entry.value("revision", json()))) {
      return std::unexpected("deployments: " + *problem);
    }

    Time create_time = entry.contains("createTime") ? FromEpochSeconds(entry["createTime"]) : now;
    Deployment& deployment = model.NewDeployment(*group, create_time);
    if (entry.contains("deploymentId")) {
      deployment.id = entry["deploymentId"].get<std::string>();
      if (!IsDeploymentId(deployment.id)) {
        return std::unexpected(
            fmt::format("deployments: '{}' is not a deployment id (d- and 9 capitals or digits)",
                        deployment.id));
      }
    }
    deployment.revision = entry["revision"];
    deployment.creator = entry.value("creator", "user");
    deployment.description = entry.value("description", "");
    deployment.file_exists_behavior = entry.value("fileExistsBehavior", "DISALLOW");
    deployment.error_information = entry.value("errorInformation", json());
    deployment.rollback_info = entry.value("rollbackInfo", json());
    deployment.status = status;
    deployment.start_time = create_time + milliseconds(1000);
    deployment.complete_time = entry.contains("completeTime")
                                   ? FromEpochSeconds(entry["completeTime"])
                                   : create_time + milliseconds(60'000);
    deployment.next_instance = deployment.instances.size();

    // Each instance ends with its status in instanceStatuses, or as the deployment did.
    json instance_statuses = entry.value("instanceStatuses", json::object());
    for (InstanceRun& run : deployment.instances) {
      std::string default_status = status == "Succeeded" ? "Succeeded"
                                   : status == "Failed"  ? "Failed"
                                                         : "Skipped";
      run.status = instance_statuses.value(run.instance_id, default_status);
      run.last_updated = *deployment.complete_time;
      bool failed = run.status == "Failed";
      bool reached = run.status != "Skipped";
      for (LifecycleEventRun& event : run.events) {
        if (!reached) {
          event.status = "Skipped";
        } else if (failed && event.name == "ApplicationStart") {
          event.status = "Failed";
          event.diagnostics = ScriptFailure(event.name, DefaultScriptMessage(event.name));
          reached = false;
        } else {
          event.status = "Succeeded";
        }
      }
      if (run.status == "Succeeded")
        model.instances_[run.instance_id].revision = deployment.revision;
    }
    if (status == "Failed" && deployment.error_information.is_null()) {
      deployment.error_information = {{"code", "HEALTH_CONSTRAINTS"},
                                      {"message", kHealthConstraintsMessage}};
    }
    group->last_attempted = deployment.id;
    if (status == "Succeeded") group->last_successful = deployment.id;
    if (std::none_of(model.revisions_.begin(), model.revisions_.end(),
                     [&](const json& known) { return SameRevision(known, deployment.revision); })) {
      model.revisions_.push_back(deployment.revision);
    }
  }
  return model;
}

// ---- Test hooks -------------------------------------------------------------------------------

std::expected<void, std::string> Model::InjectInstanceFailure(const json& request) {
  std::string instance_id = StringField(request, "instanceId");
  auto instance = instances_.find(instance_id);
  if (instance == instances_.end()) {
    return std::unexpected(
        fmt::format("instanceId '{}' is not in any deployment group", instance_id));
  }
  InjectedFailure failure;
  failure.event = request.value("lifecycleEvent", "ApplicationStart");
  if (!IsLifecycleEvent(failure.event)) {
    return std::unexpected(
        fmt::format("lifecycleEvent '{}' is not an in-place lifecycle event", failure.event));
  }
  failure.deployment_id = request.value("deploymentId", "");
  failure.remaining = request.value("times", 1);
  failure.message = request.value("message", DefaultScriptMessage(failure.event));
  if (failure.remaining < 1) return std::unexpected("times must be at least 1");
  instance->second.failures.push_back(std::move(failure));
  return {};
}

std::expected<void, std::string> Model::SetRevisionBehavior(const json& request) {
  json revision = request.value("revision", json());
  if (auto problem = RevisionProblem(revision)) return std::unexpected(*problem);

  RevisionBehavior behavior;
  behavior.fails_at = request.value("failsAt", "");
  if (!behavior.fails_at.empty() && !IsLifecycleEvent(behavior.fails_at)) {
    return std::unexpected(
        fmt::format("failsAt '{}' is not an in-place lifecycle event", behavior.fails_at));
  }
  behavior.message = request.value("message", DefaultScriptMessage(behavior.fails_at));
  behavior.broken_application_stop = request.value("brokenApplicationStop", false);
  behavior.install_path = request.value("installPath", behavior.install_path);
  behaviors_[revision.dump()] = behavior;

  if (request.value("register", true) &&
      std::none_of(revisions_.begin(), revisions_.end(),
                   [&](const json& known) { return SameRevision(known, revision); })) {
    revisions_.push_back(revision);
  }
  return {};
}

std::expected<void, std::string> Model::SetStalled(const json& request, bool stalled, Time now) {
  Advance(now);
  std::vector<Deployment*> affected;
  if (request.contains("deploymentId")) {
    std::string id = StringField(request, "deploymentId");
    for (Deployment& deployment : deployments_) {
      if (deployment.id == id) affected.push_back(&deployment);
    }
    if (affected.empty()) return std::unexpected(fmt::format("deployment '{}' not found", id));
    affected.front()->stalled = stalled;
  } else {
    DeploymentGroup* group = nullptr;
    for (DeploymentGroup& candidate : groups_) {
      if (candidate.application == StringField(request, "applicationName") &&
          candidate.name == StringField(request, "deploymentGroupName")) {
        group = &candidate;
      }
    }
    if (group == nullptr) {
      return std::unexpected("give deploymentId, or applicationName and deploymentGroupName");
    }
    group->stalled = stalled;
    for (Deployment& deployment : deployments_) {
      if (deployment.application == group->application && deployment.group == group->name) {
        affected.push_back(&deployment);
      }
    }
  }

  // Work resumes from now: a stalled event does not finish the moment it is released.
  if (!stalled) {
    for (Deployment* deployment : affected) {
      for (InstanceRun& run : deployment->instances) {
        if (run.status == "InProgress") run.event_started = now;
      }
      if (deployment->status == "Created") {
        deployment->queued_until = std::max(deployment->queued_until, now + timing_.queue);
      }
    }
  }
  return {};
}

// ---- Simulation -------------------------------------------------------------------------------

size_t Model::BatchSize(const Deployment& deployment) const {
  size_t count = deployment.instances.size();
  if (deployment.config_name == "CodeDeployDefault.AllAtOnce") return std::max<size_t>(1, count);
  if (deployment.config_name == "CodeDeployDefault.HalfAtATime") {
    return std::max<size_t>(1, count / 2);
  }
  return 1;
}

// The healthy instances the configuration keeps. For OneAtATime that is all but one, which is
// why a failure on the last instance still lets the deployment succeed (CodeDeploy API reference,
// MinimumHealthyHosts).
size_t Model::MinHealthy(const Deployment& deployment) const {
  size_t count = deployment.instances.size();
  if (deployment.config_name == "CodeDeployDefault.AllAtOnce") return 0;
  if (deployment.config_name == "CodeDeployDefault.HalfAtATime") return count - count / 2;
  return count == 0 ? 0 : count - 1;
}

void Model::Advance(Time now) {
  // Index loop: an automatic rollback appends a deployment, which this loop then advances too.
  for (size_t i = 0; i < deployments_.size(); ++i) AdvanceDeployment(deployments_[i], now);
}

void Model::AdvanceDeployment(Deployment& deployment, Time now) {
  bool group_stalled = false;
  for (const DeploymentGroup& group : groups_) {
    if (group.application == deployment.application && group.name == deployment.group) {
      group_stalled = group.stalled;
    }
  }

  while (deployment.IsActive()) {
    // Find the next transition that is due.
    enum class Kind { kStop, kStart, kEvent } kind = Kind::kStop;
    std::optional<Time> next;
    InstanceRun* due_run = nullptr;
    if (deployment.stop_at) next = deployment.stop_at;
    if (!deployment.stalled && !group_stalled) {
      if (deployment.status == "Created") {
        Time start = deployment.queued_until;
        if (!next || start < *next) {
          next = start;
          kind = Kind::kStart;
        }
      } else {
        for (InstanceRun& run : deployment.instances) {
          if (run.status != "InProgress") continue;
          Time end = run.event_started + timing_.lifecycle_event;
          if (!next || end < *next) {
            next = end;
            kind = Kind::kEvent;
            due_run = &run;
          }
        }
      }
    }
    if (!next || *next > now) return;

    switch (kind) {
      case Kind::kStop:
        CompleteStop(deployment, *next);
        break;
      case Kind::kStart:
        deployment.status = "InProgress";
        deployment.start_time = *next;
        StartNextBatch(deployment, *next);
        break;
      case Kind::kEvent:
        FinishEvent(deployment, *due_run, *next);
        break;
    }
  }
}

void Model::StartNextBatch(Deployment& deployment, Time at) {
  if (deployment.instances.empty()) {
    deployment.error_information = {
        {"code", "NO_INSTANCES"},
        {"message",
         "The deployment failed because no instances were found for your deployment "
         "group."}};
    Complete(deployment, "Failed", at);
    return;
  }
  size_t batch = BatchSize(deployment);
  for (size_t started = 0;
       started < batch && deployment.next_instance < deployment.instances.size(); ++started) {
    InstanceRun& run = deployment.instances[deployment.next_instance++];
    run.status = "InProgress";
    run.current = 0;
    StartEvent(deployment, run, at);
  }
}

void Model::StartEvent(Deployment& deployment, InstanceRun& run, Time at) {
  // ApplicationStop runs the script of the revision the instance already has, so an instance
  // that never had a successful deployment skips it.
  if (run.events[run.current].name == "ApplicationStop" &&
      instances_[run.instance_id].revision.is_null()) {
    LifecycleEventRun& skipped = run.events[run.current];
    skipped.status = "Skipped";
    skipped.start = at;
    skipped.end = at;
    ++run.current;
  }
  LifecycleEventRun& event = run.events[run.current];
  event.status = "InProgress";
  event.start = at;
  run.event_started = at;
  run.last_updated = at;
}

std::optional<std::string> Model::EventFailure(Deployment& deployment, InstanceRun& run,
                                               const LifecycleEventRun& event, json& out) {
  Instance& instance = instances_[run.instance_id];

  // A failure a test injected for this instance.
  for (auto it = instance.failures.begin(); it != instance.failures.end(); ++it) {
    if (it->event != event.name) continue;
    if (!it->deployment_id.empty() && it->deployment_id != deployment.id) continue;
    std::string message = it->message;
    out = ScriptFailure(event.name, message);
    if (--it->remaining == 0) instance.failures.erase(it);
    if (event.name == "Install")
      instance.leftover_file = BehaviorOf(deployment.revision).install_path;
    return message;
  }

  // ApplicationStop runs the previous revision's script, which may be broken.
  if (event.name == "ApplicationStop" && BehaviorOf(instance.revision).broken_application_stop) {
    std::string message = DefaultScriptMessage(event.name);
    out = ScriptFailure(event.name, message);
    if (!deployment.ignore_application_stop_failures) return message;
    out["message"] = message + " (ignored because ignoreApplicationStopFailures is true)";
    return std::nullopt;
  }

  // Files a failed Install left behind block the next Install unless it may overwrite or keep
  // them.
  if (event.name == "Install" && !instance.leftover_file.empty() &&
      deployment.file_exists_behavior == "DISALLOW") {
    std::string message = fmt::format(
        "The deployment failed because a specified file already exists at this location: {}",
        instance.leftover_file);
    out = json{
        {"errorCode", "UnknownError"}, {"scriptName", ""}, {"message", message}, {"logTail", ""}};
    return message;
  }

  // A revision that fails wherever it is deployed.
  RevisionBehavior behavior = BehaviorOf(deployment.revision);
  if (!behavior.fails_at.empty() && behavior.fails_at == event.name) {
    out = ScriptFailure(event.name, behavior.message);
    if (event.name == "Install") instance.leftover_file = behavior.install_path;
    return behavior.message;
  }
  return std::nullopt;
}

void Model::FinishEvent(Deployment& deployment, InstanceRun& run, Time at) {
  LifecycleEventRun& event = run.events[run.current];
  json diagnostics;
  std::optional<std::string> failure = EventFailure(deployment, run, event, diagnostics);
  event.end = at;
  run.last_updated = at;
  if (failure) {
    event.status = "Failed";
    event.diagnostics = diagnostics;
    FinishInstance(deployment, run, false, at);
    return;
  }

  event.status = "Succeeded";
  event.diagnostics = diagnostics.is_null() ? json{{"errorCode", "Success"},
                                                   {"scriptName", ""},
                                                   {"message", "Succeeded"},
                                                   {"logTail", ""}}
                                            : diagnostics;
  if (event.name == "Install") instances_[run.instance_id].leftover_file.clear();
  if (++run.current < run.events.size()) {
    StartEvent(deployment, run, at);
    return;
  }
  FinishInstance(deployment, run, true, at);
}

void Model::FinishInstance(Deployment& deployment, InstanceRun& run, bool succeeded, Time at) {
  run.status = succeeded ? "Succeeded" : "Failed";
  run.last_updated = at;
  for (size_t i = run.current + 1; i < run.events.size(); ++i) run.events[i].status = "Skipped";
  if (succeeded) instances_[run.instance_id].revision = deployment.revision;
  AfterInstanceEnded(deployment, at);
}

void Model::AfterInstanceEnded(Deployment& deployment, Time at) {
  size_t succeeded = 0;
  size_t failed = 0;
  for (const InstanceRun& run : deployment.instances) {
    if (run.status == "InProgress") return;  // the batch is still running
    if (run.status == "Succeeded") ++succeeded;
    if (run.status == "Failed") ++failed;
  }

  // Start the next batch only while taking it offline keeps enough healthy instances.
  size_t count = deployment.instances.size();
  size_t pending = count - deployment.next_instance;
  if (pending > 0) {
    size_t batch = std::min(BatchSize(deployment), pending);
    if (failed + batch <= count - MinHealthy(deployment)) {
      StartNextBatch(deployment, at);
      return;
    }
    for (size_t i = deployment.next_instance; i < count; ++i) {
      InstanceRun& skipped = deployment.instances[i];
      skipped.status = "Skipped";
      skipped.last_updated = at;
      for (LifecycleEventRun& event : skipped.events) event.status = "Skipped";
    }
    deployment.next_instance = count;
  }

  if (succeeded >= std::max<size_t>(1, MinHealthy(deployment))) {
    Complete(deployment, "Succeeded", at);
    return;
  }
  deployment.error_information = {{"code", "HEALTH_CONSTRAINTS"},
                                  {"message", kHealthConstraintsMessage}};
  Complete(deployment, "Failed", at);
}

void Model::Complete(Deployment& deployment, const std::string& status, Time at) {
  deployment.status = status;
  deployment.complete_time = at;
  for (DeploymentGroup& group : groups_) {
    if (group.application != deployment.application || group.name != deployment.group) continue;
    group.last_attempted = deployment.id;
    if (status == "Succeeded") group.last_successful = deployment.id;

    // CodeDeploy starts a rollback by itself when the configuration requests one on failure.
    const json& config =
        deployment.auto_rollback.is_null() ? group.auto_rollback : deployment.auto_rollback;
    json events = config.is_object() ? config.value("events", json::array()) : json::array();
    bool on_failure = config.is_object() && config.value("enabled", false) &&
                      std::find(events.begin(), events.end(), "DEPLOYMENT_FAILURE") != events.end();
    if (status == "Failed" && on_failure && deployment.creator != "codeDeployRollback") {
      StartAutomaticRollback(deployment, at);
    }
  }
}

void Model::CompleteStop(Deployment& deployment, Time at) {
  deployment.stop_at.reset();
  for (InstanceRun& run : deployment.instances) {
    if (run.status != "Pending" && run.status != "InProgress") continue;
    run.status = "Skipped";
    run.last_updated = at;
    for (LifecycleEventRun& event : run.events) {
      if (event.status == "Pending" || event.status == "InProgress") {
        event.status = "Skipped";
        event.end = at;
      }
    }
  }
  deployment.next_instance = deployment.instances.size();
  deployment.error_information = {{"code", "MANUAL_STOP"},
                                  {"message", "The deployment was stopped by request."}};
  Complete(deployment, "Stopped", at);
  if (deployment.stop_rolls_back) StartAutomaticRollback(deployment, at);
}

void Model::StartAutomaticRollback(Deployment& deployment, Time at) {
  DeploymentGroup* group = nullptr;
  for (DeploymentGroup& candidate : groups_) {
    if (candidate.application == deployment.application && candidate.name == deployment.group) {
      group = &candidate;
    }
  }
  const Deployment* good = nullptr;
  for (const Deployment& candidate : deployments_) {
    if (group != nullptr && candidate.id == group->last_successful) good = &candidate;
  }
  if (group == nullptr || good == nullptr) {
    deployment.rollback_info = {
        {"rollbackMessage",
         "Automatic rollback was not started because the deployment group has no earlier "
         "successful deployment to roll back to."}};
    return;
  }

  json revision = good->revision;
  Deployment& rollback = NewDeployment(*group, at);
  rollback.creator = "codeDeployRollback";
  rollback.revision = revision;
  rollback.config_name = deployment.config_name;
  rollback.file_exists_behavior = deployment.file_exists_behavior;
  rollback.ignore_application_stop_failures = deployment.ignore_application_stop_failures;
  rollback.auto_rollback = json{{"enabled", false}, {"events", json::array()}};
  rollback.rollback_info = {{"rollbackTriggeringDeploymentId", deployment.id}};
  deployment.rollback_info = {{"rollbackDeploymentId", rollback.id}};
}

// ---- Actions ----------------------------------------------------------------------------------

ApiResult Model::Call(std::string_view action, const json& input, Time now) {
  Advance(now);
  if (!input.is_object()) {
    return std::unexpected(
        ApiError{400, "SerializationException", "The body must be a JSON object"});
  }
  if (action == "GetDeployment") return GetDeployment(input);
  if (action == "BatchGetDeployments") return BatchGetDeployments(input);
  if (action == "ListDeployments") return ListDeployments(input);
  if (action == "GetDeploymentGroup") return GetDeploymentGroup(input);
  if (action == "CreateDeployment") return CreateDeployment(input, now);
  if (action == "StopDeployment") return StopDeployment(input, now);
  if (action == "ListDeploymentTargets") return ListDeploymentTargets(input);
  if (action == "BatchGetDeploymentTargets") return BatchGetDeploymentTargets(input);
  return Error("UnknownOperationException", fmt::format("Operation {} is not emulated", action));
}

std::expected<Deployment*, ApiError> Model::FindDeployment(const json& input) {
  std::string id = StringField(input, "deploymentId");
  if (id.empty()) {
    return Error("DeploymentIdRequiredException", "At least one deployment ID must be specified.");
  }
  if (!IsDeploymentId(id)) {
    return Error("InvalidDeploymentIdException",
                 fmt::format("Specified DeploymentId is not in the valid format: {}", id));
  }
  for (Deployment& deployment : deployments_) {
    if (deployment.id == id) return &deployment;
  }
  return Error("DeploymentDoesNotExistException",
               fmt::format("The deployment {} could not be found.", id));
}

std::expected<DeploymentGroup*, ApiError> Model::FindGroup(const json& input) {
  std::string application = StringField(input, "applicationName");
  std::string name = StringField(input, "deploymentGroupName");
  if (application.empty()) {
    return Error("ApplicationNameRequiredException", "The application name must be specified.");
  }
  if (!applications_.contains(application)) {
    return Error("ApplicationDoesNotExistException",
                 fmt::format("No application found for name: {}", application));
  }
  if (name.empty()) {
    return Error("DeploymentGroupNameRequiredException",
                 "The deployment group name must be specified.");
  }
  for (DeploymentGroup& group : groups_) {
    if (group.application == application && group.name == name) return &group;
  }
  return Error("DeploymentGroupDoesNotExistException",
               fmt::format("No Deployment Group found for name: {}", name));
}

ApiResult Model::GetDeployment(const json& input) {
  auto deployment = FindDeployment(input);
  if (!deployment) return std::unexpected(deployment.error());
  return json{{"deploymentInfo", DeploymentInfo(**deployment)}};
}

ApiResult Model::BatchGetDeployments(const json& input) {
  json ids = input.value("deploymentIds", json::array());
  if (!ids.is_array() || ids.empty()) {
    return Error("DeploymentIdRequiredException", "At least one deployment ID must be specified.");
  }
  if (ids.size() > kBatchLimit) {
    return Error("BatchLimitExceededException",
                 fmt::format("At most {} deployment IDs may be requested at once, got {}.",
                             kBatchLimit, ids.size()));
  }
  json infos = json::array();
  for (const json& id : ids) {
    auto deployment = FindDeployment(json{{"deploymentId", id}});
    if (deployment) {
      infos.push_back(DeploymentInfo(**deployment));
    } else if (deployment.error().type != "DeploymentDoesNotExistException") {
      return std::unexpected(deployment.error());
    }
  }
  return json{{"deploymentsInfo", infos}};
}

ApiResult Model::ListDeployments(const json& input) {
  std::string application = StringField(input, "applicationName");
  std::string group_name = StringField(input, "deploymentGroupName");
  if (!group_name.empty() && application.empty()) {
    return Error("ApplicationNameRequiredException",
                 "The application name must be given with the deployment group name.");
  }
  if (!application.empty() && group_name.empty()) {
    return Error("DeploymentGroupNameRequiredException",
                 "The deployment group name must be given with the application name.");
  }
  if (!application.empty()) {
    auto group = FindGroup(input);
    if (!group) return std::unexpected(group.error());
  }

  std::set<std::string> statuses;
  for (const json& status : input.value("includeOnlyStatuses", json::array())) {
    std::string text = status.is_string() ? status.get<std::string>() : "";
    if (!OneOf(kStatuses, text)) {
      return Error("InvalidDeploymentStatusException",
                   fmt::format("Deployment status '{}' is not valid.", status.dump()));
    }
    statuses.insert(text);
  }
  std::optional<Time> start;
  std::optional<Time> end;
  if (input.contains("createTimeRange")) {
    const json& range = input["createTimeRange"];
    if (range.contains("start")) start = FromEpochSeconds(range["start"]);
    if (range.contains("end")) end = FromEpochSeconds(range["end"]);
    if (start && end && *start > *end) {
      return Error("InvalidTimeRangeException", "The start time is after the end time.");
    }
  }

  // Newest first.
  std::vector<std::string> ids;
  for (auto it = deployments_.rbegin(); it != deployments_.rend(); ++it) {
    if (!application.empty() && (it->application != application || it->group != group_name)) {
      continue;
    }
    if (!statuses.empty() && !statuses.contains(it->status)) continue;
    if (start && it->create_time < *start) continue;
    if (end && it->create_time > *end) continue;
    ids.push_back(it->id);
  }

  // The token names the last deployment returned, so deployments created between pages do not
  // shift the next page.
  size_t offset = 0;
  std::string token = StringField(input, "nextToken");
  if (!token.empty()) {
    auto after =
        std::find(ids.begin(), ids.end(), token.starts_with("after:") ? token.substr(6) : "");
    if (after == ids.end()) {
      return Error("InvalidNextTokenException",
                   "The next token was specified in an invalid format.");
    }
    offset = static_cast<size_t>(after - ids.begin()) + 1;
  }
  json page = json::array();
  for (size_t i = offset; i < ids.size() && page.size() < list_page_size_; ++i) {
    page.push_back(ids[i]);
  }
  json output{{"deployments", page}};
  if (offset + page.size() < ids.size())
    output["nextToken"] = "after:" + page.back().get<std::string>();
  return output;
}

ApiResult Model::GetDeploymentGroup(const json& input) {
  auto found = FindGroup(input);
  if (!found) return std::unexpected(found.error());
  const DeploymentGroup& group = **found;

  json tags = json::array();
  json info{{"applicationName", group.application},
            {"deploymentGroupId", group.id},
            {"deploymentGroupName", group.name},
            {"deploymentConfigName", group.config_name},
            {"ec2TagFilters", tags},
            {"onPremisesInstanceTagFilters", json::array()},
            {"autoScalingGroups", json::array()},
            {"serviceRoleArn", group.service_role_arn},
            {"triggerConfigurations", json::array()},
            {"alarmConfiguration", group.alarm_configuration},
            {"deploymentStyle",
             {{"deploymentType", "IN_PLACE"}, {"deploymentOption", "WITHOUT_TRAFFIC_CONTROL"}}},
            {"outdatedInstancesStrategy", "UPDATE"},
            {"computePlatform", "Server"}};
  if (!group.auto_rollback.is_null()) info["autoRollbackConfiguration"] = group.auto_rollback;
  if (!group.last_successful.empty()) {
    info["lastSuccessfulDeployment"] = LastDeploymentInfo(group.last_successful);
  }
  if (!group.last_attempted.empty()) {
    info["lastAttemptedDeployment"] = LastDeploymentInfo(group.last_attempted);
    for (const Deployment& deployment : deployments_) {
      if (deployment.id == group.last_attempted) info["targetRevision"] = deployment.revision;
    }
  }
  return json{{"deploymentGroupInfo", info}};
}

ApiResult Model::CreateDeployment(const json& input, Time now) {
  auto found = FindGroup(input);
  if (!found) return std::unexpected(found.error());
  DeploymentGroup& group = **found;

  // Step 1: the revision must be well formed and known.
  if (!input.contains("revision") || input["revision"].is_null()) {
    return Error("RevisionRequiredException", "The revision must be specified.");
  }
  const json& revision = input["revision"];
  if (auto problem = RevisionProblem(revision)) {
    return Error("InvalidRevisionException", *problem);
  }
  std::string type = StringField(revision, "revisionType");
  bool registered = std::any_of(revisions_.begin(), revisions_.end(),
                                [&](const json& known) { return SameRevision(known, revision); });
  if ((type == "S3" || type == "GitHub") && !registered) {
    return Error("RevisionDoesNotExistException",
                 fmt::format("No application revision found for revision {}", revision.dump()));
  }

  // Step 2: the options.
  std::string config = StringField(input, "deploymentConfigName");
  if (!config.empty() && !OneOf(kConfigs, config)) {
    return Error("DeploymentConfigDoesNotExistException",
                 fmt::format("No deployment configuration found for name: {}", config));
  }
  std::string file_exists = StringField(input, "fileExistsBehavior");
  if (input.contains("fileExistsBehavior") && !OneOf(kFileExistsBehaviors, file_exists)) {
    return Error("InvalidFileExistsBehaviorException",
                 fmt::format("fileExistsBehavior '{}' is not one of DISALLOW, OVERWRITE, RETAIN",
                             input["fileExistsBehavior"].dump()));
  }
  json auto_rollback = input.value("autoRollbackConfiguration", json());
  if (!auto_rollback.is_null()) {
    for (const json& event : auto_rollback.value("events", json::array())) {
      if (!event.is_string() || !OneOf(kRollbackEvents, event.get<std::string>())) {
        return Error("InvalidAutoRollbackConfigException",
                     fmt::format("Auto rollback event {} is not valid.", event.dump()));
      }
    }
  }

  // Step 3: one deployment at a time per group.
  for (const Deployment& deployment : deployments_) {
    if (deployment.application == group.application && deployment.group == group.name &&
        deployment.IsActive()) {
      return Error("DeploymentLimitExceededException",
                   fmt::format("The Deployment Group '{}' already has an active Deployment '{}'",
                               group.name, deployment.id));
    }
  }

  if (!registered) revisions_.push_back(revision);
  Deployment& deployment = NewDeployment(group, now);
  deployment.revision = revision;
  if (!config.empty()) deployment.config_name = config;
  deployment.description = StringField(input, "description");
  if (!file_exists.empty()) deployment.file_exists_behavior = file_exists;
  deployment.ignore_application_stop_failures = input.value("ignoreApplicationStopFailures", false);
  deployment.update_outdated_instances_only = input.value("updateOutdatedInstancesOnly", false);
  deployment.auto_rollback = auto_rollback;
  return json{{"deploymentId", deployment.id}};
}

ApiResult Model::StopDeployment(const json& input, Time now) {
  auto found = FindDeployment(input);
  if (!found) return std::unexpected(found.error());
  Deployment& deployment = **found;
  if (!deployment.IsActive()) {
    return Error("DeploymentAlreadyCompletedException",
                 fmt::format("Deployment {} has already completed with status {}.", deployment.id,
                             deployment.status));
  }
  if (deployment.stop_at) {
    return json{{"status", "Pending"},
                {"statusMessage", fmt::format("A stop of {} is already pending.", deployment.id)}};
  }

  // Without autoRollbackEnabled the configuration decides, through DEPLOYMENT_STOP_ON_REQUEST.
  bool rolls_back = false;
  if (input.contains("autoRollbackEnabled") && input["autoRollbackEnabled"].is_boolean()) {
    rolls_back = input["autoRollbackEnabled"].get<bool>();
  } else {
    json config = deployment.auto_rollback;
    for (const DeploymentGroup& group : groups_) {
      if (config.is_null() && group.application == deployment.application &&
          group.name == deployment.group) {
        config = group.auto_rollback;
      }
    }
    json events = config.is_object() ? config.value("events", json::array()) : json::array();
    rolls_back =
        config.is_object() && config.value("enabled", false) &&
        std::find(events.begin(), events.end(), "DEPLOYMENT_STOP_ON_REQUEST") != events.end();
  }
  if (deployment.creator == "codeDeployRollback") rolls_back = false;

  deployment.stop_at = now + timing_.queue;
  deployment.stop_rolls_back = rolls_back;
  return json{
      {"status", "Pending"},
      {"statusMessage", rolls_back ? "Stopping pending. The updated instances will be rolled back."
                                   : "Stopping pending."}};
}

ApiResult Model::ListDeploymentTargets(const json& input) {
  auto found = FindDeployment(input);
  if (!found) return std::unexpected(found.error());
  const Deployment& deployment = **found;
  if (deployment.status == "Created") {
    return Error("DeploymentNotStartedException", "The specified deployment has not started.");
  }
  json wanted = input.value("targetFilters", json::object()).value("TargetStatus", json::array());
  json ids = json::array();
  for (const InstanceRun& run : deployment.instances) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), run.status) == wanted.end()) {
      continue;
    }
    ids.push_back(run.instance_id);
  }
  return json{{"targetIds", ids}};
}

ApiResult Model::BatchGetDeploymentTargets(const json& input) {
  auto found = FindDeployment(input);
  if (!found) return std::unexpected(found.error());
  const Deployment& deployment = **found;
  if (deployment.status == "Created") {
    return Error("DeploymentNotStartedException", "The specified deployment has not started.");
  }
  json ids = input.value("targetIds", json::array());
  if (ids.empty()) {
    return Error("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.");
  }
  if (ids.size() > kBatchLimit) {
    return Error("DeploymentTargetListSizeExceededException",
                 fmt::format("At most {} target IDs may be requested at once.", kBatchLimit));
  }
  json targets = json::array();
  for (const json& id : ids) {
    auto run =
        std::find_if(deployment.instances.begin(), deployment.instances.end(),
                     [&](const InstanceRun& candidate) { return candidate.instance_id == id; });
    if (run == deployment.instances.end()) {
      return Error(
          "DeploymentTargetDoesNotExistException",
          fmt::format("The target {} is not part of deployment {}.", id.dump(), deployment.id));
    }
    targets.push_back(TargetInfo(deployment, *run));
  }
  return json{{"deploymentTargets", targets}};
}

// ---- Helpers ----------------------------------------------------------------------------------

std::string Model::NewDeploymentId() {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  while (true) {
    std::string id = "d-";
    for (int i = 0; i < 9; ++i) id.push_back(kAlphabet[random_() % kAlphabet.size()]);
    if (std::none_of(deployments_.begin(), deployments_.end(),
                     [&](const Deployment& deployment) { return deployment.id == id; })) {
      return id;
    }
  }
}

Deployment& Model::NewDeployment(const DeploymentGroup& group, Time now) {
  Deployment deployment;
  deployment.id = NewDeploymentId();
  deployment.application = group.application;
  deployment.group = group.name;
  deployment.config_name = group.config_name;
  deployment.create_time = now;
  deployment.queued_until = now + timing_.queue;
  for (const Deployment& earlier : deployments_) {
    if (earlier.id == group.last_successful) deployment.previous_revision = earlier.revision;
  }
  for (const std::string& instance_id : group.instance_ids) {
    InstanceRun run;
    run.instance_id = instance_id;
    run.last_updated = now;
    for (std::string_view name : kLifecycleEvents) {
      LifecycleEventRun event;
      event.name = std::string(name);
      run.events.push_back(std::move(event));
    }
    deployment.instances.push_back(std::move(run));
  }
  deployments_.push_back(std::move(deployment));
  return deployments_.back();
}

RevisionBehavior Model::BehaviorOf(const json& revision) const {
  if (revision.is_null()) return RevisionBehavior{};
  auto exact = behaviors_.find(revision.dump());
  if (exact != behaviors_.end()) return exact->second;
  for (const auto& [key, behavior] : behaviors_) {
    if (SameRevision(json::parse(key), revision)) return behavior;
  }
  return RevisionBehavior{};
}

json Model::LastDeploymentInfo(const std::string& id) const {
  for (const Deployment& deployment : deployments_) {
    if (deployment.id != id) continue;
    json info{{"deploymentId", id},
              {"status", deployment.status},
              {"createTime", EpochSeconds(deployment.create_time)}};
    if (deployment.complete_time) info["endTime"] = EpochSeconds(*deployment.complete_time);
    return info;
  }
  return json();
}

json Model::DeploymentInfo(const Deployment& deployment) const {
  json overview{{"Pending", 0}, {"InProgress", 0}, {"Succeeded", 0},
                {"Failed", 0},  {"Skipped", 0},    {"Ready", 0}};
  for (const InstanceRun& run : deployment.instances) {
    overview[run.status] = overview.value(run.status, 0) + 1;
  }

  json info{{"applicationName", deployment.application},
            {"deploymentGroupName", deployment.group},
            {"deploymentConfigName", deployment.config_name},
            {"deploymentId", deployment.id},
            {"revision", deployment.revision},
            {"status", deployment.status},
            {"createTime", EpochSeconds(deployment.create_time)},
            {"deploymentOverview", overview},
            {"creator", deployment.creator},
            {"ignoreApplicationStopFailures", deployment.ignore_application_stop_failures},
            {"updateOutdatedInstancesOnly", deployment.update_outdated_instances_only},
            {"deploymentStyle",
             {{"deploymentType", "IN_PLACE"}, {"deploymentOption", "WITHOUT_TRAFFIC_CONTROL"}}},
            {"instanceTerminationWaitTimeStarted", false},
            {"fileExistsBehavior", deployment.file_exists_behavior},
            {"deploymentStatusMessages", json::array()},
            {"computePlatform", "Server"}};
  if (!deployment.previous_revision.is_null()) {
    info["previousRevision"] = deployment.previous_revision;
  }
  if (!deployment.description.empty()) info["description"] = deployment.description;
  if (deployment.start_time) info["startTime"] = EpochSeconds(*deployment.start_time);
  if (deployment.complete_time) info["completeTime"] = EpochSeconds(*deployment.complete_time);
  if (!deployment.error_information.is_null()) {
    info["errorInformation"] = deployment.error_information;
  }
  if (!deployment.rollback_info.is_null()) info["rollbackInfo"] = deployment.rollback_info;

  json auto_rollback = deployment.auto_rollback;
  for (const DeploymentGroup& group : groups_) {
    if (auto_rollback.is_null() && group.application == deployment.application &&
        group.name == deployment.group) {
      auto_rollback = group.auto_rollback;
    }
  }
  if (!auto_rollback.is_null()) info["autoRollbackConfiguration"] = auto_rollback;
  return info;
}

json Model::TargetInfo(const Deployment& deployment, const InstanceRun& run) const {
  json events = json::array();
  for (const LifecycleEventRun& event : run.events) {
    json entry{{"lifecycleEventName", event.name}, {"status", event.status}};
    if (event.start) entry["startTime"] = EpochSeconds(*event.start);
    if (event.end) entry["endTime"] = EpochSeconds(*event.end);
    if (!event.diagnostics.is_null()) entry["diagnostics"] = event.diagnostics;
    events.push_back(std::move(entry));
  }
  return json{{"deploymentTargetType", "InstanceTarget"},
              {"instanceTarget",
               {{"deploymentId", deployment.id},
                {"targetId", run.instance_id},
                {"targetArn",
                 fmt::format("arn:aws:ec2:{}:{}:instance/{}", region_, account_, run.instance_id)},
                {"status", run.status},
                {"lastUpdatedAt", EpochSeconds(run.last_updated)},
                {"lifecycleEvents", events}}}};
}

json Model::Dump(Time now) {
  Advance(now);
  json deployments = json::array();
  for (const Deployment& deployment : deployments_) {
    json info = DeploymentInfo(deployment);
    json targets = json::array();
    for (const InstanceRun& run : deployment.instances) {
      targets.push_back(TargetInfo(deployment, run)["instanceTarget"]);
    }
    info["targets"] = targets;
    info["stalled"] = deployment.stalled;
    deployments.push_back(std::move(info));
  }
  json instances = json::object();
  for (const auto& [id, instance] : instances_) {
    instances[id] = {{"revision", instance.revision},
                     {"leftoverFile", instance.leftover_file},
                     {"pendingFailures", instance.failures.size()}};
  }
  return json{{"deployments", deployments}, {"instances", instances}};
}

}  // namespace backout::emulators::codedeploy
