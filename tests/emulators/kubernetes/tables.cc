#include "tables.h"

#include <fmt/format.h>

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

int64_t IntAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_number_integer()) return 0;
  return object.at(path).get<int64_t>();
}

// An age in the short form kubectl shows: 45s, 3m20s, 2h, 5d.
std::string Age(const json& object, SystemClock::time_point now) {
  auto created = ParseTimestamp(object["metadata"].value("creationTimestamp", ""));
  if (!created) return "<unknown>";
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(now - *created).count();
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return fmt::format("{}s", seconds);
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    return seconds % 60 == 0 ? fmt::format("{}m", minutes)
                             : fmt::format("{}m{}s", minutes, seconds % 60);
  }
  if (minutes < 180) return fmt::format("{}m", minutes);
  int64_t hours = minutes / 60;
  if (hours < 48) return fmt::format("{}h", hours);
  return fmt::format("{}d", hours / 24);
}

json Column(const char* name, const char* type, int priority, const char* description,
            const char* format = "") {
  return json{{"name", name},
              {"type", type},
              {"format", format},
              {"description", description},
              {"priority", priority}};
}

std::string Join(const json& values, const char* key) {
  std::string text;
  for (const json& value : values) {
    if (!text.empty()) text += ",";
    text += value.value(key, "");
  }
  return text;
}

std::string SelectorText(const json& selector) {
  std::string text;
  const json labels = selector.value("matchLabels", json::object());
  for (const auto& [key, value] : labels.items()) {
    if (!text.empty()) text += ",";
    text += key + "=" + value.get<std::string>();
  }
  return text;
}

json WorkloadCells(Resource resource, const json& object, SystemClock::time_point now) {
  const json containers = object["spec"]["template"]["spec"].value("containers", json::array());
  std::string name = object["metadata"]["name"];
  if (resource == Resource::kDeployments) {
    return json::array({name,
                        fmt::format("{}/{}", IntAt(object, "/status/readyReplicas"),
                                    IntAt(object, "/spec/replicas")),
                        IntAt(object, "/status/updatedReplicas"),
                        IntAt(object, "/status/availableReplicas"), Age(object, now),
                        Join(containers, "name"), Join(containers, "image"),
                        SelectorText(object["spec"]["selector"])});
  }
  return json::array({name, IntAt(object, "/spec/replicas"), IntAt(object, "/status/replicas"),
                      IntAt(object, "/status/readyReplicas"), Age(object, now),
                      Join(containers, "name"), Join(containers, "image"),
                      SelectorText(object["spec"]["selector"])});
}

json PodCells(const json& pod, SystemClock::time_point now) {
  int64_t ready = 0;
  int64_t restarts = 0;
  std::string reason = pod["status"].value("phase", "Pending");
  const json statuses = pod["status"].value("containerStatuses", json::array());
  for (const json& status : statuses) {
    if (status.value("ready", false)) ++ready;
    restarts += status.value("restartCount", 0);
    if (status.contains("/state/waiting/reason"_json_pointer)) {
      reason = status.at("/state/waiting/reason"_json_pointer).get<std::string>();
    }
  }
  size_t total = pod["spec"].value("containers", json::array()).size();
  return json::array({pod["metadata"]["name"], fmt::format("{}/{}", ready, total), reason, restarts,
                      Age(pod, now), pod["status"].value("podIP", "<none>"),
                      pod["spec"].value("nodeName", "<none>"), "<none>", "<none>"});
}

}  // namespace

json BuildTable(Resource resource, const json& items, const std::string& resource_version,
                SystemClock::time_point now) {
  json columns;
  const char* name_description =
      "Name must be unique within a namespace. More info: "
      "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
  if (resource == Resource::kDeployments) {
    columns = {Column("Name", "string", 0, name_description, "name"),
               Column("Ready", "string", 0, "Number of the pod with ready state"),
               Column("Up-to-date", "string", 0,
                      "Total number of non-terminated pods targeted by "
                      "this deployment that have the desired template "
                      "spec."),
               Column("Available", "string", 0,
                      "Total number of available pods (ready for at "
                      "least minReadySeconds) targeted by this "
                      "deployment."),
               Column("Age", "string", 0,
                      "CreationTimestamp is a timestamp representing the "
                      "server time when this object was created."),
               Column("Containers", "string", 1, "Names of each container in the template."),
               Column("Images", "string", 1,
                      "Images referenced by each container in the "
                      "template."),
               Column("Selector", "string", 1, "Label selector for pods.")};
  } else if (resource == Resource::kReplicaSets) {
    columns = {Column("Name", "string", 0, name_description, "name"),
               Column("Desired", "integer", 0, "Replicas is the number of desired replicas."),
               Column("Current", "integer", 0,
                      "Replicas is the most recently observed number of "
                      "replicas."),
               Column("Ready", "integer", 0, "The number of ready replicas for this replica set."),
               Column("Age", "string", 0,
                      "CreationTimestamp is a timestamp representing the "
                      "server time when this object was created."),
               Column("Containers", "string", 1, "Names of each container in the template."),
               Column("Images", "string", 1,
                      "Images referenced by each container in the "
                      "template."),
               Column("Selector", "string", 1, "Label selector for pods.")};
  } else {
    columns = {Column("Name", "string", 0, name_description, "name"),
               Column("Ready", "string", 0,
                      "The aggregate readiness state of this pod for "
                      "accepting traffic."),
               Column("Status", "string", 0,
                      "The aggregate status of the containers in this "
                      "pod."),
               Column("Restarts", "string", 0,
                      "The number of times the containers in this pod "
                      "have been restarted."),
               Column("Age", "string", 0,
                      "CreationTimestamp is a timestamp representing the "
                      "server time when this object was created."),
               Column("IP", "string", 1, "IP address allocated to the pod."),
               Column("Node", "string", 1, "Name of the Node the Pod is scheduled on."),
               Column("Nominated Node", "string", 1, "Name of the Node the Pod is nominated to."),
               Column("Readiness Gates", "string", 1, "Readiness gates of the Pod.")};
  }

  json rows = json::array();
  for (const json& item : items) {
    json cells =
        resource == Resource::kPods ? PodCells(item, now) : WorkloadCells(resource, item, now);
    rows.push_back({{"cells", cells},
                    {"object",
                     {{"kind", "PartialObjectMetadata"},
                      {"apiVersion", "meta.k8s.io/v1"},
                      {"metadata", item["metadata"]}}}});
  }
  return json{{"kind", "Table"},
              {"apiVersion", "meta.k8s.io/v1"},
              {"metadata", {{"resourceVersion", resource_version}}},
              {"columnDefinitions", columns},
              {"rows", rows}};
}

}  // namespace backout::emulators::kubernetes
