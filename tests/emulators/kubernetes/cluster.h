#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "selectors.h"

// The state of an emulated Kubernetes cluster: Deployments, ReplicaSets and Pods with the API
// server's semantics (resource versions, generations, defaulting, validation, patches, a watch
// log). The controllers that act on them run in Step: the Deployment controller, the ReplicaSet
// controller and a kubelet whose pods start, crash or fail to pull on request. Every method is
// thread-safe.
namespace backout::emulators::kubernetes {

using SystemClock = std::chrono::system_clock;

enum class Resource { kDeployments, kReplicaSets, kPods };

struct ResourceInfo {
  Resource resource;
  std::string_view plural;      // "deployments"
  std::string_view kind;        // "Deployment"
  std::string_view group;       // "apps", or "" for the core group
  std::string_view version;     // "v1"
  std::string_view short_name;  // "deploy"
};

const ResourceInfo& Info(Resource resource);
std::optional<Resource> ParseResource(std::string_view plural);
std::string ApiVersion(Resource resource);  // "apps/v1" or "v1"

// The status and JSON body of one API call: the object, a list, or a metav1.Status on failure.
struct ApiResult {
  int status = 200;
  nlohmann::json body;
};

// Builds a metav1.Status failure body, as the API server returns it.
ApiResult StatusError(int code, std::string_view reason, const std::string& message,
                      nlohmann::json details = nullptr);

enum class PatchType { kJson, kMerge, kStrategicMerge };

// What the emulated kubelet does with a pod whose first container runs a given image.
enum class PodFault {
  kNone,         // starts after the delay and becomes ready
  kCrashLoop,    // starts, exits with code 1, and restarts with CrashLoopBackOff
  kImagePull,    // never starts: ErrImagePull, then ImagePullBackOff
  kConfigError,  // never starts: CreateContainerConfigError
};

struct PodBehaviour {
  PodFault fault = PodFault::kNone;
  // Time from the pod's creation until its container starts; unset means the cluster's default.
  std::optional<std::chrono::milliseconds> start_delay;
};

struct WatchEvent {
  uint64_t resource_version = 0;
  Resource resource = Resource::kPods;
  std::string type;  // ADDED, MODIFIED or DELETED
  nlohmann::json object;
  SystemClock::time_point time;
};

struct ClusterOptions {
  std::chrono::milliseconds pod_start_delay{200};
  // Time between two restarts of a crashing container.
  std::chrono::milliseconds crash_interval{1000};
  // First number of the UIDs the cluster hands out, so two clusters seeded alike match.
  uint64_t uid_seed = 1;
  // Watch events kept; a watch from an older resource version gets 410 Gone.
  size_t event_log_size = 50'000;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});

  // ---- The API server's operations. `ns` is empty for a list across all namespaces.
  ApiResult Get(Resource resource, const std::string& ns, const std::string& name) const;
  ApiResult List(Resource resource, const std::string& ns, const LabelSelector& labels,
                 const FieldSelector& fields) const;
  ApiResult Create(Resource resource, const std::string& ns, nlohmann::json object);
  ApiResult Update(Resource resource, const std::string& ns, const std::string& name,
                   nlohmann::json object);
  ApiResult Patch(Resource resource, const std::string& ns, const std::string& name, PatchType type,
                  std::string_view body, bool dry_run);
  ApiResult Delete(Resource resource, const std::string& ns, const std::string& name);

  // Events of `resource` newer than `after`, or nullopt when `after` is older than the log keeps.
  std::optional<std::vector<WatchEvent>> EventsAfter(Resource resource, uint64_t after) const;
  // Waits until an event newer than `after` exists, or `timeout` passes.
  void WaitForEvent(uint64_t after, std::chrono::milliseconds timeout) const;
  uint64_t ResourceVersion() const;

  // Runs one pass of the kubelet, the ReplicaSet controller and the Deployment controller.
  void Step();

  // ---- Test hooks.
  void SetPodBehaviour(const std::string& image, PodBehaviour behaviour);
  // Creates the Deployment, or updates it as `kubectl apply` does: the manifest's labels and
  // annotations are set, the spec fields it gives replace the live ones, and its pod template
  // replaces the live one whole. With `record_last_applied` the manifest is also kept in the
  // kubectl.kubernetes.io/last-applied-configuration annotation, as client-side apply keeps it.
  ApiResult Apply(const std::string& ns, const nlohmann::json& manifest,
                  bool record_last_applied = false);
  // Every object and counter, to restore the same state into this or another cluster.
  nlohmann::json Snapshot() const;
  void Restore(const nlohmann::json& snapshot);
  // The event log, oldest first.
  std::vector<WatchEvent> Events() const;

 private:
  using Store = std::map<std::string, nlohmann::json>;  // "namespace/name" -> object

  Store& StoreOf(Resource resource) { return stores_[static_cast<int>(resource)]; }
  const Store& StoreOf(Resource resource) const { return stores_[static_cast<int>(resource)]; }

  // Writes under the lock: each bumps the resource version and logs a watch event.
  void PutLocked(Resource resource, nlohmann::json& object, std::string_view event_type);
  void RemoveLocked(Resource resource, const std::string& key);
  nlohmann::json* FindLocked(Resource resource, const std::string& ns, const std::string& name);
  std::string NewUidLocked();
  ApiResult StoreCreatedLocked(Resource resource, const std::string& ns, nlohmann::json object);
  ApiResult StoreUpdatedLocked(Resource resource, const nlohmann::json& old_object,
                               nlohmann::json object, bool dry_run);
  void DeleteDependentsLocked(const std::string& owner_uid);

  // Controllers (controllers.cc).
  void RunKubeletLocked(SystemClock::time_point now);
  void RunReplicaSetControllerLocked();
  void SyncDeploymentLocked(const std::string& key, SystemClock::time_point now);
  std::vector<std::string> OwnedKeysLocked(Resource resource, const std::string& ns,
                                           const std::string& owner_uid) const;
  void ScaleReplicaSetLocked(const std::string& key, int64_t replicas,
                             const nlohmann::json& deployment);

  ClusterOptions options_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  Store stores_[3];
  uint64_t resource_version_ = 1;
  uint64_t uid_counter_;
  uint64_t name_counter_ = 0;
  std::deque<WatchEvent> events_;
  uint64_t compacted_through_ = 0;  // resource versions up to this one are no longer in events_
  std::map<std::string, PodBehaviour> behaviours_;              // by image
  std::map<std::string, SystemClock::time_point> pod_created_;  // by pod UID, exact
};

// ---- Helpers shared with the controllers and the API server.

std::string FormatTimestamp(SystemClock::time_point time);  // RFC 3339, seconds, Z
std::optional<SystemClock::time_point> ParseTimestamp(std::string_view text);

// The pod-template-hash the Deployment controller gives a template: FNV-1a (32 bit) over the
// template's JSON and the collision count, written in Kubernetes' safe alphabet.
std::string ComputeTemplateHash(const nlohmann::json& template_spec, int64_t collision_count);

// Whether two pod templates are equal once the pod-template-hash label is ignored.
bool EqualIgnoreHash(const nlohmann::json& a, const nlohmann::json& b);

// Applies the API server's defaults to a Deployment (spec and pod template) in place.
void DefaultDeployment(nlohmann::json& deployment);
// Returns what is invalid in a Deployment, or nullopt.
std::optional<std::string> ValidateDeployment(const nlohmann::json& deployment);

}  // namespace backout::emulators::kubernetes
