#include "providers/kubernetes/readiness.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "providers/kubernetes/rollout_rules.h"

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 7> kFatalReasons = {
    "CrashLoopBackOff", "ImagePullBackOff",     "ErrImagePull",      "CreateContainerConfigError",
    "InvalidImageName", "CreateContainerError", "RunContainerError",
};

std::string StringAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_string()) return "";
  return object.at(path).get<std::string>();
}

std::optional<core::Time> TimeAt(const json& object, const char* pointer) {
  std::string text = StringAt(object, pointer);
  if (text.empty()) return std::nullopt;
  auto parsed = core::ParseTime(text);
  if (!parsed) return std::nullopt;
  return *parsed;
}

// Kubernetes stores times in whole seconds, so a time in the same second as `since` cannot be
// placed after it. Only a later second counts as after.
bool After(core::Time stored, core::Time since) {
  return stored >= std::chrono::floor<std::chrono::seconds>(since) + std::chrono::seconds(1);
}

std::string PodName(const json& pod) { return StringAt(pod, "/metadata/name"); }

bool OwnedBy(const json& object, const std::string& uid) {
  if (!object.contains("/metadata/ownerReferences"_json_pointer)) return false;
  for (const json& owner : object.at("/metadata/ownerReferences"_json_pointer)) {
    if (owner.value("controller", false) && owner.value("uid", "") == uid) return true;
  }
  return false;
}

// The pods of the ReplicaSet whose template matches the Deployment's.
std::vector<const json*> NewPods(const ClusterView& view) {
  std::vector<const json*> pods;
  std::optional<size_t> index = FindNewReplicaSet(view.deployment, view.replica_sets);
  if (!index) return pods;
  std::string uid = StringAt(view.replica_sets[*index], "/metadata/uid");
  for (const json& pod : view.pods) {
    if (OwnedBy(pod, uid)) pods.push_back(&pod);
  }
  return pods;
}

std::vector<const json*> ContainerStatuses(const json& pod) {
  std::vector<const json*> statuses;
  for (const char* list : {"/status/initContainerStatuses", "/status/containerStatuses"}) {
    json::json_pointer path(list);
    if (!pod.contains(path)) continue;
    for (const json& status : pod.at(path)) statuses.push_back(&status);
  }
  return statuses;
}

// The first new pod whose container waits for a fatal reason.
std::optional<ReadinessReport> FatalPod(const std::vector<const json*>& pods) {
  for (const json* pod : pods) {
    for (const json* status : ContainerStatuses(*pod)) {
      std::string reason = StringAt(*status, "/state/waiting/reason");
      if (!IsFatalWaitingReason(reason)) continue;
      std::string message = StringAt(*status, "/state/waiting/message");
      ReadinessReport report;
      report.verdict = Verdict::kFailed;
      report.pod = PodName(*pod);
      report.reason = reason;
      report.message =
          fmt::format("pod {} container {} is in {}{}{}", report.pod, status->value("name", ""),
                      reason, message.empty() ? "" : ": ", message);
      return report;
    }
  }
  return std::nullopt;
}

std::string ExitDetail(const json& status) {
  if (!status.contains("/lastState/terminated/exitCode"_json_pointer)) return "";
  return fmt::format(" (last exit code {})",
                     status.at("/lastState/terminated/exitCode"_json_pointer).get<int64_t>());
}

ReadinessReport Failed(std::string reason, std::string message, std::string kubectl_status) {
  ReadinessReport report;
  report.verdict = Verdict::kFailed;
  report.reason = std::move(reason);
  report.message = std::move(message);
  report.kubectl_status = std::move(kubectl_status);
  return report;
}

std::string FormatSeconds(std::chrono::milliseconds duration) {
  return fmt::format("{:.1f}s", static_cast<double>(duration.count()) / 1000.0);
}

}  // namespace

bool IsFatalWaitingReason(std::string_view reason) {
  return std::find(kFatalReasons.begin(), kFatalReasons.end(), reason) != kFatalReasons.end();
}

ReadinessTracker::ReadinessTracker(ReadinessRules rules, std::optional<core::Time> since,
                                   std::optional<json> expected_template)
    : rules_(rules), since_(since), expected_template_(std::move(expected_template)) {}

ReadinessReport ReadinessTracker::Observe(const ClusterView& view, core::Time now) {
  const json& d = view.deployment;
  std::string name = StringAt(d, "/metadata/name");

  // Step 1: the Deployment must still carry the rollback's template.
  if (expected_template_ &&
      !EqualIgnoreHash(d.at("/spec/template"_json_pointer), *expected_template_)) {
    return Failed("TemplateChanged",
                  fmt::format("deployment \"{}\" no longer runs the rollback's template: it now "
                              "runs {}, so something changed it after the rollback",
                              name, VersionOf(d.at("/spec/template"_json_pointer))),
                  "");
  }

  // Step 2: kubectl's rules, where a deadline condition from before the rollback is stale.
  bool stale_deadline = false;
  json progressing = FindCondition(d, "Progressing");
  if (since_ && progressing.is_object() &&
      progressing.value("reason", "") == "ProgressDeadlineExceeded") {
    auto updated = TimeAt(progressing, "/lastUpdateTime");
    stale_deadline = !updated || !After(*updated, *since_);
  }
  RolloutStatus status = DeploymentRolloutStatus(d, stale_deadline);
  if (status.state == RolloutStatus::State::kFailed) {
    int64_t deadline = d.value("/spec/progressDeadlineSeconds"_json_pointer, int64_t{0});
    return Failed("ProgressDeadlineExceeded",
                  fmt::format("{}: the server's limit (progressDeadlineSeconds={}) fired: {}",
                              status.message, deadline, progressing.value("message", "")),
                  status.message);
  }

  // Step 3: new pods that cannot start, or restart too often, fail at once.
  std::vector<const json*> pods = NewPods(view);
  if (auto fatal = FatalPod(pods)) {
    fatal->kubectl_status = status.message;
    return *fatal;
  }
  for (const json* pod : pods) {
    auto created = TimeAt(*pod, "/metadata/creationTimestamp");
    bool new_since_rollback =
        since_ && created && *created >= std::chrono::floor<std::chrono::seconds>(*since_);
    for (const json* container : ContainerStatuses(*pod)) {
      std::string key = PodName(*pod) + "/" + container->value("name", "");
      int64_t restarts = container->value("restartCount", int64_t{0});
      auto [it, inserted] = baseline_.emplace(key, new_since_rollback ? 0 : restarts);
      int64_t counted = restarts - it->second;
      if (counted >= rules_.restart_limit) {
        ReadinessReport report =
            Failed("Restarted",
                   fmt::format("pod {} container {} restarted {} times since the rollback{}",
                               PodName(*pod), container->value("name", ""), counted,
                               ExitDetail(*container)),
                   status.message);
        report.pod = PodName(*pod);
        return report;
      }
      if (done_since_) {
        auto soak = soak_start_.find(key);
        if (soak != soak_start_.end() && restarts > soak->second) {
          ReadinessReport report =
              Failed("Restarted",
                     fmt::format("pod {} container {} restarted during the soak{}", PodName(*pod),
                                 container->value("name", ""), ExitDetail(*container)),
                     status.message);
          report.pod = PodName(*pod);
          return report;
        }
      }
    }
  }

  // Step 4: once kubectl would call it done, soak.
  ReadinessReport report;
  report.kubectl_status = status.message;
  if (status.state != RolloutStatus::State::kDone) {
    done_since_.reset();
    soak_start_.clear();
    report.message = status.message;
    return report;
  }
  if (!done_since_) {
    done_since_ = now;
    for (const json* pod : pods) {
      for (const json* container : ContainerStatuses(*pod)) {
        soak_start_[PodName(*pod) + "/" + container->value("name", "")] =
            container->value("restartCount", int64_t{0});
      }
    }
  }
  auto soaked = std::chrono::duration_cast<std::chrono::milliseconds>(now - *done_since_);
  if (soaked < rules_.soak) {
    report.message = fmt::format("{}; soaking: {} of {} without a restart", status.message,
                                 FormatSeconds(soaked), FormatSeconds(rules_.soak));
    return report;
  }
  report.verdict = Verdict::kReady;
  report.message = fmt::format("{}, and {} pods ran {} without a restart", status.message,
                               pods.size(), FormatSeconds(rules_.soak));
  return report;
}

ReadinessReport EvaluateOnce(const ClusterView& view, const ReadinessRules& rules, core::Time now) {
  RolloutStatus status = DeploymentRolloutStatus(view.deployment);
  if (status.state == RolloutStatus::State::kFailed) {
    return Failed("ProgressDeadlineExceeded", status.message, status.message);
  }
  std::vector<const json*> pods = NewPods(view);
  if (auto fatal = FatalPod(pods)) {
    fatal->kubectl_status = status.message;
    return *fatal;
  }
  ReadinessReport report;
  report.kubectl_status = status.message;
  if (status.state != RolloutStatus::State::kDone) {
    report.message = status.message;
    return report;
  }

  // The soak, from the pods' timestamps: Ready and every container running since `now - soak`.
  core::Time soak_start = now - std::chrono::duration_cast<core::Duration>(rules.soak);
  for (const json* pod : pods) {
    std::optional<core::Time> ready_since;
    if (pod->contains("/status/conditions"_json_pointer)) {
      for (const json& condition : pod->at("/status/conditions"_json_pointer)) {
        if (condition.value("type", "") == "Ready" && condition.value("status", "") == "True") {
          ready_since = TimeAt(condition, "/lastTransitionTime");
        }
      }
    }
    std::optional<core::Time> latest_start = ready_since;
    for (const json* container : ContainerStatuses(*pod)) {
      auto started = TimeAt(*container, "/state/running/startedAt");
      if (!started) {
        latest_start = now;
        break;
      }
      if (!latest_start || *started > *latest_start) latest_start = started;
    }
    if (!ready_since || !latest_start || *latest_start > soak_start) {
      report.message = fmt::format("{}; pod {} has not run {} without a restart yet",
                                   status.message, PodName(*pod), FormatSeconds(rules.soak));
      return report;
    }
  }
  report.verdict = Verdict::kReady;
  report.message = fmt::format("{}, and {} pods have run {} without a restart", status.message,
                               pods.size(), FormatSeconds(rules.soak));
  return report;
}

}  // namespace backout::providers::kubernetes
