#include "cluster.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

constexpr std::array<ResourceInfo, 3> kResources = {{
    {Resource::kDeployments, "deployments", "Deployment", "apps", "v1", "deploy"},
    {Resource::kReplicaSets, "replicasets", "ReplicaSet", "apps", "v1", "rs"},
    {Resource::kPods, "pods", "Pod", "", "v1", "po"},
}};

std::string Key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::string Namespace(const json& object) {
  return object.value("/metadata/namespace"_json_pointer, std::string());
}

std::string Name(const json& object) {
  return object.value("/metadata/name"_json_pointer, std::string());
}

// Group-qualified resource name as messages write it: "deployments.apps", "pods".
std::string QualifiedResource(Resource resource) {
  const ResourceInfo& info = Info(resource);
  if (info.group.empty()) return std::string(info.plural);
  return fmt::format("{}.{}", info.plural, info.group);
}

ApiResult NotFound(Resource resource, const std::string& name) {
  return StatusError(404, "NotFound",
                     fmt::format("{} \"{}\" not found", QualifiedResource(resource), name),
                     json{{"name", name},
                          {"group", std::string(Info(resource).group)},
                          {"kind", std::string(Info(resource).plural)}});
}

// The object as a list item or a watch event carries it: with kind and apiVersion.
json WithType(Resource resource, json object) {
  object["kind"] = std::string(Info(resource).kind);
  object["apiVersion"] = ApiVersion(resource);
  return object;
}

}  // namespace

const ResourceInfo& Info(Resource resource) { return kResources[static_cast<int>(resource)]; }

std::optional<Resource> ParseResource(std::string_view plural) {
  for (const ResourceInfo& info : kResources) {
    if (info.plural == plural) return info.resource;
  }
  return std::nullopt;
}

std::string ApiVersion(Resource resource) {
  const ResourceInfo& info = Info(resource);
  if (info.group.empty()) return std::string(info.version);
  return fmt::format("{}/{}", info.group, info.version);
}

ApiResult StatusError(int code, std::string_view reason, const std::string& message, json details) {
  json body{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", std::string(reason)},
            {"code", code}};
  if (!details.is_null()) body["details"] = std::move(details);
  return ApiResult{code, std::move(body)};
}

Cluster::Cluster(ClusterOptions options) : options_(options), uid_counter_(options.uid_seed) {}

// ---- Storage ---------------------------------------------------------------------------------

std::string Cluster::NewUidLocked() {
  uint64_t n = uid_counter_++;
  return fmt::format("{:08x}-0000-4000-8000-{:012x}", static_cast<uint32_t>(n >> 32),
                     n & 0xffffffffffffULL);
}

void Cluster::PutLocked(Resource resource, json& object, std::string_view event_type) {
  object["metadata"]["resourceVersion"] = std::to_string(++resource_version_);
  StoreOf(resource)[Key(Namespace(object), Name(object))] = object;
  events_.push_back(WatchEvent{resource_version_, resource, std::string(event_type),
                               WithType(resource, object), SystemClock::now()});
  while (events_.size() > options_.event_log_size) {
    compacted_through_ = events_.front().resource_version;
    events_.pop_front();
  }
  changed_.notify_all();
}

void Cluster::RemoveLocked(Resource resource, const std::string& key) {
  Store& store = StoreOf(resource);
  auto it = store.find(key);
  if (it == store.end()) return;
  json object = std::move(it->second);
  store.erase(it);
  if (resource == Resource::kPods) pod_created_.erase(object["metadata"].value("uid", ""));
  object["metadata"]["resourceVersion"] = std::to_string(++resource_version_);
  events_.push_back(WatchEvent{resource_version_, resource, "DELETED",
                               WithType(resource, std::move(object)), SystemClock::now()});
  changed_.notify_all();
}

json* Cluster::FindLocked(Resource resource, const std::string& ns, const std::string& name) {
  Store& store = StoreOf(resource);
  auto it = store.find(Key(ns, name));
  return it == store.end() ? nullptr : &it->second;
}

uint64_t Cluster::ResourceVersion() const {
  std::lock_guard lock(mutex_);
  return resource_version_;
}

std::optional<std::vector<WatchEvent>> Cluster::EventsAfter(Resource resource,
                                                            uint64_t after) const {
  std::lock_guard lock(mutex_);
  if (after < compacted_through_) return std::nullopt;
  std::vector<WatchEvent> result;
  auto first = std::upper_bound(
      events_.begin(), events_.end(), after,
      [](uint64_t version, const WatchEvent& event) { return version < event.resource_version; });
  for (auto it = first; it != events_.end(); ++it) {
    if (it->resource == resource) result.push_back(*it);
  }
  return result;
}

void Cluster::WaitForEvent(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return resource_version_ > after; });
}

std::vector<WatchEvent> Cluster::Events() const {
  std::lock_guard lock(mutex_);
  return {events_.begin(), events_.end()};
}

// ---- API operations --------------------------------------------------------------------------

ApiResult Cluster::Get(Resource resource, const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Store& store = StoreOf(resource);
  auto it = store.find(Key(ns, name));
  if (it == store.end()) return NotFound(resource, name);
  return ApiResult{200, WithType(resource, it->second)};
}

ApiResult Cluster::List(Resource resource, const std::string& ns, const LabelSelector& labels,
                        const FieldSelector& fields) const {
  std::lock_guard lock(mutex_);
  json items = json::array();
  for (const auto& [key, object] : StoreOf(resource)) {
    if (!ns.empty() && Namespace(object) != ns) continue;
    if (!labels.Matches(object["metadata"].value("labels", json::object()))) continue;
    if (!fields.Matches(object)) continue;
    items.push_back(object);
  }
  json list{{"kind", fmt::format("{}List", Info(resource).kind)},
            {"apiVersion", ApiVersion(resource)},
            {"metadata", {{"resourceVersion", std::to_string(resource_version_)}}},
            {"items", std::move(items)}};
  return ApiResult{200, std::move(list)};
}

ApiResult Cluster::StoreCreatedLocked(Resource resource, const std::string& ns, json object) {
  json& metadata = object["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  if (!metadata.contains("name") && metadata.contains("generateName")) {
    metadata["name"] =
        fmt::format("{}{:05x}", metadata["generateName"].get<std::string>(), ++name_counter_);
  }
  std::string name = Name(object);
  if (FindLocked(resource, ns, name) != nullptr) {
    return StatusError(409, "AlreadyExists",
                       fmt::format("{} \"{}\" already exists", QualifiedResource(resource), name),
                       json{{"name", name}, {"kind", std::string(Info(resource).plural)}});
  }
  metadata["namespace"] = ns;
  metadata["uid"] = NewUidLocked();
  metadata["generation"] = 1;
  metadata["creationTimestamp"] = FormatTimestamp(SystemClock::now());
  object.erase("kind");
  object.erase("apiVersion");
  if (resource == Resource::kDeployments) {
    DefaultDeployment(object);
    if (auto problem = ValidateDeployment(object)) return StatusError(422, "Invalid", *problem);
  }
  if (!object.contains("status") || !object["status"].is_object())
    object["status"] = json::object();
  PutLocked(resource, object, "ADDED");
  return ApiResult{201, WithType(resource, object)};
}

ApiResult Cluster::Create(Resource resource, const std::string& ns, json object) {
  std::lock_guard lock(mutex_);
  return StoreCreatedLocked(resource, ns, std::move(object));
}

ApiResult Cluster::StoreUpdatedLocked(Resource resource, const json& old_object, json object,
                                      bool dry_run) {
  // The main resource cannot change identity or status; the status subresource is not served.
  object.erase("kind");
  object.erase("apiVersion");
  json& metadata = object["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  for (const char* field : {"name", "namespace", "uid", "creationTimestamp", "generation"}) {
    if (old_object["metadata"].contains(field)) metadata[field] = old_object["metadata"][field];
  }
  if (old_object.contains("status")) object["status"] = old_object["status"];

  if (resource == Resource::kDeployments) {
    DefaultDeployment(object);
    if (auto problem = ValidateDeployment(object)) return StatusError(422, "Invalid", *problem);
    if (object["spec"]["selector"] != old_object["spec"]["selector"]) {
      return StatusError(
          422, "Invalid",
          fmt::format("Deployment.apps \"{}\" is invalid: spec.selector: Invalid value: field is "
                      "immutable",
                      Name(object)));
    }
  }
  if (object.value("spec", json()) != old_object.value("spec", json())) {
    metadata["generation"] = old_object["metadata"].value("generation", 0) + 1;
  }
  if (dry_run) {
    metadata["resourceVersion"] = old_object["metadata"]["resourceVersion"];
    return ApiResult{200, WithType(resource, object)};
  }
  if (object == old_object) return ApiResult{200, WithType(resource, object)};
  PutLocked(resource, object, "MODIFIED");
  return ApiResult{200, WithType(resource, object)};
}

ApiResult Cluster::Update(Resource resource, const std::string& ns, const std::string& name,
                          json object) {
  std::lock_guard lock(mutex_);
  json* existing = FindLocked(resource, ns, name);
  if (existing == nullptr) return NotFound(resource, name);
  std::string expected = object.value("/metadata/resourceVersion"_json_pointer, std::string());
  if (!expected.empty() && expected != (*existing)["metadata"]["resourceVersion"]) {
    return StatusError(
        409, "Conflict",
        fmt::format("Operation cannot be fulfilled on {} \"{}\": the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    QualifiedResource(resource), name));
  }
  return StoreUpdatedLocked(resource, *existing, std::move(object), false);
}

ApiResult Cluster::Patch(Resource resource, const std::string& ns, const std::string& name,
                         PatchType type, std::string_view body, bool dry_run) {
  std::lock_guard lock(mutex_);
  json* existing = FindLocked(resource, ns, name);
  if (existing == nullptr) return NotFound(resource, name);

  json patch;
  try {
    patch = json::parse(body);
  } catch (const json::parse_error& error) {
    return StatusError(400, "BadRequest", fmt::format("error decoding patch: {}", error.what()));
  }
  json patched;
  try {
    if (type == PatchType::kJson) {
      if (!patch.is_array()) {
        return StatusError(400, "BadRequest", "json patch must be an array of operations");
      }
      patched = existing->patch(patch);
    } else {
      // NOTE: a strategic merge patch is applied as an RFC 7386 merge patch: lists are replaced
      // whole instead of merged by their merge keys, which is enough for the patches kubectl's
      // rollout pause and resume send.
      patched = *existing;
      patched.merge_patch(patch);
    }
  } catch (const json::exception& error) {
    return StatusError(422, "Invalid",
                       fmt::format("the patch could not be applied: {}", error.what()));
  }
  return StoreUpdatedLocked(resource, *existing, std::move(patched), dry_run);
}

void Cluster::DeleteDependentsLocked(const std::string& owner_uid) {
  for (Resource resource : {Resource::kReplicaSets, Resource::kPods}) {
    std::vector<std::string> keys;
    for (const auto& [key, object] : StoreOf(resource)) {
      for (const json& owner : object["metadata"].value("ownerReferences", json::array())) {
        if (owner.value("uid", "") == owner_uid) keys.push_back(key);
      }
    }
    for (const std::string& key : keys) {
      std::string uid = StoreOf(resource)[key]["metadata"].value("uid", "");
      RemoveLocked(resource, key);
      DeleteDependentsLocked(uid);
    }
  }
}

ApiResult Cluster::Delete(Resource resource, const std::string& ns, const std::string& name) {
  std::lock_guard lock(mutex_);
  json* existing = FindLocked(resource, ns, name);
  if (existing == nullptr) return NotFound(resource, name);
  json object = WithType(resource, *existing);
  std::string uid = object["metadata"].value("uid", "");
  RemoveLocked(resource, Key(ns, name));
  DeleteDependentsLocked(uid);
  return ApiResult{200, std::move(object)};
}

// ---- Test hooks ------------------------------------------------------------------------------

void Cluster::SetPodBehaviour(const std::string& image, PodBehaviour behaviour) {
  std::lock_guard lock(mutex_);
  behaviours_[image] = behaviour;
}

ApiResult Cluster::Apply(const std::string& ns, const json& manifest, bool record_last_applied) {
  std::lock_guard lock(mutex_);
  json desired = manifest;
  desired.erase("status");
  if (record_last_applied) {
    json recorded = manifest;
    recorded["metadata"]["namespace"] = ns;
    desired["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        recorded.dump() + "\n";
  }

  std::string name = Name(desired);
  json* existing = FindLocked(Resource::kDeployments, ns, name);
  if (existing == nullptr) return StoreCreatedLocked(Resource::kDeployments, ns, desired);

  json updated = *existing;
  for (const char* field : {"labels", "annotations"}) {
    if (!desired["metadata"].contains(field)) continue;
    for (const auto& [key, value] : desired["metadata"][field].items()) {
      updated["metadata"][field][key] = value;
    }
  }
  // Spec fields the manifest leaves out (spec.paused set by `kubectl rollout pause`) stay, and the
  // pod template is replaced whole, as a three-way merge does when the manifest owns it.
  json spec = updated["spec"];
  spec.merge_patch(desired["spec"]);
  spec["template"] = desired["spec"]["template"];
  updated["spec"] = std::move(spec);
  return StoreUpdatedLocked(Resource::kDeployments, *existing, std::move(updated), false);
}

json Cluster::Snapshot() const {
  std::lock_guard lock(mutex_);
  json snapshot{{"resourceVersion", resource_version_},
                {"uidCounter", uid_counter_},
                {"nameCounter", name_counter_}};
  for (const ResourceInfo& info : kResources) {
    json objects = json::array();
    for (const auto& [key, object] : StoreOf(info.resource)) objects.push_back(object);
    snapshot[std::string(info.plural)] = std::move(objects);
  }
  return snapshot;
}

void Cluster::Restore(const json& snapshot) {
  std::lock_guard lock(mutex_);
  for (Store& store : stores_) store.clear();
  pod_created_.clear();
  for (const ResourceInfo& info : kResources) {
    for (const json& object : snapshot.at(std::string(info.plural))) {
      StoreOf(info.resource)[Key(Namespace(object), Name(object))] = object;
      if (info.resource == Resource::kPods) {
        // A restored pod keeps the age its creation time gives it, so its status stays put.
        auto created = ParseTimestamp(object["metadata"].value("creationTimestamp", ""));
        pod_created_[object["metadata"].value("uid", "")] = created.value_or(SystemClock::now());
      }
    }
  }
  // Watches from before the restore cannot continue: the log starts again at the new version.
  resource_version_ =
      std::max(resource_version_, snapshot.at("resourceVersion").get<uint64_t>()) + 1;
  compacted_through_ = resource_version_;
  events_.clear();
  uid_counter_ = snapshot.at("uidCounter").get<uint64_t>();
  name_counter_ = snapshot.at("nameCounter").get<uint64_t>();
  changed_.notify_all();
}

}  // namespace backout::emulators::kubernetes
