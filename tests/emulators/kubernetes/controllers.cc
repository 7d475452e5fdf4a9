// The controllers of the emulated cluster. The Deployment controller follows the structure of
// Kubernetes' own (pkg/controller/deployment: sync.go, rolling.go, recreate.go, progress.go and
// util/deployment_util.go): one pass per Step either scales the new ReplicaSet up or the old ones
// down, then recomputes the status and the Progressing and Available conditions.
//
// NOTE: proportional scaling (a replica count change in the middle of a rollout), minReadySeconds
// and pod termination grace periods are not emulated: pods are deleted at once.

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "cluster.h"

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kRevisionHistory = "deployment.kubernetes.io/revision-history";
constexpr const char* kDesiredReplicas = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr const char* kRollbackTo = "deprecated.deployment.rollback.to";
constexpr const char* kHashLabel = "pod-template-hash";
// Kubernetes trims revision-history to this many characters (maxRevHistoryLengthInChars).
constexpr size_t kMaxRevisionHistoryChars = 2000;
constexpr int64_t kNoProgressDeadline = 2147483647;

// Condition reasons of the Deployment controller.
constexpr const char* kNewRSCreated = "NewReplicaSetCreated";
constexpr const char* kFoundNewRS = "FoundNewReplicaSet";
constexpr const char* kReplicaSetUpdated = "ReplicaSetUpdated";
constexpr const char* kNewRSAvailable = "NewReplicaSetAvailable";
constexpr const char* kTimedOut = "ProgressDeadlineExceeded";
constexpr const char* kPaused = "DeploymentPaused";
constexpr const char* kResumed = "DeploymentResumed";

int64_t IntAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_number_integer()) return 0;
  return object.at(path).get<int64_t>();
}

std::string Annotation(const json& object, const char* key) {
  const json& metadata = object["metadata"];
  if (!metadata.contains("annotations") || !metadata["annotations"].contains(key)) return "";
  return metadata["annotations"][key].get<std::string>();
}

// The revision annotation as a number: 0 when missing, nullopt when not a number.
std::optional<int64_t> Revision(const json& rs) {
  std::string text = Annotation(rs, kRevision);
  if (text.empty()) return 0;
  try {
    size_t used = 0;
    int64_t value = std::stoll(text, &used);
    if (used != text.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int64_t ResolveIntOrPercent(const json& value, int64_t total, bool round_up) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_string()) return 0;
  std::string text = value.get<std::string>();
  if (text.empty() || text.back() != '%') return std::atoll(text.c_str());
  double percent = std::atof(text.substr(0, text.size() - 1).c_str());
  double scaled = percent * static_cast<double>(total) / 100.0;
  return static_cast<int64_t>(round_up ? std::ceil(scaled) : std::floor(scaled));
}

bool IsRolling(const json& d) {
  return d["spec"]["strategy"].value("type", "RollingUpdate") == "RollingUpdate";
}

// maxSurge and maxUnavailable as numbers; both zero is not allowed, so maxUnavailable becomes 1.
std::pair<int64_t, int64_t> ResolveFenceposts(const json& d) {
  int64_t replicas = IntAt(d, "/spec/replicas");
  const json& rolling = d["spec"]["strategy"].value("rollingUpdate", json::object());
  int64_t surge = ResolveIntOrPercent(rolling.value("maxSurge", json("25%")), replicas, true);
  int64_t unavailable =
      ResolveIntOrPercent(rolling.value("maxUnavailable", json("25%")), replicas, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

int64_t MaxSurge(const json& d) { return IsRolling(d) ? ResolveFenceposts(d).first : 0; }

int64_t MaxUnavailable(const json& d) {
  int64_t replicas = IntAt(d, "/spec/replicas");
  if (!IsRolling(d) || replicas == 0) return 0;
  return std::min(ResolveFenceposts(d).second, replicas);
}

bool HasProgressDeadline(const json& d) {
  const json& spec = d["spec"];
  return spec.contains("progressDeadlineSeconds") &&
         spec["progressDeadlineSeconds"].is_number_integer() &&
         spec["progressDeadlineSeconds"].get<int64_t>() != kNoProgressDeadline;
}

json* FindCondition(json& status, const std::string& type) {
  if (!status.contains("conditions")) return nullptr;
  for (json& condition : status["conditions"]) {
    if (condition.value("type", "") == type) return &condition;
  }
  return nullptr;
}

void RemoveCondition(json& status, const std::string& type) {
  if (!status.contains("conditions")) return;
  json kept = json::array();
  for (const json& condition : status["conditions"]) {
    if (condition.value("type", "") != type) kept.push_back(condition);
  }
  status["conditions"] = kept;
}

json NewCondition(const std::string& type, const std::string& status, const std::string& reason,
                  const std::string& message, SystemClock::time_point now) {
  return json{{"type", type},
              {"status", status},
              {"lastUpdateTime", FormatTimestamp(now)},
              {"lastTransitionTime", FormatTimestamp(now)},
              {"reason", reason},
              {"message", message}};
}

// SetDeploymentCondition: a condition with the same status and reason is kept as it is, and a
// changed reason with the same status keeps the old transition time.
void SetCondition(json& status, json condition) {
  json* current = FindCondition(status, condition["type"]);
  if (current != nullptr && (*current)["status"] == condition["status"] &&
      (*current)["reason"] == condition["reason"]) {
    return;
  }
  if (current != nullptr && (*current)["status"] == condition["status"]) {
    condition["lastTransitionTime"] = (*current)["lastTransitionTime"];
  }
  RemoveCondition(status, condition["type"]);
  status["conditions"].push_back(std::move(condition));
}

// Sets `count` under `field` the way the API's encoder writes an omitempty integer.
void SetCount(json& status, const char* field, int64_t count) {
  if (count == 0) {
    status.erase(field);
  } else {
    status[field] = count;
  }
}

bool CreatedBefore(const json& a, const json& b) {
  std::string time_a = a["metadata"].value("creationTimestamp", "");
  std::string time_b = b["metadata"].value("creationTimestamp", "");
  if (time_a != time_b) return time_a < time_b;
  return a["metadata"].value("name", "") < b["metadata"].value("name", "");
}

bool IsControlledBy(const json& object, const std::string& owner_uid) {
  for (const json& owner : object["metadata"].value("ownerReferences", json::array())) {
    if (owner.value("controller", false) && owner.value("uid", "") == owner_uid) return true;
  }
  return false;
}

bool PodReady(const json& pod) {
  for (const json& condition : pod["status"].value("conditions", json::array())) {
    if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
  }
  return false;
}

std::string SafeSuffix(uint64_t n) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string suffix;
  for (int i = 0; i < 5; ++i) {
    suffix += kAlphabet[n % kAlphabet.size()];
    n /= kAlphabet.size();
  }
  return suffix;
}

}  // namespace

// ---- Kubelet ---------------------------------------------------------------------------------

void Cluster::RunKubeletLocked(SystemClock::time_point now) {
  std::vector<std::string> keys;
  for (const auto& [key, pod] : StoreOf(Resource::kPods)) keys.push_back(key);

  for (const std::string& key : keys) {
    json pod = StoreOf(Resource::kPods)[key];
    std::string uid = pod["metadata"].value("uid", "");
    auto created_it = pod_created_.find(uid);
    if (created_it == pod_created_.end()) {
      created_it = pod_created_.emplace(uid, now).first;
    }
    SystemClock::time_point created = created_it->second;
    std::string created_text = pod["metadata"].value("creationTimestamp", FormatTimestamp(now));

    bool all_ready = true;
    bool any_running = false;
    json statuses = json::array();
    int index = 0;
    for (const json& container : pod["spec"].value("containers", json::array())) {
      std::string image = container.value("image", "");
      PodBehaviour behaviour;
      if (auto it = behaviours_.find(image); it != behaviours_.end()) behaviour = it->second;
      auto delay = behaviour.start_delay.value_or(options_.pod_start_delay);
      auto started = created + delay;
      json status{{"name", container.value("name", "")},
                  {"image", image},
                  {"imageID", ""},
                  {"ready", false},
                  {"restartCount", 0},
                  {"started", false},
                  {"lastState", json::object()}};
      if (now < started) {
        status["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
        all_ready = false;
        statuses.push_back(status);
        continue;
      }
      int64_t periods = std::chrono::duration_cast<std::chrono::milliseconds>(now - started) /
                        options_.crash_interval;
      std::string container_id = fmt::format("containerd://{}{:02}", uid, index++);
      switch (behaviour.fault) {
        case PodFault::kNone:
          status["ready"] = true;
          status["started"] = true;
          status["imageID"] =
              fmt::format("{}@sha256:{:064x}", image, std::hash<std::string>{}(image));
          status["containerID"] = container_id;
          status["state"] = {{"running", {{"startedAt", FormatTimestamp(started)}}}};
          any_running = true;
          break;
        case PodFault::kCrashLoop:
          status["restartCount"] = 1 + periods;
          status["containerID"] = container_id;
          status["state"] = {
              {"waiting",
               {{"reason", "CrashLoopBackOff"},
                {"message",
                 fmt::format("back-off 10s restarting failed container={} pod={}_{}({})",
                             container.value("name", ""), pod["metadata"].value("name", ""),
                             pod["metadata"].value("namespace", ""), uid)}}}};
          status["lastState"] = {{"terminated",
                                  {{"exitCode", 1},
                                   {"reason", "Error"},
                                   {"startedAt", FormatTimestamp(started)},
                                   {"finishedAt", FormatTimestamp(started)},
                                   {"containerID", container_id}}}};
          any_running = true;
          all_ready = false;
          break;
        case PodFault::kImagePull:
          status["state"] = {
              {"waiting",
               periods % 2 == 0
                   ? json{{"reason", "ErrImagePull"},
                          {"message",
                           fmt::format("rpc error: code = NotFound desc = failed to pull and "
                                       "unpack image \"{}\": not found",
                                       image)}}
                   : json{{"reason", "ImagePullBackOff"},
                          {"message", fmt::format("Back-off pulling image \"{}\"", image)}}}};
          all_ready = false;
          break;
        case PodFault::kConfigError:
          status["state"] = {{"waiting",
                              {{"reason", "CreateContainerConfigError"},
                               {"message", "configmap \"app-config\" not found"}}}};
          all_ready = false;
          break;
      }
      statuses.push_back(status);
    }

    std::string ready = all_ready ? "True" : "False";
    std::string ready_since = created_text;
    if (all_ready) {
      SystemClock::time_point latest = created;
      for (const json& container : pod["spec"].value("containers", json::array())) {
        PodBehaviour behaviour;
        if (auto it = behaviours_.find(container.value("image", "")); it != behaviours_.end()) {
          behaviour = it->second;
        }
        latest =
            std::max(latest, created + behaviour.start_delay.value_or(options_.pod_start_delay));
      }
      ready_since = FormatTimestamp(latest);
    }
    json condition_ready{{"type", "Ready"},
                         {"status", ready},
                         {"lastProbeTime", nullptr},
                         {"lastTransitionTime", ready_since}};
    json containers_ready = condition_ready;
    containers_ready["type"] = "ContainersReady";
    if (!all_ready) {
      condition_ready["reason"] = "ContainersNotReady";
      containers_ready["reason"] = "ContainersNotReady";
    }
    json status{{"phase", any_running ? "Running" : "Pending"},
                {"conditions",
                 {{{"type", "Initialized"},
                   {"status", "True"},
                   {"lastProbeTime", nullptr},
                   {"lastTransitionTime", created_text}},
                  condition_ready,
                  containers_ready,
                  {{"type", "PodScheduled"},
                   {"status", "True"},
                   {"lastProbeTime", nullptr},
                   {"lastTransitionTime", created_text}}}},
                {"hostIP", "10.0.0.1"},
                {"podIP", fmt::format("10.244.0.{}", 2 + std::hash<std::string>{}(uid) % 250)},
                {"startTime", created_text},
                {"containerStatuses", statuses},
                {"qosClass", "BestEffort"}};
    if (pod["status"] != status) {
      pod["status"] = status;
      PutLocked(Resource::kPods, pod, "MODIFIED");
    }
  }
}

// ---- ReplicaSet controller -------------------------------------------------------------------

std::vector<std::string> Cluster::OwnedKeysLocked(Resource resource, const std::string& ns,
                                                  const std::string& owner_uid) const {
  std::vector<std::string> keys;
  for (const auto& [key, object] : StoreOf(resource)) {
    if (object["metadata"].value("namespace", "") == ns && IsControlledBy(object, owner_uid)) {
      keys.push_back(key);
    }
  }
  return keys;
}

void Cluster::RunReplicaSetControllerLocked() {
  std::vector<std::string> keys;
  for (const auto& [key, rs] : StoreOf(Resource::kReplicaSets)) keys.push_back(key);

  for (const std::string& key : keys) {
    json rs = StoreOf(Resource::kReplicaSets)[key];
    std::string ns = rs["metadata"]["namespace"];
    std::string uid = rs["metadata"]["uid"];
    int64_t desired = IntAt(rs, "/spec/replicas");
    std::vector<std::string> pods = OwnedKeysLocked(Resource::kPods, ns, uid);

    // Create missing pods.
    for (int64_t i = static_cast<int64_t>(pods.size()); i < desired; ++i) {
      std::string name = fmt::format("{}-{}", rs["metadata"]["name"].get<std::string>(),
                                     SafeSuffix(++name_counter_));
      json pod{{"metadata",
                {{"name", name},
                 {"generateName", rs["metadata"]["name"].get<std::string>() + "-"},
                 {"labels", rs["spec"]["template"]["metadata"].value("labels", json::object())},
                 {"ownerReferences",
                  {{{"apiVersion", "apps/v1"},
                    {"kind", "ReplicaSet"},
                    {"name", rs["metadata"]["name"]},
                    {"uid", uid},
                    {"controller", true},
                    {"blockOwnerDeletion", true}}}}}},
               {"spec", rs["spec"]["template"]["spec"]},
               {"status", {{"phase", "Pending"}, {"qosClass", "BestEffort"}}}};
      pod["spec"]["nodeName"] = "emulated-node";
      ApiResult created = StoreCreatedLocked(Resource::kPods, ns, std::move(pod));
      pod_created_[created.body["metadata"]["uid"]] = SystemClock::now();
      pods.push_back(fmt::format("{}/{}", ns, name));
    }

    // Delete surplus pods: not ready ones first, then the newest.
    if (static_cast<int64_t>(pods.size()) > desired) {
      std::sort(pods.begin(), pods.end(), [&](const std::string& a, const std::string& b) {
        const json& pod_a = StoreOf(Resource::kPods)[a];
        const json& pod_b = StoreOf(Resource::kPods)[b];
        if (PodReady(pod_a) != PodReady(pod_b)) return !PodReady(pod_a);
        return CreatedBefore(pod_b, pod_a);
      });
      while (static_cast<int64_t>(pods.size()) > desired) {
        RemoveLocked(Resource::kPods, pods.front());
        pods.erase(pods.begin());
      }
    }

    int64_t ready = 0;
    for (const std::string& pod_key : pods) {
      if (PodReady(StoreOf(Resource::kPods)[pod_key])) ++ready;
    }
    json status = rs["status"].is_object() ? rs["status"] : json::object();
    status["replicas"] = static_cast<int64_t>(pods.size());
    SetCount(status, "fullyLabeledReplicas", static_cast<int64_t>(pods.size()));
    SetCount(status, "readyReplicas", ready);
    SetCount(status, "availableReplicas", ready);
    status["observedGeneration"] = rs["metadata"].value("generation", 1);
    if (rs["status"] != status) {
      rs["status"] = status;
      PutLocked(Resource::kReplicaSets, rs, "MODIFIED");
    }
  }
}

// ---- Deployment controller -------------------------------------------------------------------

namespace {

// copyDeploymentAnnotationsToReplicaSet: every annotation except the ones the controller owns.
bool CopyDeploymentAnnotations(const json& d, json& rs) {
  bool changed = false;
  json annotations = d["metadata"].value("annotations", json::object());
  for (const auto& [key, value] : annotations.items()) {
    if (key == kLastApplied || key == kRevision || key == kRevisionHistory ||
        key == kDesiredReplicas || key == kMaxReplicas || key == kRollbackTo) {
      continue;
    }
    if (!rs["metadata"].contains("annotations") ||
        rs["metadata"]["annotations"].value(key, json()) != value) {
      rs["metadata"]["annotations"][key] = value;
      changed = true;
    }
  }
  return changed;
}

bool SetReplicasAnnotations(json& rs, int64_t desired, int64_t max) {
  bool changed = false;
  for (auto [key, value] : {std::pair{kDesiredReplicas, desired}, std::pair{kMaxReplicas, max}}) {
    std::string text = std::to_string(value);
    if (Annotation(rs, key) != text) {
      rs["metadata"]["annotations"][key] = text;
      changed = true;
    }
  }
  return changed;
}

// SetNewReplicaSetAnnotations: gives the ReplicaSet `new_revision` when that is higher than its
// own, and moves its old number into revision-history, as a rollback does.
bool SetNewReplicaSetAnnotations(const json& d, json& rs, int64_t new_revision, bool exists) {
  bool changed = CopyDeploymentAnnotations(d, rs);
  std::string old_text = Annotation(rs, kRevision);
  bool had_revision = !old_text.empty();
  std::optional<int64_t> old_revision = Revision(rs);
  if (!old_revision) return false;

  if (*old_revision < new_revision) {
    rs["metadata"]["annotations"][kRevision] = std::to_string(new_revision);
    changed = true;
    if (had_revision) {
      std::string history = Annotation(rs, kRevisionHistory);
      if (history.empty()) {
        rs["metadata"]["annotations"][kRevisionHistory] = old_text;
      } else {
        std::vector<std::string> parts;
        size_t begin = 0;
        while (begin <= history.size()) {
          size_t end = history.find(',', begin);
          if (end == std::string::npos) end = history.size();
          parts.push_back(history.substr(begin, end - begin));
          begin = end + 1;
        }
        size_t total = history.size() + old_text.size() + 1;
        size_t start = 0;
        while (total > kMaxRevisionHistoryChars && start < parts.size()) {
          total -= parts[start].size() + 1;
          ++start;
        }
        if (total <= kMaxRevisionHistoryChars) {
          std::string joined;
          for (size_t i = start; i < parts.size(); ++i) joined += parts[i] + ",";
          rs["metadata"]["annotations"][kRevisionHistory] = joined + old_text;
        }
      }
    }
  }
  if (!exists) {
    int64_t replicas = IntAt(d, "/spec/replicas");
    if (SetReplicasAnnotations(rs, replicas, replicas + MaxSurge(d))) changed = true;
  }
  return changed;
}

bool SetDeploymentRevision(json& d, const std::string& revision) {
  if (Annotation(d, kRevision) == revision) return false;
  d["metadata"]["annotations"][kRevision] = revision;
  return true;
}

bool DeploymentComplete(const json& d, const json& status) {
  int64_t replicas = IntAt(d, "/spec/replicas");
  return IntAt(status, "/updatedReplicas") == replicas && IntAt(status, "/replicas") == replicas &&
         IntAt(status, "/availableReplicas") == replicas &&
         IntAt(status, "/observedGeneration") >= d["metadata"].value("generation", 0);
}

bool DeploymentProgressing(const json& d, const json& status) {
  const json& old = d["status"];
  int64_t old_old_replicas = IntAt(old, "/replicas") - IntAt(old, "/updatedReplicas");
  int64_t new_old_replicas = IntAt(status, "/replicas") - IntAt(status, "/updatedReplicas");
  return IntAt(status, "/updatedReplicas") > IntAt(old, "/updatedReplicas") ||
         new_old_replicas < old_old_replicas ||
         IntAt(status, "/readyReplicas") > IntAt(old, "/readyReplicas") ||
         IntAt(status, "/availableReplicas") > IntAt(old, "/availableReplicas");
}

bool DeploymentTimedOut(const json& d, json& status, SystemClock::time_point now) {
  json* condition = FindCondition(status, "Progressing");
  if (condition == nullptr) return false;
  std::string reason = condition->value("reason", "");
  if (reason == kNewRSAvailable) return false;
  if (reason == kTimedOut) return true;
  auto from = ParseTimestamp(condition->value("lastUpdateTime", ""));
  if (!from) return false;
  return *from + std::chrono::seconds(IntAt(d, "/spec/progressDeadlineSeconds")) < now;
}

}  // namespace

void Cluster::ScaleReplicaSetLocked(const std::string& key, int64_t replicas, const json& d) {
  json rs = StoreOf(Resource::kReplicaSets)[key];
  int64_t desired = IntAt(d, "/spec/replicas");
  bool changed = IntAt(rs, "/spec/replicas") != replicas;
  rs["spec"]["replicas"] = replicas;
  if (SetReplicasAnnotations(rs, desired, desired + MaxSurge(d))) changed = true;
  if (!changed) return;
  if (IntAt(StoreOf(Resource::kReplicaSets)[key], "/spec/replicas") != replicas) {
    rs["metadata"]["generation"] = rs["metadata"].value("generation", 1) + 1;
  }
  PutLocked(Resource::kReplicaSets, rs, "MODIFIED");
}

void Cluster::SyncDeploymentLocked(const std::string& key, SystemClock::time_point now) {
  json d = StoreOf(Resource::kDeployments)[key];
  std::string ns = d["metadata"]["namespace"];
  std::string uid = d["metadata"]["uid"];
  std::string name = d["metadata"]["name"];
  Store& replica_sets = StoreOf(Resource::kReplicaSets);
  auto commit = [&] {
    if (d != StoreOf(Resource::kDeployments)[key]) PutLocked(Resource::kDeployments, d, "MODIFIED");
  };
  auto rs_at = [&](const std::string& rs_key) -> json& { return replica_sets[rs_key]; };

  // checkPausedConditions
  bool paused = d["spec"].value("paused", false);
  if (HasProgressDeadline(d)) {
    json* condition = FindCondition(d["status"], "Progressing");
    bool timed_out = condition != nullptr && (*condition)["reason"] == kTimedOut;
    bool paused_condition = condition != nullptr && (*condition)["reason"] == kPaused;
    if (!timed_out && paused && !paused_condition) {
      SetCondition(d["status"],
                   NewCondition("Progressing", "Unknown", kPaused, "Deployment is paused", now));
      commit();
    } else if (!timed_out && !paused && paused_condition) {
      SetCondition(d["status"],
                   NewCondition("Progressing", "Unknown", kResumed, "Deployment is resumed", now));
      commit();
    }
  }

  // getAllReplicaSetsAndSyncRevision: the new ReplicaSet is the oldest whose template matches.
  auto split = [&](std::string& new_key, std::vector<std::string>& old_keys) {
    std::vector<std::string> owned = OwnedKeysLocked(Resource::kReplicaSets, ns, uid);
    std::sort(owned.begin(), owned.end(), [&](const std::string& a, const std::string& b) {
      return CreatedBefore(rs_at(a), rs_at(b));
    });
    new_key.clear();
    old_keys.clear();
    for (const std::string& rs_key : owned) {
      if (new_key.empty() &&
          EqualIgnoreHash(rs_at(rs_key)["spec"]["template"], d["spec"]["template"])) {
        new_key = rs_key;
      } else {
        old_keys.push_back(rs_key);
      }
    }
  };
  auto sync_revision = [&](bool create, std::string& new_key, std::vector<std::string>& old_keys) {
    split(new_key, old_keys);
    int64_t max_old = 0;
    for (const std::string& rs_key : old_keys) {
      if (auto revision = Revision(rs_at(rs_key))) max_old = std::max(max_old, *revision);
    }
    int64_t new_revision = max_old + 1;

    if (!new_key.empty()) {
      json rs = rs_at(new_key);
      if (SetNewReplicaSetAnnotations(d, rs, new_revision, true)) {
        PutLocked(Resource::kReplicaSets, rs, "MODIFIED");
      }
      bool needs_update = SetDeploymentRevision(d, Annotation(rs, kRevision));
      if (HasProgressDeadline(d) && FindCondition(d["status"], "Progressing") == nullptr) {
        SetCondition(d["status"],
                     NewCondition("Progressing", "True", kFoundNewRS,
                                  fmt::format("Found new replica set \"{}\"",
                                              rs["metadata"]["name"].get<std::string>()),
                                  now));
        needs_update = true;
      }
      if (needs_update) commit();
      return;
    }
    if (!create) return;

    int64_t collision_count = IntAt(d, "/status/collisionCount");
    std::string hash = ComputeTemplateHash(d["spec"]["template"], collision_count);
    json template_spec = d["spec"]["template"];
    template_spec["metadata"]["labels"][kHashLabel] = hash;
    json selector = d["spec"]["selector"];
    selector["matchLabels"][kHashLabel] = hash;
    std::string rs_name = fmt::format("{}-{}", name, hash);
    if (replica_sets.contains(fmt::format("{}/{}", ns, rs_name))) {
      // A different template with the same hash: count the collision and try again next pass.
      d["status"]["collisionCount"] = collision_count + 1;
      commit();
      return;
    }

    int64_t replicas = IntAt(d, "/spec/replicas");
    int64_t new_replicas = replicas;
    if (IsRolling(d)) {
      int64_t current = 0;
      for (const std::string& rs_key : old_keys) current += IntAt(rs_at(rs_key), "/spec/replicas");
      int64_t max_total = replicas + MaxSurge(d);
      new_replicas = current >= max_total ? 0 : std::min(max_total - current, replicas);
    }
    json rs{{"metadata",
             {{"name", rs_name},
              {"labels", template_spec["metadata"]["labels"]},
              {"annotations", json::object()},
              {"ownerReferences",
               {{{"apiVersion", "apps/v1"},
                 {"kind", "Deployment"},
                 {"name", name},
                 {"uid", uid},
                 {"controller", true},
                 {"blockOwnerDeletion", true}}}}}},
            {"spec",
             {{"replicas", new_replicas}, {"selector", selector}, {"template", template_spec}}}};
    SetNewReplicaSetAnnotations(d, rs, new_revision, false);
    StoreCreatedLocked(Resource::kReplicaSets, ns, std::move(rs));
    if (HasProgressDeadline(d)) {
      SetCondition(d["status"],
                   NewCondition("Progressing", "True", kNewRSCreated,
                                fmt::format("Created new replica set \"{}\"", rs_name), now));
    }
    SetDeploymentRevision(d, std::to_string(new_revision));
    commit();
    split(new_key, old_keys);
  };

  auto calculate_status = [&](const std::string& new_key,
                              const std::vector<std::string>& old_keys) {
    int64_t total = 0, ready = 0, available = 0;
    std::vector<std::string> all = old_keys;
    if (!new_key.empty()) all.push_back(new_key);
    for (const std::string& rs_key : all) {
      total += IntAt(rs_at(rs_key), "/status/replicas");
      ready += IntAt(rs_at(rs_key), "/status/readyReplicas");
      available += IntAt(rs_at(rs_key), "/status/availableReplicas");
    }
    int64_t replicas = IntAt(d, "/spec/replicas");
    json status = d["status"].is_object() ? d["status"] : json::object();
    status["observedGeneration"] = d["metadata"].value("generation", 1);
    SetCount(status, "replicas", total);
    SetCount(status, "updatedReplicas",
             new_key.empty() ? 0 : IntAt(rs_at(new_key), "/status/replicas"));
    SetCount(status, "readyReplicas", ready);
    SetCount(status, "availableReplicas", available);
    SetCount(status, "unavailableReplicas", std::max<int64_t>(0, replicas - available));
    if (!status.contains("conditions")) status["conditions"] = json::array();
    if (available >= replicas - MaxUnavailable(d)) {
      SetCondition(status, NewCondition("Available", "True", "MinimumReplicasAvailable",
                                        "Deployment has minimum availability.", now));
    } else {
      SetCondition(status, NewCondition("Available", "False", "MinimumReplicasUnavailable",
                                        "Deployment does not have minimum availability.", now));
    }
    return status;
  };

  auto sync_rollout_status = [&](const std::string& new_key,
                                 const std::vector<std::string>& old_keys) {
    json status = calculate_status(new_key, old_keys);
    if (!HasProgressDeadline(d)) RemoveCondition(status, "Progressing");
    json* current = FindCondition(d["status"], "Progressing");
    bool complete_already = IntAt(status, "/replicas") == IntAt(status, "/updatedReplicas") &&
                            current != nullptr && (*current)["reason"] == kNewRSAvailable;
    std::string rs_name =
        new_key.empty() ? "" : rs_at(new_key)["metadata"]["name"].get<std::string>();
    if (HasProgressDeadline(d) && !complete_already) {
      if (DeploymentComplete(d, status)) {
        SetCondition(
            status,
            NewCondition(
                "Progressing", "True", kNewRSAvailable,
                new_key.empty()
                    ? fmt::format("Deployment \"{}\" has successfully progressed.", name)
                    : fmt::format("ReplicaSet \"{}\" has successfully progressed.", rs_name),
                now));
      } else if (DeploymentProgressing(d, status)) {
        json condition = NewCondition(
            "Progressing", "True", kReplicaSetUpdated,
            new_key.empty() ? fmt::format("Deployment \"{}\" is progressing.", name)
                            : fmt::format("ReplicaSet \"{}\" is progressing.", rs_name),
            now);
        if (current != nullptr) {
          if ((*current)["status"] == "True") {
            condition["lastTransitionTime"] = (*current)["lastTransitionTime"];
          }
          RemoveCondition(status, "Progressing");
        }
        status["conditions"].push_back(condition);
      } else if (DeploymentTimedOut(d, status, now)) {
        SetCondition(
            status,
            NewCondition("Progressing", "False", kTimedOut,
                         new_key.empty()
                             ? fmt::format("Deployment \"{}\" has timed out progressing.", name)
                             : fmt::format("ReplicaSet \"{}\" has timed out progressing.", rs_name),
                         now));
      }
    }
    d["status"] = status;
    commit();
  };

  auto cleanup = [&](const std::vector<std::string>& old_keys) {
    if (!d["spec"].contains("revisionHistoryLimit")) return;
    int64_t limit = IntAt(d, "/spec/revisionHistoryLimit");
    int64_t excess = static_cast<int64_t>(old_keys.size()) - limit;
    if (excess <= 0) return;
    std::vector<std::string> sorted = old_keys;
    std::sort(sorted.begin(), sorted.end(), [&](const std::string& a, const std::string& b) {
      int64_t revision_a = Revision(rs_at(a)).value_or(0);
      int64_t revision_b = Revision(rs_at(b)).value_or(0);
      if (revision_a != revision_b) return revision_a < revision_b;
      return CreatedBefore(rs_at(a), rs_at(b));
    });
    for (int64_t i = 0; i < excess; ++i) {
      const json& rs = rs_at(sorted[i]);
      if (IntAt(rs, "/status/replicas") != 0 || IntAt(rs, "/spec/replicas") != 0 ||
          rs["metadata"].value("generation", 1) > IntAt(rs, "/status/observedGeneration")) {
        continue;
      }
      std::string rs_uid = rs["metadata"]["uid"];
      RemoveLocked(Resource::kReplicaSets, sorted[i]);
      DeleteDependentsLocked(rs_uid);
    }
  };

  std::string new_key;
  std::vector<std::string> old_keys;

  if (paused) {
    // sync(): no rollout while paused, but revisions and status are kept current.
    sync_revision(false, new_key, old_keys);
    cleanup(old_keys);
    split(new_key, old_keys);
    json status = calculate_status(new_key, old_keys);
    d["status"] = status;
    commit();
    return;
  }

  int64_t replicas = IntAt(d, "/spec/replicas");
  if (!IsRolling(d)) {
    // rolloutRecreate: old pods go first, the new ReplicaSet comes after they are gone.
    sync_revision(false, new_key, old_keys);
    bool scaled_down = false;
    for (const std::string& rs_key : old_keys) {
      if (IntAt(rs_at(rs_key), "/spec/replicas") != 0) {
        ScaleReplicaSetLocked(rs_key, 0, d);
        scaled_down = true;
      }
    }
    if (scaled_down) return sync_rollout_status(new_key, old_keys);
    for (const std::string& rs_key : old_keys) {
      if (IntAt(rs_at(rs_key), "/status/replicas") > 0 ||
          !OwnedKeysLocked(Resource::kPods, ns, rs_at(rs_key)["metadata"]["uid"]).empty()) {
        return sync_rollout_status(new_key, old_keys);
      }
    }
    if (new_key.empty()) sync_revision(true, new_key, old_keys);
    if (!new_key.empty()) ScaleReplicaSetLocked(new_key, replicas, d);
    if (DeploymentComplete(d, d["status"])) cleanup(old_keys);
    split(new_key, old_keys);
    return sync_rollout_status(new_key, old_keys);
  }

  // rolloutRolling
  sync_revision(true, new_key, old_keys);
  if (new_key.empty()) return;
  std::vector<std::string> all_keys = old_keys;
  all_keys.push_back(new_key);
  auto sum_spec = [&](const std::vector<std::string>& keys) {
    int64_t sum = 0;
    for (const std::string& rs_key : keys) sum += IntAt(rs_at(rs_key), "/spec/replicas");
    return sum;
  };

  // reconcileNewReplicaSet
  int64_t new_replicas = IntAt(rs_at(new_key), "/spec/replicas");
  if (new_replicas > replicas) {
    ScaleReplicaSetLocked(new_key, replicas, d);
    return sync_rollout_status(new_key, old_keys);
  }
  if (new_replicas < replicas) {
    int64_t max_total = replicas + MaxSurge(d);
    int64_t current = sum_spec(all_keys);
    if (current < max_total) {
      int64_t scale_up = std::min(max_total - current, replicas - new_replicas);
      ScaleReplicaSetLocked(new_key, new_replicas + scale_up, d);
      return sync_rollout_status(new_key, old_keys);
    }
  }

  // reconcileOldReplicaSets
  std::vector<std::string> active_old;
  for (const std::string& rs_key : old_keys) {
    if (IntAt(rs_at(rs_key), "/spec/replicas") > 0) active_old.push_back(rs_key);
  }
  std::sort(active_old.begin(), active_old.end(), [&](const std::string& a, const std::string& b) {
    return CreatedBefore(rs_at(a), rs_at(b));
  });
  if (sum_spec(active_old) > 0) {
    int64_t min_available = replicas - MaxUnavailable(d);
    int64_t new_unavailable = IntAt(rs_at(new_key), "/spec/replicas") -
                              IntAt(rs_at(new_key), "/status/availableReplicas");
    int64_t max_scaled_down = sum_spec(all_keys) - min_available - new_unavailable;
    int64_t scaled = 0;
    if (max_scaled_down > 0) {
      // cleanupUnhealthyReplicas
      for (const std::string& rs_key : active_old) {
        if (scaled >= max_scaled_down) break;
        int64_t spec = IntAt(rs_at(rs_key), "/spec/replicas");
        int64_t healthy = IntAt(rs_at(rs_key), "/status/availableReplicas");
        if (spec == 0 || spec == healthy) continue;
        int64_t down = std::min(max_scaled_down - scaled, spec - healthy);
        ScaleReplicaSetLocked(rs_key, spec - down, d);
        scaled += down;
      }
      // scaleDownOldReplicaSetsForRollingUpdate
      int64_t available = 0;
      for (const std::string& rs_key : all_keys) {
        available += IntAt(rs_at(rs_key), "/status/availableReplicas");
      }
      if (available > min_available) {
        int64_t total_down = available - min_available;
        int64_t done = 0;
        for (const std::string& rs_key : active_old) {
          if (done >= total_down) break;
          int64_t spec = IntAt(rs_at(rs_key), "/spec/replicas");
          if (spec == 0) continue;
          int64_t down = std::min(spec, total_down - done);
          ScaleReplicaSetLocked(rs_key, spec - down, d);
          done += down;
        }
        scaled += done;
      }
    }
    if (scaled > 0) return sync_rollout_status(new_key, old_keys);
  }

  if (DeploymentComplete(d, d["status"])) cleanup(old_keys);
  split(new_key, old_keys);
  sync_rollout_status(new_key, old_keys);
}

void Cluster::Step() {
  std::lock_guard lock(mutex_);
  SystemClock::time_point now = SystemClock::now();
  RunKubeletLocked(now);
  RunReplicaSetControllerLocked();
  std::vector<std::string> keys;
  for (const auto& [key, d] : StoreOf(Resource::kDeployments)) keys.push_back(key);
  for (const std::string& key : keys) SyncDeploymentLocked(key, now);
}

}  // namespace backout::emulators::kubernetes
